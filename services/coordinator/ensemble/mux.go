package ensemble

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The first byte of every connection to a member's raft address says who
// it is for, so one port serves both raft and the forward protocol.
const (
	muxRaft    byte = 1
	muxForward byte = 2
)

// muxFirstByteTimeout bounds how long an accepted connection may stay
// silent before it says what it is; a stray client must not pin a goroutine.
const muxFirstByteTimeout = 10 * time.Second

// errMuxClosed is returned by the raft stream's Accept after Close.
var errMuxClosed = errors.New("ensemble: listener closed")

// mux accepts connections on the raft address and routes each by its first
// byte: raft connections to the stream layer's Accept, forward connections
// to onForward (run on its own goroutine).
type mux struct {
	ln        net.Listener
	advertise net.Addr
	log       *slog.Logger
	onForward func(net.Conn)

	raftConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// advertiseAddr is an address kept exactly as configured in --peers, so
// raft sees this member under the same name the others use for it.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

func newMux(ln net.Listener, advertise string, lg *slog.Logger) *mux {
	return &mux{ln: ln, advertise: advertiseAddr(advertise), log: lg, raftConns: make(chan net.Conn, 16), closed: make(chan struct{})}
}

// serve runs the accept loop until close.
func (m *mux) serve() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		var delay time.Duration
		for {
			c, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.closed:
					return
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				m.log.Warn("raft listener accept failed", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			delay = 0
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.route(c)
			}()
		}
	}()
}

func (m *mux) route(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetReadDeadline(time.Now().Add(muxFirstByteTimeout))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch b[0] {
	case muxRaft:
		select {
		case m.raftConns <- c:
		case <-m.closed:
			c.Close()
		}
	case muxForward:
		m.onForward(c)
	default:
		m.log.Warn("closing connection to the raft port with an unknown first byte", "byte", b[0], "remote", c.RemoteAddr().String())
		c.Close()
	}
}

func (m *mux) close() {
	m.closeOnce.Do(func() {
		close(m.closed)
		m.ln.Close()
	})
}

// wait waits for the accept loop and the routing goroutines (forward
// handlers included) to finish.
func (m *mux) wait() { m.wg.Wait() }

// dial connects to a member's raft address and announces what for.
func dial(addr string, kind byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// streamLayer is raft's view of the mux: raft connections only.
type streamLayer struct{ m *mux }

var _ raft.StreamLayer = streamLayer{}

// Accept implements net.Listener.
func (s streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raftConns:
		return c, nil
	case <-s.m.closed:
		return nil, errMuxClosed
	}
}

// Close implements net.Listener; the mux itself is closed by the ensemble.
func (s streamLayer) Close() error {
	s.m.close()
	return nil
}

// Addr implements net.Listener: the advertised raft address, which is what
// the other members know this one by.
func (s streamLayer) Addr() net.Addr { return s.m.advertise }

// Dial implements raft.StreamLayer.
func (s streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dial(string(addr), muxRaft, timeout)
}
