// Package node assembles one broker from its parts: the Kafka-named
// settings (config), the storage backend, the coordinator metadata
// (metadata), the hosted partitions (replica), the API handlers (api) and
// the listener (wire). It owns the runnel-broker flags and the fx module
// that main runs; New and Start also work without fx, which tests use to run
// a broker inside the test process.
package node

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/runnel-io/runnel/sdk/events"
	"github.com/runnel-io/runnel/services/broker/natsevents"
)

// Config is what a broker is started with.
type Config struct {
	ID                 int
	Listen             string
	AdvertisedListener string
	DataDir            string
	Coordinator        string
	MetricsListen      string
	Storage            string
	// StoragePlugin, when set, runs the default storage backend as a
	// plugin process: a binary's path, or NAME for runnel-storage-NAME
	// found on RUNNEL_PLUGIN_PATH or in the plugins folder beside the
	// broker binary. It wins over Storage.
	StoragePlugin string
	// StorageTailCache is the per-partition tail cache, in bytes, of
	// plugin-process backends (0: the default; negative: none).
	StorageTailCache int
	Rack             string
	// Settings are broker settings under Kafka's names, as key=value.
	Settings []string
	// NATSURL, when set, publishes offset events to that NATS server
	// (package natsevents); NATSSubjectPrefix, ClusterName and
	// NATSInterval shape them.
	NATSURL           string
	NATSSubjectPrefix string
	ClusterName       string
	NATSInterval      time.Duration
}

// Flags registers the binary's flags on fs, bound to c.
func (c *Config) Flags(fs *pflag.FlagSet) {
	fs.IntVar(&c.ID, "id", 1, "broker id (Kafka's broker.id), unique in the cluster")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9092", "address for Kafka clients, HOST:PORT")
	fs.StringVar(&c.AdvertisedListener, "advertised-listener", "", "HOST:PORT clients are told to connect to (default: the listen address, with this host's name if it listens on all interfaces)")
	fs.StringVar(&c.DataDir, "data-dir", "./broker-data", "directory of the partition logs and checkpoints (Kafka's log.dirs)")
	fs.StringVar(&c.Coordinator, "coordinator", "127.0.0.1:2181", "ZooKeeper connect string of the coordinator: HOST:PORT[,HOST:PORT...][/chroot]")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "address serving Prometheus /metrics (empty: off)")
	fs.StringVar(&c.Storage, "storage", "file", "storage backend: file (Kafka's on-disk layout) or memory (nothing survives a restart)")
	fs.StringVar(&c.StoragePlugin, "storage-plugin", "", "run the storage backend as a plugin process instead: NAME (runnel-storage-NAME on RUNNEL_PLUGIN_PATH or in plugins/ beside this binary) or a binary's PATH; wins over --storage")
	fs.IntVar(&c.StorageTailCache, "storage-tail-cache-bytes", 0, "per-partition cache of the newest batches of plugin-process backends, so reads near the end never cross the process boundary (0: 8 MiB; negative: off)")
	fs.StringVar(&c.Rack, "rack", "", "rack of this broker (Kafka's broker.rack)")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server to publish offset events to, for lagmon (nats://HOST:4222[,nats://...]; empty: off)")
	fs.StringVar(&c.NATSSubjectPrefix, "nats-subject-prefix", events.DefaultPrefix, "first token(s) of the event subjects: PREFIX.CLUSTER.offsets.log_end, .offsets.commit, .groups.members")
	fs.StringVar(&c.ClusterName, "cluster-name", natsevents.DefaultCluster, "the cluster's name in the event subjects (CLUSTER); lagmon's cluster name for it")
	fs.DurationVar(&c.NATSInterval, "nats-interval", natsevents.DefaultInterval, "how often the log-end offsets of the partitions this broker leads are published")
	fs.StringArrayVar(&c.Settings, "config", nil, "broker setting under Kafka's name, key=value (repeatable; in RUNNEL_CONFIG separate several with ';'), e.g. num.partitions=3, log.retention.ms=3600000")
}

// ParseSettings turns the --config values into a map. Each value is
// key=value; a value may hold several, separated by ';' (how the
// environment variable carries more than one).
func (c *Config) ParseSettings() (map[string]string, error) {
	out := map[string]string{}
	for _, s := range c.Settings {
		for _, kv := range strings.Split(s, ";") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("--config %q: want key=value", kv)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out, nil
}

// advertised returns the host and port to register, given the address
// actually bound.
func (c *Config) advertised(bound net.Addr) (string, int32, error) {
	addr := c.AdvertisedListener
	if addr == "" {
		addr = bound.String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("--advertised-listener %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return "", 0, fmt.Errorf("advertised host: %w", err)
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("advertised port %q is not a port", port)
	}
	return host, int32(p), nil
}
