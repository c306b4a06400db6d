package zktest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// Errors of RawConn.
var (
	// ErrRawClosed means the connection ended (closed by either side)
	// before a reply arrived.
	ErrRawClosed = errors.New("zktest: raw connection closed")
	// ErrRawTimeout means no reply arrived within RawCallTimeout.
	ErrRawTimeout = errors.New("zktest: raw call timed out")
)

// RawCallTimeout bounds the wait for one reply.
const RawCallTimeout = 30 * time.Second

// RawConn is a minimal ZooKeeper client speaking jute directly: one
// session on one connection, requests answered in order, notifications
// kept in arrival order, pings sent in the background. It exists for
// requests go-zookeeper v1.0.4 cannot make and for checking exact error
// codes, since go-zookeeper validates paths itself and folds codes into
// Go errors.
type RawConn struct {
	// SessionID and Timeout are what the server granted.
	SessionID int64
	Timeout   time.Duration

	conn net.Conn

	wmu sync.Mutex // serialises writes and xid allocation
	xid int32

	mu      sync.Mutex
	pending map[int32]chan rawReply
	events  []jute.WatcherEvent
	err     error // why the read loop ended

	done      chan struct{} // closed when the read loop ends
	stopPing  chan struct{}
	closeOnce sync.Once
}

type rawReply struct {
	hdr  jute.ReplyHeader
	body []byte
}

// DialRaw connects to addr and opens a new session asking for timeout.
func DialRaw(addr string, timeout time.Duration) (*RawConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("zktest: raw dial %s: %w", addr, err)
	}
	req := jute.ConnectRequest{
		TimeOut:     int32(timeout.Milliseconds()),
		Passwd:      make([]byte, 16),
		HasReadOnly: true,
	}
	_ = conn.SetDeadline(time.Now().Add(ConnectTimeout))
	if _, err := conn.Write(jute.AppendFrame(nil, &req)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("zktest: raw connect %s: %w", addr, err)
	}
	frame, err := jute.ReadFrame(conn, nil, jute.MaxPacket)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("zktest: raw connect %s: %w", addr, err)
	}
	var resp jute.ConnectResponse
	if err := jute.Decode(frame, &resp, false); err != nil {
		conn.Close()
		return nil, fmt.Errorf("zktest: raw connect %s: %w", addr, err)
	}
	if resp.TimeOut <= 0 {
		conn.Close()
		return nil, fmt.Errorf("zktest: raw connect %s: server refused the session (timeout %d)", addr, resp.TimeOut)
	}
	_ = conn.SetDeadline(time.Time{})
	c := &RawConn{
		SessionID: resp.SessionID,
		Timeout:   time.Duration(resp.TimeOut) * time.Millisecond,
		conn:      conn,
		pending:   map[int32]chan rawReply{},
		done:      make(chan struct{}),
		stopPing:  make(chan struct{}),
	}
	go c.readLoop()
	go c.pingLoop()
	return c, nil
}

// Raw opens a RawConn for the test and closes it when the test ends.
func Raw(t testing.TB, addr string) *RawConn {
	t.Helper()
	c, err := DialRaw(addr, SessionTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (c *RawConn) readLoop() {
	var err error
loop:
	for {
		var frame []byte
		frame, err = jute.ReadFrame(c.conn, nil, 64<<20)
		if err != nil {
			break loop
		}
		d := jute.NewDecoder(frame)
		var hdr jute.ReplyHeader
		hdr.Decode(d)
		if d.Err() != nil {
			err = fmt.Errorf("zktest: reply header: %w", d.Err())
			break loop
		}
		body := frame[d.Off:]
		switch hdr.Xid {
		case jute.XidNotification:
			var ev jute.WatcherEvent
			if err = jute.Decode(body, &ev, true); err != nil {
				err = fmt.Errorf("zktest: notification: %w", err)
				break loop
			}
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
			continue
		case jute.XidPing:
			continue
		}
		c.mu.Lock()
		ch := c.pending[hdr.Xid]
		delete(c.pending, hdr.Xid)
		c.mu.Unlock()
		if ch == nil {
			err = fmt.Errorf("zktest: reply for unknown xid %d", hdr.Xid)
			break loop
		}
		ch <- rawReply{hdr: hdr, body: body}
	}
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
	c.conn.Close()
}

func (c *RawConn) pingLoop() {
	t := time.NewTicker(c.Timeout / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			hdr := jute.RequestHeader{Xid: jute.XidPing, Type: jute.OpPing}
			c.wmu.Lock()
			_, err := c.conn.Write(jute.AppendFrame(nil, &hdr))
			c.wmu.Unlock()
			if err != nil {
				return
			}
		case <-c.stopPing:
			return
		case <-c.done:
			return
		}
	}
}

// Call sends one request and waits for its reply. A non-nil error means
// the connection failed; otherwise the reply header's Err is the server's
// answer, and resp (which may be nil) is decoded from the body whenever the
// server sent one, which for a failed multi carries the per-operation
// results.
func (c *RawConn) Call(op jute.Op, req, resp jute.Record) (jute.ReplyHeader, error) {
	return c.call(0, op, req, resp)
}

// AddAuth sends an auth packet (the xid -4 request) and returns the
// server's code.
func (c *RawConn) AddAuth(scheme string, auth []byte) (jute.Err, error) {
	hdr, err := c.call(jute.XidAuth, jute.OpAuth, &jute.AuthPacket{Scheme: scheme, Auth: auth}, nil)
	return hdr.Err, err
}

func (c *RawConn) call(xid int32, op jute.Op, req, resp jute.Record) (jute.ReplyHeader, error) {
	ch := make(chan rawReply, 1)
	c.wmu.Lock()
	if xid == 0 {
		c.xid++
		xid = c.xid
	}
	c.mu.Lock()
	if c.pending == nil {
		c.mu.Unlock()
		c.wmu.Unlock()
		return jute.ReplyHeader{}, ErrRawClosed
	}
	c.pending[xid] = ch
	c.mu.Unlock()
	hdr := jute.RequestHeader{Xid: xid, Type: op}
	recs := []jute.Record{&hdr}
	if req != nil {
		recs = append(recs, req)
	}
	_, err := c.conn.Write(jute.AppendFrame(nil, recs...))
	c.wmu.Unlock()
	if err != nil {
		return jute.ReplyHeader{}, fmt.Errorf("zktest: raw %s: %w", jute.OpName(op), err)
	}
	timer := time.NewTimer(RawCallTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if resp != nil && len(r.body) > 0 {
			if err := jute.Decode(r.body, resp, false); err != nil {
				return r.hdr, fmt.Errorf("zktest: raw %s reply: %w", jute.OpName(op), err)
			}
		}
		return r.hdr, nil
	case <-c.done:
		// The reply may have been delivered just before the loop ended.
		select {
		case r := <-ch:
			if resp != nil && len(r.body) > 0 {
				_ = jute.Decode(r.body, resp, false)
			}
			return r.hdr, nil
		default:
		}
		return jute.ReplyHeader{}, fmt.Errorf("%w: %s: %v", ErrRawClosed, jute.OpName(op), c.Err())
	case <-timer.C:
		return jute.ReplyHeader{}, fmt.Errorf("%w: %s", ErrRawTimeout, jute.OpName(op))
	}
}

// Events returns the notifications received since the last call, in
// arrival order.
func (c *RawConn) Events() []jute.WatcherEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.events
	c.events = nil
	return out
}

// Barrier makes a round trip (a sync of "/"), after which every
// notification the server sent before answering it has been received.
func (c *RawConn) Barrier() error {
	hdr, err := c.Call(jute.OpSync, &jute.PathRequest{Path: "/"}, nil)
	if err != nil {
		return err
	}
	if hdr.Err != jute.ErrOK {
		return fmt.Errorf("zktest: barrier: %w", hdr.Err)
	}
	return nil
}

// Done is closed when the connection has ended.
func (c *RawConn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, once Done is closed.
func (c *RawConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the session with closeSession, waits for the answer (so the
// session's ephemeral nodes are gone when it returns, if the server
// answered), and closes the connection.
func (c *RawConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.stopPing)
		select {
		case <-c.done:
		default:
			var hdr jute.ReplyHeader
			hdr, err = c.call(0, jute.OpCloseSession, nil, nil)
			if err == nil && hdr.Err != jute.ErrOK {
				err = fmt.Errorf("zktest: closeSession: %w", hdr.Err)
			}
		}
		c.conn.Close()
		<-c.done
		c.mu.Lock()
		c.pending = nil
		c.mu.Unlock()
	})
	return err
}
