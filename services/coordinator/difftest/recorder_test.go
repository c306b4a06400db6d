package difftest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/internal/zktest"
	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// opTimeout bounds one operation. go-zookeeper waits for an answer
// forever, so a server that drops a request would otherwise hang the
// suite; after this long the recorder writes TIMEOUT and gives up on the
// scenario.
const opTimeout = 15 * time.Second

// waitTimeout bounds waits for server timers (container and TTL cleanup,
// ephemeral removal after a close).
const waitTimeout = 20 * time.Second

// Create modes, named as ZooKeeper's CreateMode.
const (
	persistent     int32 = jute.FlagPersistent
	ephemeral      int32 = jute.FlagEphemeral
	persistentSeq  int32 = jute.FlagPersistentSequential
	ephemeralSeq   int32 = jute.FlagEphemeralSequential
	container      int32 = jute.FlagContainer
	persistentTTL  int32 = jute.FlagPersistentWithTTL
	persistentSTTL int32 = jute.FlagPersistentSequentialWithTTL
)

var modeNames = map[int32]string{
	persistent: "persistent", ephemeral: "ephemeral", persistentSeq: "persistent_sequential",
	ephemeralSeq: "ephemeral_sequential", container: "container", persistentTTL: "persistent_with_ttl",
	persistentSTTL: "persistent_sequential_with_ttl",
}

func modeName(f int32) string {
	if s, ok := modeNames[f]; ok {
		return s
	}
	return fmt.Sprintf("flags(%d)", f)
}

// openACL is world:anyone with every permission.
var openACL = zk.WorldACL(zk.PermAll)

// zxid and owner are trace items rendered only when the whole trace is
// known: zxids as their rank among all zxids the trace saw, owners as the
// session that holds them.
type (
	zxid  int64
	owner int64
)

// line is one trace line: strings, zxids and owners.
type line []any

// recorder runs one scenario against one server and records a normalized
// trace of everything observable: operations with their results and, after
// each operation, the notifications every open session received.
type recorder struct {
	addr     string
	observer *zk.Conn // untraced, for polling while waiting
	sessions []*session
	lines    []line
	failed   error // infrastructure failure: the scenario stops here
}

func newRecorder(addr string) (*recorder, error) {
	r := &recorder{addr: addr}
	obs, err := r.dial(nil)
	if err != nil {
		return nil, err
	}
	r.observer = obs
	return r, nil
}

func (r *recorder) dial(cb func(zk.Event)) (*zk.Conn, error) {
	if cb == nil {
		cb = func(zk.Event) {}
	}
	conn, events, err := zk.Connect([]string{r.addr}, zktest.SessionTimeout,
		zk.WithLogInfo(false), zk.WithLogger(discard{}), zk.WithEventCallback(cb))
	if err != nil {
		return nil, fmt.Errorf("difftest: connect %s: %w", r.addr, err)
	}
	deadline := time.After(zktest.ConnectTimeout)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn, nil
			}
		case <-deadline:
			conn.Close()
			return nil, fmt.Errorf("difftest: no session with %s", r.addr)
		}
	}
}

type discard struct{}

func (discard) Printf(string, ...any) {}

// close ends every session the scenario left open.
func (r *recorder) close() {
	for _, s := range r.sessions {
		if !s.closed {
			s.shutdown()
		}
	}
	if r.observer != nil {
		r.observer.Close()
	}
}

func (r *recorder) add(items ...any) { r.lines = append(r.lines, items) }

func (r *recorder) fail(err error) {
	if r.failed == nil {
		r.failed = err
		r.add("ABORTED: " + err.Error())
	}
}

// session is one client session, either a go-zookeeper *zk.Conn or a
// RawConn for the requests go-zookeeper lacks.
type session struct {
	r      *recorder
	name   string
	zk     *zk.Conn
	raw    *zktest.RawConn
	id     int64
	closed bool
	// held sessions keep their notifications out of the trace until a
	// wait or a sleep: they watch nodes that a server timer removes, and
	// the moment the timer fires must not decide where the events land.
	held bool

	mu     sync.Mutex
	events []string // notifications not yet written to the trace

	ephemerals []string // nodes to wait for after close
}

// open starts a go-zookeeper session.
func (r *recorder) open() *session {
	s := &session{r: r, name: fmt.Sprintf("s%d", len(r.sessions)+1)}
	if r.failed != nil {
		s.closed = true
		return s
	}
	conn, err := r.dial(s.record)
	if err != nil {
		r.fail(err)
		s.closed = true
		return s
	}
	s.zk, s.id = conn, conn.SessionID()
	r.sessions = append(r.sessions, s)
	r.add(s.name, " open (go-zookeeper)")
	return s
}

// openHeld starts a go-zookeeper session whose notifications are written
// only by waitGone and sleep.
func (r *recorder) openHeld() *session {
	s := r.open()
	s.held = true
	if r.failed == nil {
		r.lines[len(r.lines)-1] = line{s.name, " open (go-zookeeper, events held until a wait)"}
	}
	return s
}

// openRaw starts a RawConn session.
func (r *recorder) openRaw() *session {
	s := &session{r: r, name: fmt.Sprintf("s%d", len(r.sessions)+1)}
	if r.failed != nil {
		s.closed = true
		return s
	}
	raw, err := zktest.DialRaw(r.addr, zktest.SessionTimeout)
	if err != nil {
		r.fail(err)
		s.closed = true
		return s
	}
	s.raw, s.id = raw, raw.SessionID
	r.sessions = append(r.sessions, s)
	r.add(s.name, " open (raw)")
	return s
}

func (s *session) record(ev zk.Event) {
	if ev.Type == zk.EventSession || ev.Type == zk.EventNotWatching {
		return
	}
	s.mu.Lock()
	s.events = append(s.events, eventString(int32(ev.Type), int32(ev.State), ev.Path))
	s.mu.Unlock()
}

var eventNames = map[int32]string{
	jute.EventNone: "None", jute.EventNodeCreated: "NodeCreated", jute.EventNodeDeleted: "NodeDeleted",
	jute.EventNodeDataChanged: "NodeDataChanged", jute.EventNodeChildrenChanged: "NodeChildrenChanged",
	jute.EventDataWatchRemoved: "DataWatchRemoved", jute.EventChildWatchRemoved: "ChildWatchRemoved",
	jute.EventPersistentWatchRemoved: "PersistentWatchRemoved",
}

func eventString(typ, state int32, path string) string {
	name, ok := eventNames[typ]
	if !ok {
		name = fmt.Sprintf("event(%d)", typ)
	}
	s := name + " " + quotePath(path)
	if state != jute.StateSyncConnected {
		s += fmt.Sprintf(" state=%d", state)
	}
	return s
}

// settle makes a round trip on every open session and writes the
// notifications each received, in order. Servers deliver a session's
// notifications in order with its responses, so after the round trip
// every notification caused by the last operation has arrived.
func (r *recorder) settle() { r.settleAll(false, false) }

// settleAll is settle that also writes the events of held sessions when
// withHeld is set, and sorts each session's batch when sorted is set.
func (r *recorder) settleAll(withHeld, sorted bool) {
	if r.failed != nil {
		return
	}
	for _, s := range r.sessions {
		if s.closed {
			continue
		}
		var err error
		if s.raw != nil {
			err = timed(func() error { return s.raw.Barrier() }, nil)
			s.mu.Lock()
			for _, ev := range s.raw.Events() {
				s.events = append(s.events, eventString(ev.Type, ev.State, ev.Path))
			}
			s.mu.Unlock()
		} else {
			err = timed(func() error { return zktest.Barrier(s.zk) }, s.zk.Close)
		}
		if err != nil {
			r.fail(fmt.Errorf("barrier on %s: %w", s.name, err))
			return
		}
		if s.held && !withHeld {
			continue
		}
		s.mu.Lock()
		evs := s.events
		s.events = nil
		s.mu.Unlock()
		if sorted {
			slices.Sort(evs)
		}
		if len(evs) > 0 {
			r.add(s.name, " events: ", strings.Join(evs, "; "))
		}
	}
}

var errTimeout = errors.New("TIMEOUT")

// timed runs f with opTimeout; on timeout it calls abort (which must make
// f return) and reports errTimeout.
func timed(f func() error, abort func()) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(opTimeout):
		if abort != nil {
			abort()
		}
		return errTimeout
	}
}

// op runs one operation on s and records "sN <desc> -> <result>". f
// returns the result items (after "OK") or an error.
func (s *session) op(desc string, f func() ([]any, error)) {
	r := s.r
	if r.failed != nil {
		return
	}
	if s.closed {
		r.fail(fmt.Errorf("%s %s: session is closed", s.name, desc))
		return
	}
	var items []any
	abort := func() {
		if s.zk != nil {
			s.zk.Close()
		} else {
			s.raw.Close()
		}
	}
	err := timed(func() error {
		var err error
		items, err = f()
		return err
	}, abort)
	if errors.Is(err, errTimeout) {
		r.fail(fmt.Errorf("%s %s: no answer within %v", s.name, desc, opTimeout))
		return
	}
	l := line{s.name, " ", desc, " -> "}
	var me multiError
	switch {
	case errors.As(err, &me):
		l = append(l, me.items...)
	case err != nil:
		l = append(l, errName(err))
	default:
		l = append(l, "OK")
		if len(items) > 0 {
			l = append(l, " ")
			l = append(l, items...)
		}
	}
	r.add(l...)
	r.settle()
}

// errName turns a client error into ZooKeeper's name for its code.
func errName(err error) string {
	var code jute.Err
	if errors.As(err, &code) {
		return code.Error()
	}
	for sentinel, code := range zkErrCodes {
		if errors.Is(err, sentinel) {
			return code.Error()
		}
	}
	// go-zookeeper reports codes it has no sentinel for as
	// "unknown error: <code>".
	if n, ok := strings.CutPrefix(err.Error(), "unknown error: "); ok {
		if c, perr := strconv.Atoi(n); perr == nil {
			return jute.Err(c).Error()
		}
	}
	return "client error: " + err.Error()
}

var zkErrCodes = map[error]jute.Err{
	zk.ErrAPIError: jute.ErrAPIError, zk.ErrNoNode: jute.ErrNoNode, zk.ErrNoAuth: jute.ErrNoAuth,
	zk.ErrBadVersion: jute.ErrBadVersion, zk.ErrNoChildrenForEphemerals: jute.ErrNoChildrenForEphemerals,
	zk.ErrNodeExists: jute.ErrNodeExists, zk.ErrNotEmpty: jute.ErrNotEmpty,
	zk.ErrSessionExpired: jute.ErrSessionExpired, zk.ErrInvalidACL: jute.ErrInvalidACL,
	zk.ErrAuthFailed: jute.ErrAuthFailed, zk.ErrSessionMoved: jute.ErrSessionMoved,
	zk.ErrReconfigDisabled: jute.ErrReconfigDisabled, zk.ErrBadArguments: jute.ErrBadArguments,
	zk.ErrClosing: jute.Err(-116), zk.ErrNothing: jute.Err(-117),
}

// call makes a raw request and turns a non-OK reply into a jute.Err.
func (s *session) call(op jute.Op, req, resp jute.Record) error {
	hdr, err := s.raw.Call(op, req, resp)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	if hdr.Err != jute.ErrOK {
		return hdr.Err
	}
	return nil
}

// needRaw fails the scenario when an operation go-zookeeper cannot send is
// asked of a go-zookeeper session: a mistake in the scenario.
func (s *session) needRaw(desc string) bool {
	if s.raw == nil && s.r.failed == nil {
		s.r.fail(fmt.Errorf("%s %s needs a raw session", s.name, desc))
	}
	return s.raw != nil
}

func statItems(st *zk.Stat) []any {
	if st == nil {
		return []any{"stat=nil"}
	}
	return []any{fmt.Sprintf("stat{v=%d cv=%d av=%d len=%d nc=%d owner=", st.Version, st.Cversion, st.Aversion,
		st.DataLength, st.NumChildren), owner(st.EphemeralOwner), " czxid=", zxid(st.Czxid), " mzxid=", zxid(st.Mzxid),
		" pzxid=", zxid(st.Pzxid), "}"}
}

func juteStat(st *jute.Stat) *zk.Stat {
	return &zk.Stat{Czxid: st.Czxid, Mzxid: st.Mzxid, Ctime: st.Ctime, Mtime: st.Mtime, Version: st.Version,
		Cversion: st.Cversion, Aversion: st.Aversion, EphemeralOwner: st.EphemeralOwner, DataLength: st.DataLength,
		NumChildren: st.NumChildren, Pzxid: st.Pzxid}
}

func juteACL(acl []zk.ACL) []jute.ACL {
	if acl == nil {
		return nil
	}
	out := make([]jute.ACL, len(acl))
	for i, a := range acl {
		out[i] = jute.ACL{Perms: a.Perms, ID: jute.Id{Scheme: a.Scheme, ID: a.ID}}
	}
	return out
}

func zkACL(acl []jute.ACL) []zk.ACL {
	if acl == nil {
		return nil
	}
	out := make([]zk.ACL, len(acl))
	for i, a := range acl {
		out[i] = zk.ACL{Perms: a.Perms, Scheme: a.ID.Scheme, ID: a.ID.ID}
	}
	return out
}

func aclString(acl []zk.ACL) string {
	if acl == nil {
		return "null"
	}
	parts := make([]string, len(acl))
	for i, a := range acl {
		parts[i] = fmt.Sprintf("%s:%s=%s", a.Scheme, a.ID, permString(a.Perms))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func permString(p int32) string {
	var b strings.Builder
	for _, c := range []struct {
		bit  int32
		name byte
	}{{zk.PermCreate, 'c'}, {zk.PermDelete, 'd'}, {zk.PermRead, 'r'}, {zk.PermWrite, 'w'}, {zk.PermAdmin, 'a'}} {
		if p&c.bit != 0 {
			b.WriteByte(c.name)
		}
	}
	if rest := p &^ zk.PermAll; rest != 0 {
		fmt.Fprintf(&b, "+%#x", rest)
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

func dataString(b []byte) string {
	if b == nil {
		return "null"
	}
	return strconv.Quote(string(b))
}

func sortedChildren(c []string) string {
	c = slices.Clone(c)
	slices.Sort(c)
	return "[" + strings.Join(c, " ") + "]"
}

// render writes the trace: zxids become #rank among the zxids the trace
// saw (so only their order and equality count), owners become the session
// name, "container", "ttl(ms)" or "none".
func (r *recorder) render() string {
	var zs []int64
	for _, l := range r.lines {
		for _, it := range l {
			if z, ok := it.(zxid); ok {
				zs = append(zs, int64(z))
			}
		}
	}
	slices.Sort(zs)
	zs = slices.Compact(zs)
	rank := make(map[int64]int, len(zs))
	for i, z := range zs {
		rank[z] = i + 1
	}
	var b strings.Builder
	for _, l := range r.lines {
		for _, it := range l {
			switch v := it.(type) {
			case string:
				b.WriteString(v)
			case zxid:
				fmt.Fprintf(&b, "#%d", rank[int64(v)])
			case owner:
				b.WriteString(r.ownerName(int64(v)))
			default:
				fmt.Fprint(&b, v)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ZooKeeper's encodings of ephemeralOwner for nodes that are not owned by
// a session (EphemeralType): containers use Long.MIN_VALUE; TTL nodes set
// the top byte and keep the TTL in the low 40 bits.
const (
	containerOwner = -1 << 63
	extendedMask   = int64(-1) << 56 // 0xff00000000000000
	ttlMask        = int64(1)<<40 - 1
)

func (r *recorder) ownerName(id int64) string {
	// Session ids first: a server may hand out ids whose top byte is
	// 0xff, and an owner that is a session must read as one.
	for _, s := range r.sessions {
		if s.id == id && id != 0 {
			return s.name
		}
	}
	switch {
	case id == 0:
		return "none"
	case id == containerOwner:
		return "container"
	case id&extendedMask == extendedMask:
		if id&^(extendedMask|ttlMask) == 0 {
			return fmt.Sprintf("ttl(%d)", id&ttlMask)
		}
		return fmt.Sprintf("extended(%#x)", uint64(id))
	}
	return "unknown-session"
}

// shutdown closes the session's client without recording anything.
func (s *session) shutdown() {
	s.closed = true
	if s.zk != nil {
		s.zk.Close()
	}
	if s.raw != nil {
		s.raw.Close()
	}
}

// quotePath quotes a path that would be hard to read in a trace: empty,
// or holding spaces or control characters.
func quotePath(p string) string {
	if p == "" || strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return strconv.Quote(p)
	}
	return p
}
