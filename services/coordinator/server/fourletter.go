package server

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// fourLetterWords are the commands answered on the client port.
var fourLetterWords = map[string]bool{
	"ruok": true, "srvr": true, "stat": true, "mntr": true, "conf": true, "cons": true,
	"wchs": true, "wchc": true, "wchp": true, "dump": true, "envi": true, "isro": true,
	"srst": true, "crst": true,
}

func isFourLetterWord(s string) bool { return fourLetterWords[s] }

// Stats is a snapshot of the server for srvr, mntr and the AdminServer.
type Stats struct {
	Version        string  `json:"version"`
	ServerState    string  `json:"server_state"`
	ReadOnly       bool    `json:"read_only"`
	Received       int64   `json:"packets_received"`
	Sent           int64   `json:"packets_sent"`
	Connections    int     `json:"num_alive_connections"`
	Outstanding    int64   `json:"outstanding_requests"`
	Zxid           int64   `json:"last_zxid"`
	NodeCount      int     `json:"znode_count"`
	WatchCount     int     `json:"watch_count"`
	Ephemerals     int     `json:"ephemerals_count"`
	ApproxDataSize int64   `json:"approximate_data_size"`
	Sessions       int     `json:"global_sessions"`
	MinLatencyMs   int64   `json:"min_latency"`
	AvgLatencyMs   float64 `json:"avg_latency"`
	MaxLatencyMs   int64   `json:"max_latency"`
	BadInput       int64   `json:"bad_input"`
	UptimeMs       int64   `json:"uptime"`
}

// Stats returns the current statistics.
func (s *Server) Stats() Stats {
	dbs := s.db.Stats()
	s.mu.Lock()
	nconns := len(s.conns)
	s.mu.Unlock()
	st := Stats{
		Version:        Version,
		ServerState:    s.rep.Mode(),
		ReadOnly:       !s.rep.Writable(),
		Received:       s.stats.received.Load(),
		Sent:           s.stats.sent.Load(),
		Connections:    nconns,
		Outstanding:    s.stats.outstanding.Load(),
		Zxid:           s.db.LastZxid(),
		NodeCount:      dbs.Nodes,
		WatchCount:     dbs.Watches,
		Ephemerals:     dbs.Ephemerals,
		ApproxDataSize: dbs.ApproxDataSize,
		Sessions:       dbs.Sessions,
		BadInput:       s.stats.badInput.Load(),
		UptimeMs:       time.Since(s.started).Milliseconds(),
	}
	if n := s.stats.latCount.Load(); n > 0 {
		st.AvgLatencyMs = float64(s.stats.latTotalUs.Load()) / float64(n) / 1000
		st.MinLatencyMs = max(s.stats.minLatency.Load(), 0) / 1000
		st.MaxLatencyMs = s.stats.maxLatency.Load() / 1000
	}
	return st
}

// ConnInfo describes one client connection for cons and stat.
type ConnInfo struct {
	Remote    string `json:"remote_socket_address"`
	SessionID string `json:"session_id"`
	Timeout   int64  `json:"session_timeout"`
	Received  int64  `json:"packets_received"`
	Sent      int64  `json:"packets_sent"`
	Queued    int    `json:"outstanding_requests"`
	LastZxid  string `json:"last_zxid"`
	Connected int64  `json:"established"`
}

// Connections lists the client connections, ordered by remote address.
func (s *Server) Connections() []ConnInfo {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	out := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		c.mu.Lock()
		q := c.outstanding
		c.mu.Unlock()
		out = append(out, ConnInfo{
			Remote:    c.nc.RemoteAddr().String(),
			SessionID: sessionHex(c.sessionID.Load()),
			Timeout:   c.timeout.Milliseconds(),
			Received:  c.received.Load(),
			Sent:      c.sent.Load(),
			Queued:    q,
			LastZxid:  fmt.Sprintf("0x%x", c.lastZxid.Load()),
			Connected: c.connected.UnixMilli(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Remote < out[j].Remote })
	return out
}

// Config returns the server's configuration (for conf).
func (s *Server) Config() Config { return s.cfg }

// ResetStats clears the latency and packet counters (srst).
func (s *Server) ResetStats() {
	s.stats.received.Store(0)
	s.stats.sent.Store(0)
	s.stats.latCount.Store(0)
	s.stats.latTotalUs.Store(0)
	s.stats.minLatency.Store(-1)
	s.stats.maxLatency.Store(0)
}

// FourLetter writes the answer to a four-letter word, as ZooKeeper's
// client port would.
func (s *Server) FourLetter(w io.Writer, cmd string) {
	s.fourLetter(w, cmd)
}

func (s *Server) fourLetter(w io.Writer, cmd string) {
	var b strings.Builder
	switch cmd {
	case "ruok":
		b.WriteString("imok")
	case "isro":
		if s.rep.Writable() {
			b.WriteString("rw")
		} else {
			b.WriteString("ro")
		}
	case "srvr":
		s.writeSrvr(&b, false)
	case "stat":
		s.writeSrvr(&b, true)
	case "srst":
		s.ResetStats()
		b.WriteString("Server stats reset.\n")
	case "crst":
		b.WriteString("Connection stats reset.\n")
	case "mntr":
		st := s.Stats()
		kv := [][2]any{
			{"zk_version", st.Version}, {"zk_server_state", st.ServerState},
			{"zk_avg_latency", fmt.Sprintf("%.4f", st.AvgLatencyMs)}, {"zk_max_latency", st.MaxLatencyMs},
			{"zk_min_latency", st.MinLatencyMs}, {"zk_packets_received", st.Received},
			{"zk_packets_sent", st.Sent}, {"zk_num_alive_connections", st.Connections},
			{"zk_outstanding_requests", st.Outstanding}, {"zk_znode_count", st.NodeCount},
			{"zk_watch_count", st.WatchCount}, {"zk_ephemerals_count", st.Ephemerals},
			{"zk_approximate_data_size", st.ApproxDataSize}, {"zk_global_sessions", st.Sessions},
			{"zk_last_zxid", fmt.Sprintf("0x%x", st.Zxid)}, {"zk_uptime", st.UptimeMs},
			{"zk_open_file_descriptor_count", openFDs()},
		}
		for _, p := range kv {
			fmt.Fprintf(&b, "%s\t%v\n", p[0], p[1])
		}
	case "conf":
		c := s.cfg
		fmt.Fprintf(&b, "clientPort=%s\n", portOf(c.Listen))
		fmt.Fprintf(&b, "clientPortAddress=%s\n", c.Listen)
		fmt.Fprintf(&b, "dataDir=%s\n", c.DataDir)
		fmt.Fprintf(&b, "dataLogDir=%s\n", c.DataDir)
		fmt.Fprintf(&b, "tickTime=%d\n", c.TickTime.Milliseconds())
		fmt.Fprintf(&b, "maxClientCnxns=%d\n", c.MaxClientConns)
		fmt.Fprintf(&b, "minSessionTimeout=%d\n", (2 * c.TickTime).Milliseconds())
		fmt.Fprintf(&b, "maxSessionTimeout=%d\n", (20 * c.TickTime).Milliseconds())
		fmt.Fprintf(&b, "serverId=%d\n", c.ServerID)
		fmt.Fprintf(&b, "jute.maxbuffer=%d\n", c.MaxPacket)
	case "cons":
		s.writeCons(&b)
		b.WriteString("\n")
	case "wchs":
		byS := s.db.WatchesBySession()
		byP := s.db.WatchesByPath()
		total := 0
		for _, ps := range byS {
			total += len(ps)
		}
		fmt.Fprintf(&b, "%d connections watching %d paths\nTotal watches:%d\n", len(byS), len(byP), total)
	case "wchc":
		byS := s.db.WatchesBySession()
		ids := make([]int64, 0, len(byS))
		for id := range byS {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			fmt.Fprintf(&b, "%s\n", sessionHex(id))
			for _, p := range byS[id] {
				fmt.Fprintf(&b, "\t%s\n", p)
			}
		}
	case "wchp":
		byP := s.db.WatchesByPath()
		paths := make([]string, 0, len(byP))
		for p := range byP {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(&b, "%s\n", p)
			for _, id := range byP[p] {
				fmt.Fprintf(&b, "\t%s\n", sessionHex(id))
			}
		}
	case "dump":
		sessions := s.db.Sessions()
		b.WriteString("SessionTracker dump:\n")
		fmt.Fprintf(&b, "Global Sessions(%d):\n", len(sessions))
		for _, ss := range sessions {
			fmt.Fprintf(&b, "%s\t%dms\n", sessionHex(ss.ID), ss.Timeout)
		}
		eph := s.db.EphemeralsBySession()
		ids := make([]int64, 0, len(eph))
		for id := range eph {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		b.WriteString("ephemeral nodes dump:\n")
		fmt.Fprintf(&b, "Sessions with Ephemerals (%d):\n", len(ids))
		for _, id := range ids {
			fmt.Fprintf(&b, "%s:\n", sessionHex(id))
			for _, p := range eph[id] {
				fmt.Fprintf(&b, "\t%s\n", p)
			}
		}
	case "envi":
		host, _ := os.Hostname()
		wd, _ := os.Getwd()
		b.WriteString("Environment:\n")
		for _, kv := range [][2]string{
			{"zookeeper.version", Version}, {"host.name", host}, {"go.version", runtime.Version()},
			{"os.name", runtime.GOOS}, {"os.arch", runtime.GOARCH}, {"user.dir", wd},
			{"runtime.cpus", fmt.Sprint(runtime.NumCPU())},
		} {
			fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
		}
	}
	_, _ = io.WriteString(w, b.String())
}

func (s *Server) writeSrvr(b *strings.Builder, withClients bool) {
	st := s.Stats()
	fmt.Fprintf(b, "Zookeeper version: %s, built for %s\n", st.Version, runtime.Version())
	if withClients {
		b.WriteString("Clients:\n")
		s.writeCons(b)
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "Latency min/avg/max: %d/%.4f/%d\n", st.MinLatencyMs, st.AvgLatencyMs, st.MaxLatencyMs)
	fmt.Fprintf(b, "Received: %d\n", st.Received)
	fmt.Fprintf(b, "Sent: %d\n", st.Sent)
	fmt.Fprintf(b, "Connections: %d\n", st.Connections)
	fmt.Fprintf(b, "Outstanding: %d\n", st.Outstanding)
	fmt.Fprintf(b, "Zxid: 0x%x\n", st.Zxid)
	fmt.Fprintf(b, "Mode: %s\n", st.ServerState)
	fmt.Fprintf(b, "Node count: %d\n", st.NodeCount)
}

func (s *Server) writeCons(b *strings.Builder) {
	for _, c := range s.Connections() {
		fmt.Fprintf(b, " /%s[1](queued=%d,recved=%d,sent=%d,sid=%s,to=%d,lzxid=%s)\n",
			c.Remote, c.Queued, c.Received, c.Sent, c.SessionID, c.Timeout, c.LastZxid)
	}
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
