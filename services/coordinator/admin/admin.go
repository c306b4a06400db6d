// Package admin is the coordinator's HTTP AdminServer: ZooKeeper's
// /commands/<name> JSON API (with the same command names and their
// four-letter aliases) and the Prometheus /metrics endpoint.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/runnel-io/runnel/services/coordinator/server"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// Server serves the admin API.
type Server struct {
	zk      *server.Server
	db      *znode.DB
	metrics http.Handler
	srv     *http.Server
	ln      net.Listener
}

// New returns an admin server for zk; metrics may be nil.
func New(zk *server.Server, db *znode.DB, metrics http.Handler) *Server {
	s := &Server{zk: zk, db: db, metrics: metrics}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /commands", s.list)
	mux.HandleFunc("GET /commands/", s.list)
	mux.HandleFunc("GET /commands/{name}", s.command)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Start listens on addr (synchronously) and serves in the background.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin server: listen on %s: %w (pick another with --admin-listen)", addr, err)
	}
	s.ln = ln
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stop shuts the server down.
func (s *Server) Stop(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type command struct {
	aliases []string
	run     func(s *Server) map[string]any
}

var commands = map[string]command{
	"ruok": {nil, func(*Server) map[string]any { return map[string]any{} }},
	"server_stats": {[]string{"srvr"}, func(s *Server) map[string]any {
		return map[string]any{"server_stats": s.zk.Stats(), "client_response": map[string]any{}}
	}},
	"stats": {[]string{"stat"}, func(s *Server) map[string]any {
		return map[string]any{"server_stats": s.zk.Stats(), "connections": s.zk.Connections()}
	}},
	"monitor": {[]string{"mntr"}, func(s *Server) map[string]any {
		st := s.zk.Stats()
		b, _ := json.Marshal(st)
		m := map[string]any{}
		_ = json.Unmarshal(b, &m)
		return m
	}},
	"configuration": {[]string{"conf", "config"}, func(s *Server) map[string]any {
		c := s.zk.Config()
		return map[string]any{
			"client_port_address": c.Listen, "data_dir": c.DataDir, "data_log_dir": c.DataDir,
			"tick_time": c.TickTime.Milliseconds(), "max_client_cnxns": c.MaxClientConns,
			"min_session_timeout": (2 * c.TickTime).Milliseconds(), "max_session_timeout": (20 * c.TickTime).Milliseconds(),
			"server_id": c.ServerID,
		}
	}},
	"connections": {[]string{"cons"}, func(s *Server) map[string]any {
		return map[string]any{"connections": s.zk.Connections(), "secure_connections": []any{}}
	}},
	"watch_summary": {[]string{"wchs"}, func(s *Server) map[string]any {
		byS, byP := s.db.WatchesBySession(), s.db.WatchesByPath()
		total := 0
		for _, p := range byS {
			total += len(p)
		}
		return map[string]any{"num_connections": len(byS), "num_paths": len(byP), "num_total_watches": total}
	}},
	"watches": {[]string{"wchc"}, func(s *Server) map[string]any {
		out := map[string][]string{}
		for id, ps := range s.db.WatchesBySession() {
			out[server.SessionHex(id)] = ps
		}
		return map[string]any{"session_id_to_watched_paths": out}
	}},
	"watches_by_path": {[]string{"wchp"}, func(s *Server) map[string]any {
		out := map[string][]string{}
		for p, ids := range s.db.WatchesByPath() {
			for _, id := range ids {
				out[p] = append(out[p], server.SessionHex(id))
			}
		}
		return map[string]any{"path_to_session_ids": out}
	}},
	"dump": {nil, func(s *Server) map[string]any {
		eph := map[string][]string{}
		for id, ps := range s.db.EphemeralsBySession() {
			eph[server.SessionHex(id)] = ps
		}
		sessions := []map[string]any{}
		for _, ss := range s.db.Sessions() {
			sessions = append(sessions, map[string]any{"id": server.SessionHex(ss.ID), "timeout": ss.Timeout})
		}
		return map[string]any{"expiry_time_to_session_ids": sessions, "session_id_to_ephemeral_paths": eph}
	}},
	"environment": {[]string{"envi", "env"}, func(s *Server) map[string]any {
		var b strings.Builder
		s.zk.FourLetter(&b, "envi")
		m := map[string]any{}
		for _, line := range strings.Split(b.String(), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				m[k] = v
			}
		}
		return m
	}},
	"is_read_only": {[]string{"isro"}, func(s *Server) map[string]any {
		return map[string]any{"read_only": s.zk.Stats().ReadOnly}
	}},
	"stat_reset": {[]string{"srst"}, func(s *Server) map[string]any {
		s.zk.ResetStats()
		return map[string]any{}
	}},
}

var aliases = func() map[string]string {
	m := map[string]string{}
	for name, c := range commands {
		m[name] = name
		for _, a := range c.aliases {
			m[a] = name
		}
	}
	return m
}()

func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	primary, ok := aliases[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"command": name,
			"error": fmt.Sprintf("unknown command %q; GET /commands lists them", name)})
		return
	}
	out := commands[primary].run(s)
	out["command"] = primary
	out["error"] = nil
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	writeJSON(w, http.StatusOK, map[string]any{"commands": names})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
