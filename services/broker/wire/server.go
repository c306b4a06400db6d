package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Handler serves decoded requests.
type Handler interface {
	// Supports reports whether key is served at version; version -1 asks
	// whether key is served at all.
	Supports(key, version int16) bool

	// Versions lists every served key with its version range, as
	// ApiVersions advertises them.
	Versions() []kmsg.ApiVersionsResponseApiKey

	// Handle serves one request. It is called on the connection's reading
	// goroutine in arrival order and must call req.Respond or req.Fail
	// exactly once, before returning or later from any goroutine (to
	// long-poll). While it has not answered, later requests of the same
	// connection still reach Handle; their responses wait for this one.
	// ctx is cancelled when the connection closes; a handler that waits
	// must then answer promptly.
	Handle(ctx context.Context, req *Request)
}

// Config holds the listener's settings.
type Config struct {
	// Listen is the address to listen on, host:port.
	Listen string
	// MaxRequestSize is socket.request.max.bytes: larger frames close the
	// connection. Zero means DefaultMaxRequestSize.
	MaxRequestSize int32
	// MaxInflight bounds the requests of one connection that are read but
	// not yet answered; the connection stops reading at the bound. Zero
	// means 128.
	MaxInflight int
	// Listener, when set, is used instead of listening on Listen (a port
	// bound before the server was built).
	Listener net.Listener
	// IdleTimeout is connections.max.idle.ms: a connection with no request
	// for this long is closed. Zero means 10 minutes, Kafka's default.
	IdleTimeout time.Duration
}

// Server accepts Kafka client connections and serves them with a Handler.
type Server struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	tel     *telemetry

	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed atomic.Bool
}

// Params are New's dependencies. Logger, TracerProvider and MeterProvider
// may be nil (then slog.Default and no-op telemetry are used).
type Params struct {
	Config         Config
	Handler        Handler
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// New returns a server that is not yet listening.
func New(p Params) (*Server, error) {
	if p.Handler == nil {
		return nil, errors.New("wire: New needs a Handler")
	}
	cfg := p.Config
	if cfg.MaxRequestSize == 0 {
		cfg.MaxRequestSize = DefaultMaxRequestSize
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = 128
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	tel, err := newTelemetry(p.TracerProvider, p.MeterProvider)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, handler: p.Handler, log: log.With("component", "wire"), tel: tel,
		ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{}}, nil
}

// Start listens and serves: Listen, then Serve.
func (s *Server) Start() error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.Serve()
	return nil
}

// Listen binds Config.Listen synchronously, so a busy port fails the
// start, without accepting yet: connections queue in the backlog until
// Serve, which lets the broker bind its port before it registers (and so
// know the port it advertises) but answer only once it is ready.
func (s *Server) Listen() error {
	if s.cfg.Listener != nil {
		s.ln = s.cfg.Listener
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("wire: listen: %w", err)
	}
	s.ln = ln
	return nil
}

// Serve accepts connections in the background.
func (s *Server) Serve() {
	s.wg.Add(1)
	go s.accept()
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

func (s *Server) accept() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return
			}
			// Out of file descriptors and similar: wait, as net/http does.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			s.log.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines (handlers are told through their context).
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
