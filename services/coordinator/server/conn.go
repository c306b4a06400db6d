package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// maxOutstanding bounds the writes one connection may have in flight; the
// reader stops reading until some complete.
const maxOutstanding = 1000

// conn is one client connection. The reader goroutine (serve) decodes and
// dispatches requests; the writer goroutine drains out.
type conn struct {
	s  *Server
	nc net.Conn
	ip string

	sessionID atomic.Int64
	creating  atomic.Bool
	closed    atomic.Bool
	timeout   time.Duration
	connected time.Time

	received atomic.Int64
	sent     atomic.Int64
	lastZxid atomic.Int64

	mu          sync.Mutex
	cond        *sync.Cond
	auth        []jute.Id
	pending     []*slot // writes awaiting their result, in request order
	outstanding int
	out         []byte // encoded frames ready to send
	spare       []byte // the previous out, reused
	writing     bool   // a goroutine is writing to the socket
	closeAfter  bool   // close once out is written
	failed      bool   // a write failed: propose nothing more
	wake        chan struct{}
	writerDone  chan struct{}
}

// slot holds the response of one in-flight write until every earlier
// response has been queued.
type slot struct {
	ready      bool
	buf        []byte
	closeAfter bool
}

func newConn(s *Server, nc net.Conn, ip string) *conn {
	c := &conn{
		s:          s,
		nc:         nc,
		ip:         ip,
		connected:  time.Now(),
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		auth:       []jute.Id{{Scheme: "ip", ID: ip}},
	}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Notify implements znode.Watcher: it queues a notification (xid -1).
//
// ZooKeeper 3.8 sends -1 as the zxid of every notification; clients ignore
// it, and matching it keeps captures of the two servers comparable.
func (c *conn) Notify(ev jute.WatcherEvent, _ int64) {
	buf := jute.AppendFrame(nil, &jute.ReplyHeader{Xid: jute.XidNotification, Zxid: -1, Err: jute.ErrOK}, &ev)
	c.mu.Lock()
	c.out = append(c.out, buf...)
	c.mu.Unlock()
	c.signal()
}

// WatcherSession implements znode.Watcher.
func (c *conn) WatcherSession() int64 { return c.sessionID.Load() }

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) close() {
	if c.closed.Swap(true) {
		return
	}
	c.nc.Close()
	c.mu.Lock()
	c.cond.Broadcast()
	c.mu.Unlock()
	c.signal()
}

// expire closes a connection whose session the leader expired.
func (c *conn) expire() { c.close() }

func (c *conn) serve() {
	defer c.s.removeConn(c)
	defer c.s.db.RemoveWatcher(c)
	defer c.close()
	br := bufio.NewReaderSize(c.nc, 64<<10)

	// The first four bytes are either a frame length or a four-letter word.
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.TickTime * 5))
	head, err := br.Peek(4)
	if err != nil {
		return
	}
	if cmd := string(head); isFourLetterWord(cmd) {
		_, _ = br.Discard(4)
		c.s.fourLetter(c.nc, cmd)
		return
	}
	frame, err := jute.ReadFrame(br, nil, c.s.cfg.MaxPacket)
	if err != nil {
		c.s.logBadInput(c, "connect request", err)
		return
	}
	go c.writer()
	// On the way out, send what is queued (a final error or expiry
	// answer), then stop the writer.
	defer func() {
		c.closeAfterFlush()
		<-c.writerDone
	}()
	if !c.handshake(frame) {
		return
	}

	var buf []byte
	for !c.closed.Load() {
		// A client pings every third of its timeout; silence for the
		// whole timeout means it is gone.
		_ = c.nc.SetReadDeadline(time.Now().Add(c.timeout))
		frame, err := jute.ReadFrame(br, buf, c.s.cfg.MaxPacket)
		if err != nil {
			if !errors.Is(err, io.EOF) && !c.closed.Load() && !isTimeout(err) && !errors.Is(err, net.ErrClosed) {
				c.s.logBadInput(c, "request frame", err)
			}
			return
		}
		buf = frame[:0]
		c.received.Add(1)
		c.s.stats.received.Add(1)
		if !c.dispatch(frame) {
			return
		}
		// Answer pipelined requests in one write: flush only when no
		// further request is already buffered.
		if br.Buffered() == 0 && c.flush() {
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handshake answers the connect request; false closes the connection.
func (c *conn) handshake(frame []byte) bool {
	var req jute.ConnectRequest
	if err := jute.Decode(frame, &req, false); err != nil {
		c.s.logBadInput(c, "connect request", err)
		return false
	}
	s := c.s
	if last := s.db.LastZxid(); req.LastZxidSeen > last {
		s.log.Info("refusing session: client has seen a newer zxid than this server; it will try another server",
			"client_zxid", fmt.Sprintf("0x%x", req.LastZxidSeen), "server_zxid", fmt.Sprintf("0x%x", last), "remote", c.nc.RemoteAddr().String())
		return false
	}
	minTO, maxTO := 2*s.cfg.TickTime, 20*s.cfg.TickTime
	to := time.Duration(req.TimeOut) * time.Millisecond
	to = max(minTO, min(to, maxTO))
	c.timeout = to

	if req.SessionID == 0 {
		id := s.nextSessionID()
		passwd := newPasswd()
		c.creating.Store(true)
		c.sessionID.Store(id)
		s.bindSession(c, id)
		done := make(chan error, 1)
		s.rep.Propose(&znode.Txn{Time: time.Now().UnixMilli(), SessionID: id, Op: jute.OpCreateSession,
			Timeout: int32(to / time.Millisecond), Passwd: passwd},
			func(_ znode.Result, err error) { done <- err })
		err := <-done
		c.creating.Store(false)
		if err != nil {
			s.log.Warn("could not create session", "err", err)
			return false
		}
		s.tracker.touch(id, to, time.Now())
		c.queue(jute.AppendFrame(nil, &jute.ConnectResponse{TimeOut: int32(to / time.Millisecond), SessionID: id, Passwd: passwd}))
		return true
	}

	sess, ok := s.db.Session(req.SessionID)
	if !ok && s.rep.Mode() != "standalone" {
		// This member may lag behind the one that created the session:
		// catch up through the log before declaring the session gone.
		done := make(chan error, 1)
		s.rep.Propose(&znode.Txn{Time: time.Now().UnixMilli(), Op: jute.OpSync, Req: &jute.PathRequest{Path: "/"}},
			func(_ znode.Result, err error) { done <- err })
		if err := <-done; err != nil {
			s.log.Info("cannot check a resuming session while the ensemble has no leader; the client will retry", "err", err)
			return false
		}
		sess, ok = s.db.Session(req.SessionID)
	}
	if !ok || !equalBytes(sess.Passwd, req.Passwd) {
		// TimeOut 0 tells the client its session is gone.
		c.queue(jute.AppendFrame(nil, &jute.ConnectResponse{Passwd: make([]byte, 16)}))
		c.closeAfterFlush()
		return false
	}
	c.sessionID.Store(sess.ID)
	if old := s.bindSession(c, sess.ID); old != nil {
		old.close()
	}
	s.tracker.touch(sess.ID, to, time.Now())
	c.queue(jute.AppendFrame(nil, &jute.ConnectResponse{TimeOut: int32(to / time.Millisecond), SessionID: sess.ID, Passwd: sess.Passwd}))
	return true
}

func equalBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// dispatch handles one request frame; false closes the connection.
func (c *conn) dispatch(frame []byte) bool {
	s := c.s
	d := jute.NewDecoder(frame)
	var hdr jute.RequestHeader
	hdr.Decode(d)
	if d.Err() != nil {
		s.logBadInput(c, "request header", d.Err())
		return false
	}
	body := frame[d.Off:]
	op := hdr.Type
	start := time.Now()
	sid := c.sessionID.Load()

	rec, known := jute.RequestRecord(op)
	if !known || op == jute.OpSASL || op == jute.OpReconfig {
		c.waitWrites()
		c.reply(hdr.Xid, s.db.LastZxid(), jute.ErrUnimplemented, nil, start, op)
		return true
	}
	if rec != nil {
		if err := jute.Decode(body, rec, false); err != nil {
			s.logBadInput(c, jute.OpName(op)+" request", err)
			return false
		}
	}
	s.tracker.touch(sid, c.timeout, start)
	if m, ok := rec.(*jute.MultiRequest); ok && !multiOpsAllowed(op, m) {
		// ZooKeeper cannot deserialize a read inside multi (or a write
		// inside multiRead) and answers MarshallingError.
		c.waitWrites()
		c.reply(hdr.Xid, s.db.LastZxid(), jute.ErrMarshallingError, nil, start, op)
		return true
	}

	switch op {
	case jute.OpPing:
		c.waitWrites()
		c.reply(hdr.Xid, s.db.LastZxid(), jute.ErrOK, nil, start, op)
	case jute.OpAuth:
		c.waitWrites()
		return c.addAuth(hdr.Xid, rec.(*jute.AuthPacket), start)
	case jute.OpWhoAmI:
		c.waitWrites()
		c.mu.Lock()
		resp := &jute.WhoAmIResponse{ClientInfo: make([]jute.ClientInfo, len(c.auth))}
		for i, id := range c.auth {
			user := id.ID
			if id.Scheme == "digest" {
				// ZooKeeper reports the user name, not the hashed id.
				user, _, _ = strings.Cut(user, ":")
			}
			resp.ClientInfo[i] = jute.ClientInfo{AuthScheme: id.Scheme, User: user}
		}
		c.mu.Unlock()
		c.reply(hdr.Xid, s.db.LastZxid(), jute.ErrOK, resp, start, op)
	case jute.OpSync:
		if s.rep.Mode() == "standalone" {
			c.waitWrites()
			c.reply(hdr.Xid, s.db.LastZxid(), jute.ErrOK, rec, start, op)
			return true
		}
		c.propose(hdr, op, &znode.Txn{Op: jute.OpSync, Req: rec}, start, false)
	case jute.OpCloseSession:
		c.propose(hdr, op, &znode.Txn{Op: jute.OpCloseSession}, start, true)
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL, jute.OpDelete,
		jute.OpSetData, jute.OpSetACL, jute.OpCheck, jute.OpMulti:
		c.propose(hdr, op, &znode.Txn{Op: op, Req: rec}, start, false)
	default:
		c.waitWrites()
		if p, ok := readPath(rec); ok && znode.ValidatePath(p, false) != nil {
			c.reply(hdr.Xid, s.db.LastZxid(), jute.ErrBadArguments, nil, start, op)
			return true
		}
		ctx, span := s.startSpan(op, sid)
		resp, code := s.db.Read(sid, c.authSnapshot(), op, rec, c)
		_ = ctx
		endSpan(span, code)
		if code != jute.ErrOK && op != jute.OpMultiRead {
			resp = nil
		}
		c.reply(hdr.Xid, s.db.LastZxid(), code, resp, start, op)
	}
	return true
}

// multiOpsAllowed reports whether every operation of m belongs in op:
// writes and checks in multi, getData and getChildren in multiRead.
func multiOpsAllowed(op int32, m *jute.MultiRequest) bool {
	for _, o := range m.Ops {
		read := o.Type == jute.OpGetData || o.Type == jute.OpGetChildren
		if read != (op == jute.OpMultiRead) {
			return false
		}
	}
	return true
}

// readPath returns the path a read request names, so an invalid one is
// answered with BadArguments before it reaches the tree.
func readPath(rec jute.Record) (string, bool) {
	switch r := rec.(type) {
	case *jute.PathWatchRequest:
		return r.Path, true
	case *jute.PathRequest:
		return r.Path, true
	case *jute.AddWatchRequest:
		return r.Path, true
	case *jute.RemoveWatchesRequest:
		return r.Path, true
	}
	return "", false
}

func (c *conn) authSnapshot() []jute.Id {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]jute.Id(nil), c.auth...)
}

// addAuth handles an auth packet. Only the digest scheme exists here (SASL
// is not offered); an unknown scheme fails the connection like ZooKeeper.
func (c *conn) addAuth(xid int32, p *jute.AuthPacket, start time.Time) bool {
	if p.Scheme == "digest" {
		user, pass, ok := strings.Cut(string(p.Auth), ":")
		if ok {
			id := jute.Id{Scheme: "digest", ID: znode.DigestID(user, pass)}
			c.mu.Lock()
			dup := false
			for _, a := range c.auth {
				dup = dup || a == id
			}
			if !dup {
				c.auth = append(c.auth, id)
			}
			c.mu.Unlock()
			c.reply(xid, 0, jute.ErrOK, nil, start, jute.OpAuth)
			return true
		}
	}
	c.s.log.Info("authentication failed", "scheme", p.Scheme, "remote", c.nc.RemoteAddr().String())
	c.reply(xid, 0, jute.ErrAuthFailed, nil, start, jute.OpAuth)
	c.closeAfterFlush()
	return false
}

// propose sends a write to the replicator and reserves its place in the
// response order.
func (c *conn) propose(hdr jute.RequestHeader, op int32, t *znode.Txn, start time.Time, closeAfter bool) {
	s := c.s
	c.mu.Lock()
	for c.outstanding >= maxOutstanding && !c.closed.Load() {
		c.cond.Wait()
	}
	if c.failed || c.closed.Load() {
		// An earlier write failed and dropped the connection: proposing
		// this one could commit it while its predecessor was lost, which
		// would break the session's FIFO order.
		c.mu.Unlock()
		return
	}
	sl := &slot{closeAfter: closeAfter}
	c.pending = append(c.pending, sl)
	c.outstanding++
	auth := append([]jute.Id(nil), c.auth...)
	c.mu.Unlock()

	sid := c.sessionID.Load()
	t.Time = start.UnixMilli()
	t.SessionID = sid
	t.Cxid = hdr.Xid
	t.Auth = auth
	_, span := s.startSpan(op, sid)
	s.stats.outstanding.Add(1)
	s.rep.Propose(t, func(res znode.Result, err error) {
		s.stats.outstanding.Add(-1)
		var buf []byte
		if err != nil {
			// The write's fate is unknown to the client: like ZooKeeper,
			// drop the connection so it reconnects and checks.
			endSpan(span, jute.ErrConnectionLoss)
			c.mu.Lock()
			c.failed = true
			c.mu.Unlock()
			c.close()
			return
		}
		endSpan(span, res.Err)
		resp, code := res.Resp, res.HeaderErr()
		if code != jute.ErrOK {
			resp = nil
		}
		buf = c.encodeReply(hdr.Xid, res.Zxid, code, resp, start, op)
		c.complete(sl, buf)
	})
}

// complete fills a slot and moves every ready response at the head of the
// queue to the output buffer.
func (c *conn) complete(sl *slot, buf []byte) {
	c.mu.Lock()
	sl.ready, sl.buf = true, buf
	n := 0
	for _, p := range c.pending {
		if !p.ready {
			break
		}
		c.out = append(c.out, p.buf...)
		if p.closeAfter {
			c.closeAfter = true
		}
		n++
	}
	if n > 0 {
		clear(c.pending[:n])
		c.pending = c.pending[n:]
	}
	c.outstanding--
	c.cond.Broadcast()
	c.mu.Unlock()
	c.signal()
}

// waitWrites blocks until every earlier write of this connection has been
// answered, so a read sees them.
func (c *conn) waitWrites() {
	c.mu.Lock()
	for c.outstanding > 0 && !c.closed.Load() {
		c.cond.Wait()
	}
	c.mu.Unlock()
}

func (c *conn) encodeReply(xid int32, zxid int64, code jute.Err, resp jute.Record, start time.Time, op int32) []byte {
	c.s.observe(op, start, code)
	if zxid > 0 {
		c.lastZxid.Store(zxid)
	}
	if resp == nil {
		return jute.AppendFrame(nil, &jute.ReplyHeader{Xid: xid, Zxid: zxid, Err: code})
	}
	return jute.AppendFrame(nil, &jute.ReplyHeader{Xid: xid, Zxid: zxid, Err: code}, resp)
}

// reply queues a response of the reader goroutine, which flushes it once
// no more requests are buffered; callers have waited for earlier writes.
func (c *conn) reply(xid int32, zxid int64, code jute.Err, resp jute.Record, start time.Time, op int32) {
	buf := c.encodeReply(xid, zxid, code, resp, start, op)
	c.mu.Lock()
	c.out = append(c.out, buf...)
	c.mu.Unlock()
}

func (c *conn) queue(buf []byte) {
	c.mu.Lock()
	c.out = append(c.out, buf...)
	c.mu.Unlock()
	c.signal()
}

func (c *conn) closeAfterFlush() {
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
	c.signal()
}

// writer sends what the replicator completed and the notifications that
// Apply queued. The reader writes its own replies inline (see flush), so a
// read costs no goroutine hand-off.
func (c *conn) writer() {
	defer close(c.writerDone)
	for range c.wake {
		if c.flush() {
			return
		}
	}
}

// flush writes everything queued, coalesced into as few writes as possible.
// One goroutine writes at a time: whoever holds the writing token re-checks
// the queue after each write, so bytes queued meanwhile are never stranded.
// It returns true once the connection is closed.
func (c *conn) flush() bool {
	for {
		c.mu.Lock()
		if c.writing {
			c.mu.Unlock()
			return false
		}
		buf, closeAfter := c.out, c.closeAfter
		if len(buf) == 0 {
			c.mu.Unlock()
			if closeAfter || c.closed.Load() {
				c.close()
				return true
			}
			return false
		}
		c.writing = true
		c.out = c.spare[:0]
		c.mu.Unlock()

		_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout()))
		_, err := c.nc.Write(buf)
		c.sent.Add(int64(countFrames(buf)))

		c.mu.Lock()
		c.writing = false
		c.spare = buf
		c.mu.Unlock()
		if err != nil {
			c.close()
			return true
		}
	}
}

func (c *conn) writeTimeout() time.Duration {
	if c.timeout > 0 {
		return c.timeout
	}
	return 10 * time.Second
}

// countFrames counts the length-prefixed frames in buf (for the sent
// statistics of stat and cons).
func countFrames(buf []byte) int {
	n := 0
	for len(buf) >= 4 {
		l := int(binary.BigEndian.Uint32(buf))
		if l < 0 || 4+l > len(buf) {
			break
		}
		buf = buf[4+l:]
		n++
	}
	return n
}

func (s *Server) startSpan(op int32, sid int64) (context.Context, trace.Span) {
	return s.tracer.Start(context.Background(), "zookeeper "+jute.OpName(op),
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("zookeeper.op", jute.OpName(op)), attribute.Int64("zookeeper.session_id", sid)))
}

func endSpan(span trace.Span, code jute.Err) {
	if code != jute.ErrOK {
		span.SetAttributes(attribute.String("zookeeper.error", code.Error()))
	}
	span.End()
}

func (s *Server) logBadInput(c *conn, what string, err error) {
	s.stats.badInput.Add(1)
	s.log.Warn("closing connection after bad input", "what", what, "err", err, "remote", c.nc.RemoteAddr().String())
}
