package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// Version is what srvr, stat, mntr and envi report as the server version.
const Version = "3.8.4-runnel"

// Config holds the front end's settings.
type Config struct {
	// Listen is the client address, e.g. 127.0.0.1:2181.
	Listen string
	// ServerID is this member's id (1 for a standalone server). It forms
	// the high byte of new session ids, as in ZooKeeper.
	ServerID int64
	// TickTime is ZooKeeper's tick: session timeouts are negotiated
	// between 2 and 20 ticks.
	TickTime time.Duration
	// MaxPacket bounds a request frame (jute.maxbuffer).
	MaxPacket int
	// MaxClientConns bounds connections from one IP address (0: no limit).
	MaxClientConns int
	// ContainerCheckInterval is how often the leader looks for empty
	// containers and expired TTL nodes.
	ContainerCheckInterval time.Duration
	// DataDir is reported by conf.
	DataDir string
}

// DefaultConfig returns ZooKeeper's defaults.
func DefaultConfig() Config {
	return Config{
		Listen:                 "127.0.0.1:2181",
		ServerID:               1,
		TickTime:               2 * time.Second,
		MaxPacket:              jute.MaxPacket,
		MaxClientConns:         60,
		ContainerCheckInterval: time.Minute,
	}
}

// Server is the client-facing front end of one coordinator member.
type Server struct {
	cfg    Config
	db     *znode.DB
	rep    Replicator
	log    *slog.Logger
	tracer trace.Tracer
	m      *metrics

	ln      net.Listener
	tracker *tracker
	started time.Time

	sessionSeq atomic.Int64

	mu       sync.Mutex
	conns    map[*conn]struct{}
	bySess   map[int64]*conn
	perIP    map[string]int
	closing  bool
	stopLoop chan struct{}
	wg       sync.WaitGroup

	stats serverStats
}

// Params are the dependencies of New.
type Params struct {
	Config         Config
	DB             *znode.DB
	Replicator     Replicator
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// New returns a server; Start begins serving.
func New(p Params) (*Server, error) {
	cfg := p.Config
	def := DefaultConfig()
	if cfg.TickTime <= 0 {
		cfg.TickTime = def.TickTime
	}
	if cfg.MaxPacket <= 0 {
		cfg.MaxPacket = def.MaxPacket
	}
	if cfg.ContainerCheckInterval <= 0 {
		cfg.ContainerCheckInterval = def.ContainerCheckInterval
	}
	if cfg.ServerID <= 0 {
		cfg.ServerID = 1
	}
	if p.DB == nil || p.Replicator == nil {
		return nil, errors.New("server: DB and Replicator are required")
	}
	logger := p.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		db:       p.DB,
		rep:      p.Replicator,
		log:      logger.With("component", "zk-server"),
		tracker:  newTracker(),
		conns:    make(map[*conn]struct{}),
		bySess:   make(map[int64]*conn),
		perIP:    make(map[string]int),
		stopLoop: make(chan struct{}),
	}
	s.tracer = tracerFrom(p.TracerProvider)
	m, err := newMetrics(p.MeterProvider, s)
	if err != nil {
		return nil, err
	}
	s.m = m
	// Session ids follow ZooKeeper: the server id in the top byte and a
	// time-seeded counter below, so ids from different members never
	// collide and a restarted member does not reuse recent ids.
	s.sessionSeq.Store(int64(uint64(time.Now().UnixMilli())<<24>>8 | uint64(cfg.ServerID)<<56))
	s.stats.minLatency.Store(-1)
	return s, nil
}

// Start listens on the client address (synchronously, so a port conflict
// fails start-up) and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("coordinator: listen on %s: %w (is another server using the port? pick one with --listen)", s.cfg.Listen, err)
	}
	s.ln = ln
	s.started = time.Now()
	s.wg.Add(2)
	go s.acceptLoop()
	go s.housekeeping()
	s.log.Info("serving ZooKeeper clients", "addr", ln.Addr().String(), "mode", s.rep.Mode())
	return nil
}

// Addr returns the bound client address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stop closes the listener and every connection. Sessions stay in the DB:
// clients reconnect to another member, or to this one after a restart,
// within their timeout.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	close(s.stopLoop)
	if s.ln != nil {
		s.ln.Close()
	}
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
}

// CloseSessions asks the replicator to close every session with a local
// connection, so their ephemeral nodes go at once: a graceful shutdown.
func (s *Server) CloseSessions(ctx context.Context) {
	s.mu.Lock()
	ids := make([]int64, 0, len(s.bySess))
	for id := range s.bySess {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		s.rep.Propose(&znode.Txn{SessionID: id, Op: jute.OpCloseSession, Time: time.Now().UnixMilli()},
			func(znode.Result, error) { wg.Done() })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// TouchSessions records liveness reported by another member (the ensemble
// calls it on the leader).
func (s *Server) TouchSessions(ids []int64) {
	s.tracker.touchAll(ids, s.sessionTimeout, time.Now())
}

// ResetSessions forgets liveness (the ensemble calls it when leadership
// moves, so the next leader starts every session's timeout afresh).
func (s *Server) ResetSessions() { s.tracker.reset() }

func (s *Server) sessionTimeout(id int64) (time.Duration, bool) {
	sess, ok := s.db.Session(id)
	if !ok {
		return 0, false
	}
	return time.Duration(sess.Timeout) * time.Millisecond, true
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: back off, keep serving.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			s.log.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		ip := remoteIP(nc.RemoteAddr())
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return
		}
		if s.cfg.MaxClientConns > 0 && s.perIP[ip] >= s.cfg.MaxClientConns {
			s.mu.Unlock()
			s.log.Warn("too many connections from one address; closing (raise --max-client-cnxns)", "ip", ip, "limit", s.cfg.MaxClientConns)
			nc.Close()
			continue
		}
		s.perIP[ip]++
		c := newConn(s, nc, ip)
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
	}
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
		delete(s.perIP, c.ip)
	}
	if id := c.sessionID.Load(); id != 0 && s.bySess[id] == c {
		delete(s.bySess, id)
	}
}

// bindSession makes c the connection of session id and returns the
// connection it replaces, if any (a client that moved to a new socket).
func (s *Server) bindSession(c *conn, id int64) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.bySess[id]
	s.bySess[id] = c
	if old == c {
		return nil
	}
	return old
}

func (s *Server) nextSessionID() int64 { return s.sessionSeq.Add(1) }

func newPasswd() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b
}

// housekeeping runs the periodic duties: liveness reports every half tick;
// on the leader, session expiry and container cleanup; everywhere, closing
// connections whose session no longer exists (expired by the leader).
func (s *Server) housekeeping() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.TickTime / 2)
	defer tick.Stop()
	containers := time.NewTicker(s.cfg.ContainerCheckInterval)
	defer containers.Stop()
	wasLeader := false
	for {
		select {
		case <-s.stopLoop:
			return
		case now := <-tick.C:
			local := s.localSessions()
			leader := s.rep.IsLeader()
			if leader != wasLeader {
				s.tracker.reset()
				wasLeader = leader
			}
			if leader {
				s.tracker.touchAll(local, s.sessionTimeout, now)
				s.expireSessions(now)
			} else if len(local) > 0 {
				s.rep.ReportLive(local)
			}
			s.closeOrphans()
		case now := <-containers.C:
			if s.rep.IsLeader() {
				s.cleanContainers(now)
			}
		}
	}
}

func (s *Server) localSessions() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.bySess))
	for id, c := range s.bySess {
		if !c.closed.Load() {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *Server) expireSessions(now time.Time) {
	sessions := s.db.Sessions()
	live := make(map[int64]time.Duration, len(sessions))
	for _, ss := range sessions {
		live[ss.ID] = time.Duration(ss.Timeout) * time.Millisecond
	}
	for _, id := range s.tracker.expired(live, now) {
		s.log.Info("expiring session", "session", sessionHex(id))
		s.tracker.forget(id)
		s.m.expired.Add(context.Background(), 1)
		s.rep.Propose(&znode.Txn{SessionID: id, Op: jute.OpCloseSession, Time: now.UnixMilli()}, func(znode.Result, error) {})
	}
}

func (s *Server) closeOrphans() {
	s.mu.Lock()
	var orphans []*conn
	for id, c := range s.bySess {
		if _, ok := s.db.Session(id); !ok && !c.creating.Load() {
			orphans = append(orphans, c)
		}
	}
	s.mu.Unlock()
	for _, c := range orphans {
		c.expire()
	}
}

func (s *Server) cleanContainers(now time.Time) {
	for _, p := range s.db.Expirable(now.UnixMilli()) {
		s.rep.Propose(&znode.Txn{Op: jute.OpDeleteContainer, Req: &jute.DeleteRequest{Path: p, Version: -1}, Time: now.UnixMilli()},
			func(znode.Result, error) {})
	}
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// SessionHex formats a session id as ZooKeeper prints it: unsigned hex.
func SessionHex(id int64) string { return sessionHex(id) }

func sessionHex(id int64) string { return fmt.Sprintf("0x%x", uint64(id)) }
