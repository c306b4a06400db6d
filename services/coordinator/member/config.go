// Package member assembles one coordinator member from its parts: the
// znode.DB, a Replicator (the standalone transaction log, or raft when the
// member is part of an ensemble), the client-facing server and the
// AdminServer. It owns the binary's flags and the fx module that main runs.
package member

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Config is everything a member is started with.
type Config struct {
	Listen                 string
	AdminListen            string
	DataDir                string
	ID                     int
	Peers                  string
	TickTime               time.Duration
	MaxClientConns         int
	ContainerCheckInterval time.Duration
	SnapCount              int64
	NoSync                 bool
	// KeepSessionsOnStop leaves the sessions of this member's clients open
	// when it stops gracefully, for them to resume on another member (or on
	// this one after a restart) within their timeout; by default a graceful
	// stop closes them, so their ephemeral nodes go at once.
	KeepSessionsOnStop bool
}

// Flags registers the binary's flags on fs, bound to c.
func (c *Config) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:2181", "client address (ZooKeeper's clientPort)")
	fs.StringVar(&c.DataDir, "data-dir", "./coordinator-data", "directory for the transaction log and snapshots (raft state in an ensemble)")
	fs.StringVar(&c.AdminListen, "admin-listen", "", "AdminServer address serving /commands/<name> and /metrics (empty: off)")
	fs.IntVar(&c.ID, "id", 1, "this member's id in --peers (1-254)")
	fs.StringVar(&c.Peers, "peers", "", "ensemble raft addresses as 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT (empty: standalone)")
	fs.DurationVar(&c.TickTime, "tick-time", 2*time.Second, "ZooKeeper tick: session timeouts are negotiated between 2 and 20 ticks")
	fs.IntVar(&c.MaxClientConns, "max-client-cnxns", 60, "connections allowed from one IP address (0: unlimited)")
	fs.DurationVar(&c.ContainerCheckInterval, "container-check-interval", time.Minute, "how often empty containers and expired TTL nodes are removed")
	fs.Int64Var(&c.SnapCount, "snap-count", 100000, "transactions between snapshots")
	fs.BoolVar(&c.KeepSessionsOnStop, "keep-sessions-on-stop", false, "on SIGTERM leave the clients' sessions open for them to resume elsewhere within their timeout (default: close them, so their ephemeral nodes go at once)")
	fs.BoolVar(&c.NoSync, "unsafe-no-fsync", false, "skip fdatasync on commit: acknowledged writes can be lost in a power failure (never in production)")
}

// ParsePeers parses --peers into id → raft address.
func ParsePeers(s string) (map[int]string, error) {
	out := map[int]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("--peers entry %q: want ID=HOST:PORT", part)
		}
		id, err := strconv.Atoi(k)
		if err != nil || id < 1 || id > 254 {
			return nil, fmt.Errorf("--peers entry %q: the id must be a number from 1 to 254", part)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("--peers names id %d twice", id)
		}
		out[id] = v
	}
	return out, nil
}

// PeerIDs returns the ids of peers in order.
func PeerIDs(peers map[int]string) []int {
	ids := make([]int, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}
