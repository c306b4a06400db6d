package ensemble

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Forwarding: a follower sends its members' writes to the leader over one
// connection (the "stream"), in proposal order, batching whatever queued up
// while the previous batch was being written. The leader appends them to
// raft in the order received and acknowledges each in that order. A
// follower answers its client only when its own state machine applies the
// entry, so the client reads its write on the member it talks to.
//
// A stream is fail-stop: when it breaks, or the leader changes, every write
// sent on it and not yet acknowledged fails, and so does everything queued
// behind them. Writes of one session therefore never commit out of order:
// a later write cannot commit through a new stream while an earlier one
// might have been lost with the old.

// forwardWriteTimeout bounds one write on a forward connection; a peer
// that stops reading is treated as gone.
const forwardWriteTimeout = 10 * time.Second

type fwdItem struct {
	origin uint64
	env    []byte
}

// forwarder is the follower side. One goroutine (run) connects and writes;
// each stream has a goroutine reading acks.
type forwarder struct {
	e    *Ensemble
	wake chan struct{}

	mu     sync.Mutex
	queue  []fwdItem
	live   []int64
	stream *fwdStream
	closed bool
	// dialErr remembers the last failure to reach the leader so that
	// retries every tick log once, not every time.
	dialErr string
}

type fwdStream struct {
	f    *forwarder
	conn net.Conn
	addr string
	bw   *bufio.Writer
	fw   frameWriter
	envs [][]byte

	// Guarded by forwarder.mu.
	inflight []uint64
	dead     bool
}

func newForwarder(e *Ensemble) *forwarder {
	return &forwarder{e: e, wake: make(chan struct{}, 1)}
}

func (f *forwarder) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// enqueue queues a write for the leader, or fails it at once when no
// leader is known: waiting would only delay the client's ConnectionLoss.
func (f *forwarder) enqueue(origin uint64, env []byte) {
	if addr, _ := f.e.raft.LeaderWithID(); addr == "" {
		f.e.fail(origin, ErrNoLeader)
		return
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.e.fail(origin, ErrStopped)
		return
	}
	f.queue = append(f.queue, fwdItem{origin, env})
	f.mu.Unlock()
	f.poke()
}

// reportLive replaces the pending liveness report; only the newest matters.
func (f *forwarder) reportLive(ids []int64) {
	f.mu.Lock()
	f.live = ids
	f.mu.Unlock()
	f.poke()
}

// connected reports whether a stream to the current leader is up.
func (f *forwarder) connected() bool {
	addr, _ := f.e.raft.LeaderWithID()
	f.mu.Lock()
	defer f.mu.Unlock()
	return addr != "" && f.stream != nil && !f.stream.dead && f.stream.addr == string(addr)
}

func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	st := f.stream
	queued := f.queue
	f.queue = nil
	f.mu.Unlock()
	if st != nil {
		st.fail(ErrStopped)
	}
	for _, it := range queued {
		f.e.fail(it.origin, ErrStopped)
	}
}

func (f *forwarder) run() {
	defer f.e.wg.Done()
	// The tick reconnects after a failure and keeps a stream to a new
	// leader open even when nothing is written, so Writable is accurate.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-f.e.stopped:
			return
		case <-f.wake:
		case <-tick.C:
		}
		f.step()
	}
}

func (f *forwarder) step() {
	e := f.e
	addr, id := e.raft.LeaderWithID()
	f.mu.Lock()
	st := f.stream
	items := f.queue
	f.queue = nil
	live := f.live
	f.live = nil
	f.mu.Unlock()

	switch {
	case id == e.selfID:
		// This member became the leader while writes were queued for the
		// old one: append them here, still in order.
		if st != nil {
			st.fail(ErrNotLeader)
		}
		for _, it := range items {
			e.applyLocal(it.origin, it.env)
		}
		e.touch(live)
		return
	case addr == "":
		if st != nil {
			st.fail(ErrNoLeader)
		}
		f.failItems(items, ErrNoLeader)
		return
	}
	if st != nil && st.addr != string(addr) {
		st.fail(fmt.Errorf("%w: leader moved to %s", ErrLeaderUnreachable, addr))
		st = nil
	}
	if st == nil {
		var err error
		if st, err = f.connect(string(addr)); err != nil {
			f.failItems(items, fmt.Errorf("%w: %w", ErrLeaderUnreachable, err))
			return
		}
	}
	st.send(items, live)
}

func (f *forwarder) failItems(items []fwdItem, err error) {
	for _, it := range items {
		f.e.fail(it.origin, err)
	}
}

func (f *forwarder) connect(addr string) (*fwdStream, error) {
	c, err := dial(addr, muxForward, dialTimeout)
	if err == nil {
		st := &fwdStream{f: f, conn: c, addr: addr}
		st.bw = bufio.NewWriterSize(c, 256<<10)
		st.fw.w = st.bw
		_ = c.SetWriteDeadline(time.Now().Add(forwardWriteTimeout))
		if err = st.fw.hello(f.e.opts.ID); err == nil {
			err = st.bw.Flush()
		}
		if err == nil {
			f.mu.Lock()
			if f.closed {
				f.mu.Unlock()
				c.Close()
				return nil, ErrStopped
			}
			f.stream = st
			f.dialErr = ""
			f.mu.Unlock()
			f.e.lg.Info("forwarding writes to the leader", "leader", addr)
			f.e.wg.Add(1)
			go st.readAcks()
			return st, nil
		}
		c.Close()
	}
	f.mu.Lock()
	first := f.dialErr != err.Error()
	f.dialErr = err.Error()
	f.mu.Unlock()
	if first {
		f.e.lg.Warn("cannot reach the leader to forward writes; retrying", "leader", addr, "err", err)
	}
	return nil, err
}

// send writes a batch (and a liveness report); only run calls it.
func (st *fwdStream) send(items []fwdItem, live []int64) {
	f := st.f
	f.mu.Lock()
	if st.dead {
		f.mu.Unlock()
		f.failItems(items, ErrLeaderUnreachable)
		return
	}
	for _, it := range items {
		st.inflight = append(st.inflight, it.origin)
	}
	f.mu.Unlock()

	_ = st.conn.SetWriteDeadline(time.Now().Add(forwardWriteTimeout))
	var err error
	for len(items) > 0 && err == nil {
		st.envs = st.envs[:0]
		size := 0
		for len(items) > 0 && (len(st.envs) == 0 || size+len(items[0].env) <= maxBatchBytes) {
			st.envs = append(st.envs, items[0].env)
			size += len(items[0].env)
			items = items[1:]
		}
		err = st.fw.batch(st.envs)
	}
	clear(st.envs)
	if err == nil && len(live) > 0 {
		err = st.fw.live(live)
	}
	if err == nil {
		err = st.bw.Flush()
	}
	if err != nil {
		st.fail(fmt.Errorf("%w: %w", ErrLeaderUnreachable, err))
	}
}

// readAcks matches the leader's acks to the writes in flight.
func (st *fwdStream) readAcks() {
	f := st.f
	defer f.e.wg.Done()
	br := bufio.NewReaderSize(st.conn, 64<<10)
	var buf []byte
	var acks []ack
	for {
		typ, body, b, err := readFrame(br, buf)
		buf = b
		if err == nil && typ != frameAcks {
			err = fmt.Errorf("%w: frame type %d from the leader", ErrBadFrame, typ)
		}
		if err == nil {
			acks, err = parseAcks(body, acks)
		}
		if err != nil {
			st.fail(fmt.Errorf("%w: %w", ErrLeaderUnreachable, err))
			return
		}
		for _, a := range acks {
			f.mu.Lock()
			match := len(st.inflight) > 0 && st.inflight[0] == a.origin
			if match {
				st.inflight = st.inflight[1:]
			}
			f.mu.Unlock()
			if !match {
				st.fail(fmt.Errorf("%w: ack for an unexpected write", ErrBadFrame))
				return
			}
			switch a.code {
			case ackOK:
				// Committed: this member's state machine will apply it.
			case ackNotLeader:
				f.e.fail(a.origin, ErrNotLeader)
			default:
				f.e.fail(a.origin, fmt.Errorf("%w: the leader could not append the write", ErrLeaderUnreachable))
			}
		}
	}
}

// fail closes the stream and fails what was sent and not acknowledged, and
// everything queued behind it.
func (st *fwdStream) fail(err error) {
	f := st.f
	f.mu.Lock()
	if st.dead {
		f.mu.Unlock()
		return
	}
	st.dead = true
	inflight := st.inflight
	st.inflight = nil
	queued := f.queue
	f.queue = nil
	if f.stream == st {
		f.stream = nil
	}
	f.mu.Unlock()
	st.conn.Close()
	for _, o := range inflight {
		f.e.fail(o, err)
	}
	f.failItems(queued, err)
	if !errors.Is(err, ErrStopped) {
		f.e.lg.Info("forward stream to the leader closed", "leader", st.addr, "err", err, "failed_writes", len(inflight)+len(queued))
		f.poke()
	}
}

// leaderPending is one forwarded write on the leader, waiting for raft.
type leaderPending struct {
	origin uint64
	f      raft.ApplyFuture
	code   byte
}

// serveForward is the leader side of one follower's stream. It runs on the
// mux's goroutine for the connection.
func (e *Ensemble) serveForward(c net.Conn) {
	e.connsMu.Lock()
	select {
	case <-e.stopped:
		e.connsMu.Unlock()
		c.Close()
		return
	default:
	}
	e.conns[c] = struct{}{}
	e.connsMu.Unlock()
	defer func() {
		e.connsMu.Lock()
		delete(e.conns, c)
		e.connsMu.Unlock()
		c.Close()
	}()

	br := bufio.NewReaderSize(c, 256<<10)
	_ = c.SetReadDeadline(time.Now().Add(muxFirstByteTimeout))
	typ, body, _, err := readFrame(br, nil)
	if err == nil && typ != frameHello {
		err = fmt.Errorf("%w: first frame of type %d, want hello", ErrBadFrame, typ)
	}
	var peer int
	if err == nil {
		peer, err = parseHello(body)
	}
	if err != nil {
		e.lg.Warn("closing forward connection", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	lg := e.lg.With("peer", peer)

	pend := make(chan leaderPending, 4096)
	respDone := make(chan struct{})
	go e.respondForward(c, pend, respDone)
	defer func() {
		close(pend)
		<-respDone
	}()
	var envs [][]byte
	for {
		// A fresh buffer per frame: raft keeps the envelopes until they
		// are stored and replicated.
		typ, body, _, err := readFrame(br, nil)
		if err != nil {
			return
		}
		switch typ {
		case frameBatch:
			if envs, err = parseBatch(body, envs); err != nil {
				lg.Warn("closing forward connection after a bad batch", "err", err)
				return
			}
			for _, env := range envs {
				origin := binary.BigEndian.Uint64(env[1:])
				if e.raft.State() != raft.Leader {
					pend <- leaderPending{origin: origin, code: ackNotLeader}
					continue
				}
				pend <- leaderPending{origin: origin, f: e.raft.Apply(env, 0)}
			}
			clear(envs)
		case frameLive:
			ids, err := parseLive(body)
			if err != nil {
				lg.Warn("closing forward connection after a bad liveness report", "err", err)
				return
			}
			if e.raft.State() == raft.Leader {
				e.touch(ids)
			}
		default:
			lg.Warn("closing forward connection after an unknown frame", "type", typ)
			return
		}
	}
}

// respondForward waits for each forwarded write's raft future, in order,
// and acknowledges it; acks that are ready together go in one frame. After
// the first failure it closes the connection (see the stream contract).
func (e *Ensemble) respondForward(c net.Conn, pend chan leaderPending, done chan struct{}) {
	defer close(done)
	bw := bufio.NewWriterSize(c, 64<<10)
	fw := frameWriter{w: bw}
	var batch []ack
	broken := false
	for p := range pend {
		if broken {
			continue
		}
		a := ack{origin: p.origin, code: p.code}
		if p.f != nil {
			if err := p.f.Error(); err != nil {
				a.code = ackFailed
				if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
					a.code = ackNotLeader
				}
			} else {
				a.index = p.f.Index()
			}
		}
		batch = append(batch, a)
		if a.code != ackOK || len(pend) == 0 || len(batch) >= 4096 {
			_ = c.SetWriteDeadline(time.Now().Add(forwardWriteTimeout))
			err := fw.acks(batch)
			if err == nil {
				err = bw.Flush()
			}
			batch = batch[:0]
			if err != nil || a.code != ackOK {
				broken = true
				c.Close()
			}
		}
	}
}
