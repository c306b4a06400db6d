package ensemble_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/ensemble"
	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/server"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// tick is the members' ZooKeeper tick: sessions of 1s to 10s, liveness
// reports every 250ms.
const tick = 500 * time.Millisecond

// logBuf collects every member's log; a failing test prints its tail.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// cluster is an in-process ensemble: each member is a znode.DB, an
// Ensemble and a server.Server, on free loopback ports.
type cluster struct {
	t       *testing.T
	peers   map[int]string
	members []*member
	logs    *logBuf
	logger  *slog.Logger
	tune    func(*ensemble.Options)
}

type member struct {
	c          *cluster
	id         int
	raftAddr   string
	clientAddr string
	dir        string
	db         *znode.DB
	ens        *ensemble.Ensemble
	srv        *server.Server
	running    bool
}

func newCluster(t *testing.T, n int, tune func(*ensemble.Options)) *cluster {
	t.Helper()
	c := &cluster{t: t, peers: map[int]string{}, logs: &logBuf{}, tune: tune}
	c.logger = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		c.peers[i+1] = ln.Addr().String()
	}
	for i := range n {
		c.members = append(c.members, &member{c: c, id: i + 1, raftAddr: c.peers[i+1], clientAddr: "127.0.0.1:0", dir: t.TempDir()})
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.stop()
		}
		if t.Failed() {
			t.Logf("member logs (tail):\n%s", c.logs.tail(30000))
		}
	})
	for i, m := range c.members {
		m.start(lns[i])
	}
	c.leader()
	return c
}

// start runs the member; ln is its raft listener, or nil to bind the
// member's raft address again after a stop.
func (m *member) start(ln net.Listener) {
	t := m.c.t
	t.Helper()
	if ln == nil {
		ln = listenAgain(t, m.raftAddr)
	}
	m.db = znode.New()
	// Stopping a member stands in for a crash unless a test tunes that.
	opts := ensemble.Options{ID: m.id, Peers: m.c.peers, DataDir: m.dir, Listener: ln, NoSync: true,
		KeepLeadershipOnStop: true, Logger: m.c.logger.With("m", m.id)}
	if m.c.tune != nil {
		m.c.tune(&opts)
	}
	ens, err := ensemble.Open(m.db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ens.Start(); err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.Listen = m.clientAddr
	cfg.ServerID = int64(m.id)
	cfg.TickTime = tick
	srv, err := server.New(server.Params{Config: cfg, DB: m.db, Replicator: ens, Logger: m.c.logger.With("m", m.id)})
	if err != nil {
		t.Fatal(err)
	}
	ens.SetSessionToucher(srv.TouchSessions)
	var serr error
	waitFor(t, 10*time.Second, "client port of member "+fmt.Sprint(m.id), func() bool {
		serr = srv.Start()
		return serr == nil
	})
	m.ens, m.srv, m.running = ens, srv, true
	m.clientAddr = srv.Addr().String()
}

// stop stops the member's server and ensemble, as if its process ended.
func (m *member) stop() {
	if !m.running {
		return
	}
	m.running = false
	m.srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.ens.Stop(ctx); err != nil {
		m.c.t.Errorf("stop member %d: %v", m.id, err)
	}
}

func listenAgain(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	waitFor(t, 10*time.Second, "raft address "+addr+" free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return ln
}

// leader waits until the running members agree on a leader and returns it.
func (c *cluster) leader() *member {
	c.t.Helper()
	var l *member
	waitFor(c.t, 20*time.Second, "an agreed leader", func() bool {
		l = nil
		id := -1
		for _, m := range c.members {
			if !m.running {
				continue
			}
			got := m.ens.Leader()
			if got == 0 || (id != -1 && got != id) {
				return false
			}
			id = got
			if m.ens.IsLeader() {
				l = m
			}
		}
		return l != nil && l.id == id
	})
	return l
}

func (c *cluster) followers() []*member {
	l := c.leader()
	var out []*member
	for _, m := range c.members {
		if m.running && m != l {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond every 20ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orderedHosts is a zk.HostProvider that tries servers in its own order
// (zk.Connect shuffles the list it passes to Init), so a test knows which
// member a client starts on.
type orderedHosts struct {
	mu         sync.Mutex
	servers    []string
	curr, last int
}

func (h *orderedHosts) Init([]string) error {
	h.curr, h.last = -1, -1
	return nil
}

func (h *orderedHosts) Len() int { return len(h.servers) }

func (h *orderedHosts) Next() (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.curr = (h.curr + 1) % len(h.servers)
	retry := h.curr == h.last
	if h.last == -1 {
		h.last = 0
	}
	return h.servers[h.curr], retry
}

func (h *orderedHosts) Connected() {
	h.mu.Lock()
	h.last = h.curr
	h.mu.Unlock()
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// connect opens a session through the given members, tried in order.
func connect(t *testing.T, timeout time.Duration, ms []*member) *zk.Conn {
	t.Helper()
	return connectVia(t, timeout, ms, net.DialTimeout)
}

func connectVia(t *testing.T, timeout time.Duration, ms []*member, dial zk.Dialer) *zk.Conn {
	t.Helper()
	addrs := make([]string, len(ms))
	for i, m := range ms {
		addrs[i] = m.clientAddr
	}
	conn, _, err := zk.Connect(addrs, timeout, zk.WithLogger(quiet{}), zk.WithLogInfo(false),
		zk.WithHostProvider(&orderedHosts{servers: addrs}), zk.WithDialer(dial))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	waitFor(t, 20*time.Second, fmt.Sprintf("a session through %v", addrs), func() bool { return conn.State() == zk.StateHasSession })
	return conn
}

var acl = zk.WorldACL(zk.PermAll)

// create retries through connection losses (elections, failovers) until
// the node exists; a retry that finds it created by an earlier attempt is
// a success.
func create(t *testing.T, conn *zk.Conn, path string, data []byte, flags int32) {
	t.Helper()
	var err error
	waitFor(t, 20*time.Second, "create "+path, func() bool {
		_, err = conn.Create(path, data, flags, acl)
		return err == nil || errors.Is(err, zk.ErrNodeExists)
	})
}

// readSynced syncs the member the client is on, then reads path there.
func readSynced(t *testing.T, conn *zk.Conn, path string) ([]byte, *zk.Stat) {
	t.Helper()
	if _, err := conn.Sync(path); err != nil {
		t.Fatalf("sync %s: %v", path, err)
	}
	data, st, err := conn.Get(path)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	return data, st
}

func TestWritesReplicate(t *testing.T) {
	c := newCluster(t, 3, nil)
	m := c.members
	a := connect(t, 5*time.Second, m[0:1])
	b := connect(t, 5*time.Second, m[1:2])
	d := connect(t, 5*time.Second, m[2:3])

	if _, err := a.Create("/cfg", []byte("v1"), 0, acl); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Set("/cfg", []byte("v2"), 0); err != nil {
		t.Fatalf("set on member 2 of a node created on member 1: %v", err)
	}
	var czxid []int64
	for i, conn := range []*zk.Conn{a, b, d} {
		data, st := readSynced(t, conn, "/cfg")
		if string(data) != "v2" || st.Version != 1 {
			t.Fatalf("member %d: /cfg = %q version %d, want \"v2\" version 1", i+1, data, st.Version)
		}
		czxid = append(czxid, st.Czxid)
	}
	if czxid[0] != czxid[1] || czxid[1] != czxid[2] {
		t.Fatalf("czxid differs between members: %v", czxid)
	}

	// Sequential names come from the parent's cversion, which every
	// member computes the same way whoever proposes.
	var names []string
	for i := range 6 {
		conn := []*zk.Conn{a, b, d}[i%3]
		p, err := conn.Create("/cfg/seq-", nil, zk.FlagSequence, acl)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, p)
	}
	for i, want := range names {
		if wantName := fmt.Sprintf("/cfg/seq-%010d", i); want != wantName {
			t.Fatalf("sequential create %d = %s, want %s", i, want, wantName)
		}
	}

	// Zxids strictly increase across members: brokers rely on czxid.
	prev := int64(0)
	for _, p := range names {
		_, st := readSynced(t, a, p)
		if st.Czxid <= prev {
			t.Fatalf("czxid of %s = %d, not above %d", p, st.Czxid, prev)
		}
		prev = st.Czxid
	}

	if err := d.Delete("/cfg/seq-0000000000", -1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sync("/cfg"); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := a.Exists("/cfg/seq-0000000000"); err != nil || ok {
		t.Fatalf("member 1 still sees a node deleted on member 3 (exists=%v, err=%v)", ok, err)
	}
}

func TestEphemeralVisibleOnOtherMembers(t *testing.T) {
	c := newCluster(t, 3, nil)
	owner := connect(t, 5*time.Second, c.members[1:2])
	watcher := connect(t, 5*time.Second, c.members[2:3])

	ok, _, ch, err := watcher.ExistsW("/eph")
	if err != nil || ok {
		t.Fatalf("exists /eph before the create = %v, %v", ok, err)
	}
	if _, err := owner.Create("/eph", []byte("x"), zk.FlagEphemeral, acl); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		if ev.Type != zk.EventNodeCreated || ev.Path != "/eph" {
			t.Fatalf("watch event on member 3 = %+v, want NodeCreated /eph", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("member 3 sent no NodeCreated for an ephemeral created on member 2")
	}
	_, st := readSynced(t, watcher, "/eph")
	if st.EphemeralOwner != owner.SessionID() {
		t.Fatalf("ephemeralOwner on member 3 = 0x%x, want the owner's session 0x%x", st.EphemeralOwner, owner.SessionID())
	}
}

func TestClientFailsOverWithSessionWatchesAndEphemerals(t *testing.T) {
	c := newCluster(t, 3, nil)
	fs := c.followers()
	home, other := fs[0], fs[1]
	leader := c.leader()
	conn := connect(t, 8*time.Second, []*member{home, other, leader})
	helper := connect(t, 8*time.Second, []*member{leader})

	if got := conn.Server(); got != home.clientAddr {
		t.Fatalf("client started on %s, want member %d at %s", got, home.id, home.clientAddr)
	}
	sid := conn.SessionID()
	create(t, conn, "/fo", []byte("0"), 0)
	create(t, conn, "/fo/eph", nil, zk.FlagEphemeral)
	_, _, dataWatch, err := conn.GetW("/fo")
	if err != nil {
		t.Fatal(err)
	}
	_, _, existsWatch, err := conn.ExistsW("/fo/new")
	if err != nil {
		t.Fatal(err)
	}

	home.stop()
	waitFor(t, 20*time.Second, "the client to move to another member", func() bool {
		return conn.State() == zk.StateHasSession && conn.Server() != home.clientAddr
	})
	if conn.SessionID() != sid {
		t.Fatalf("session changed from 0x%x to 0x%x across the failover", sid, conn.SessionID())
	}

	_, st := readSynced(t, helper, "/fo/eph")
	if st.EphemeralOwner != sid {
		t.Fatalf("ephemeral owner after failover = 0x%x, want 0x%x", st.EphemeralOwner, sid)
	}
	// Watches were re-registered on the new member (setWatches) and fire.
	if _, err := helper.Set("/fo", []byte("1"), -1); err != nil {
		t.Fatal(err)
	}
	create(t, helper, "/fo/new", nil, 0)
	for name, ch := range map[string]<-chan zk.Event{"data": dataWatch, "exists": existsWatch} {
		select {
		case ev := <-ch:
			if ev.Type != zk.EventNodeDataChanged && ev.Type != zk.EventNodeCreated {
				t.Fatalf("%s watch after failover fired %+v", name, ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s watch did not fire after the failover", name)
		}
	}
	// And the session still writes.
	create(t, conn, "/fo/after", nil, 0)
	data, _ := readSynced(t, conn, "/fo")
	if string(data) != "1" {
		t.Fatalf("/fo read through the moved session = %q, want \"1\"", data)
	}
}

func TestLeaderFailover(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	fs := c.followers()
	conn := connect(t, 8*time.Second, fs)
	create(t, conn, "/before", []byte("b"), 0)

	old.stop()
	nl := c.leader()
	if nl == old {
		t.Fatal("the stopped member still leads")
	}
	// Writes continue through the new leader (after the client retries
	// any write lost to the election).
	for i := range 20 {
		create(t, conn, fmt.Sprintf("/after-%d", i), nil, 0)
	}

	// The old leader rejoins as a follower and catches up.
	old.start(nil)
	back := connect(t, 8*time.Second, []*member{old})
	for _, p := range []string{"/before", "/after-19"} {
		readSynced(t, back, p)
	}
	if c.leader() == old && nl.running {
		// Allowed by raft, but the new leader had no reason to step down.
		t.Logf("note: member %d leads again after rejoining", old.id)
	}
}

func TestGracefulStopHandsLeadershipOver(t *testing.T) {
	c := newCluster(t, 3, func(o *ensemble.Options) { o.KeepLeadershipOnStop = false })
	old := c.leader()
	conn := connect(t, 8*time.Second, c.followers())
	create(t, conn, "/pre", nil, 0)
	old.stop()
	if !strings.Contains(c.logs.tail(1<<30), fmt.Sprintf("msg=\"handed leadership over before stopping\" m=%d", old.id)) {
		t.Fatal("the stopping leader did not hand leadership over")
	}
	if nl := c.leader(); nl == old {
		t.Fatal("the stopped member still leads")
	}
	create(t, conn, "/post", nil, 0)
}

func TestMinorityRefusesWrites(t *testing.T) {
	c := newCluster(t, 3, nil)
	alone := c.members[0]
	conn := connect(t, 8*time.Second, []*member{alone})
	create(t, conn, "/ok", nil, 0)

	c.members[1].stop()
	c.members[2].stop()
	waitFor(t, 10*time.Second, "the isolated member to stop being writable", func() bool {
		return !alone.ens.Writable() && !alone.ens.IsLeader()
	})
	if _, err := conn.Create("/minority", nil, 0, acl); err == nil {
		t.Fatal("a write succeeded on a member cut off from the majority")
	}
	// The replicator itself fails such a write at once rather than
	// holding it until some timeout.
	res := make(chan error, 1)
	alone.ens.Propose(&znode.Txn{Op: jute.OpCreate, Time: time.Now().UnixMilli(),
		Req: &jute.CreateRequest{Path: "/direct", ACL: jute.OpenACLUnsafe}},
		func(_ znode.Result, err error) { res <- err })
	select {
	case err := <-res:
		// Until its heartbeat timeout the member still knows the old
		// leader's address and finds it unreachable; after that it
		// knows no leader.
		if !errors.Is(err, ensemble.ErrNoLeader) && !errors.Is(err, ensemble.ErrLeaderUnreachable) {
			t.Fatalf("Propose without a majority failed with %v, want ErrNoLeader or ErrLeaderUnreachable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Propose without a leader neither failed nor succeeded")
	}
	// Reads still work locally once the client is back on.
	waitFor(t, 20*time.Second, "the client to reconnect to the isolated member", func() bool {
		return conn.State() == zk.StateHasSession
	})
	if ok, _, err := conn.Exists("/ok"); err != nil || !ok {
		t.Fatalf("exists /ok on the isolated member = %v, %v", ok, err)
	}
	if ok, _, err := conn.Exists("/minority"); err != nil || ok {
		t.Fatalf("exists /minority on the isolated member = %v, %v; the refused write must not exist", ok, err)
	}

	// A majority again: writes go through.
	c.members[1].start(nil)
	create(t, conn, "/majority", nil, 0)
}

// cutter is a zk dialer whose connections a test can cut, refusing
// reconnects, as if the client vanished without closing its session.
type cutter struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (c *cutter) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil, errors.New("cut")
	}
	nc, err := net.DialTimeout(network, addr, timeout)
	if err == nil {
		c.conns = append(c.conns, nc)
	}
	return nc, err
}

func (c *cutter) cutAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for _, nc := range c.conns {
		nc.Close()
	}
}

func TestSessionExpiryRemovesEphemeralsEverywhere(t *testing.T) {
	c := newCluster(t, 3, nil)
	// The owner talks to a follower, so its liveness reaches the leader
	// only through the forward stream.
	home := c.followers()[0]
	var cut cutter
	owner := connectVia(t, 2*tick, []*member{home}, cut.dial)
	create(t, owner, "/gone", nil, zk.FlagEphemeral)
	create(t, owner, "/kept", nil, 0)

	var watchers []*zk.Conn
	for _, m := range c.members {
		w := connect(t, 8*time.Second, []*member{m})
		readSynced(t, w, "/gone")
		watchers = append(watchers, w)
	}
	// Several liveness rounds pass: the session must stay alive while its
	// connection does, on a member that is not the leader.
	time.Sleep(4 * tick)
	if ok, _, err := watchers[0].Exists("/gone"); err != nil || !ok {
		t.Fatalf("the ephemeral of a live session vanished (exists=%v, err=%v)", ok, err)
	}

	cut.cutAll()
	for i, w := range watchers {
		waitFor(t, 20*time.Second, fmt.Sprintf("/gone to disappear on member %d", i+1), func() bool {
			if _, err := w.Sync("/"); err != nil {
				return false
			}
			ok, _, err := w.Exists("/gone")
			return err == nil && !ok
		})
		if ok, _, err := w.Exists("/kept"); err != nil || !ok {
			t.Fatalf("member %d lost a persistent node with the session (exists=%v, err=%v)", i+1, ok, err)
		}
	}
}

func TestRestartCatchesUpFromSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(o *ensemble.Options) {
		// Snapshot early and keep little log, so a member that was away
		// must be sent a snapshot.
		o.SnapshotThreshold = 32
		o.TrailingLogs = 8
		o.LogSegmentSize = 2 << 10
		o.SnapshotInterval = 50 * time.Millisecond
	})
	away := c.followers()[0]
	var stay []*member
	for _, m := range c.members {
		if m != away {
			stay = append(stay, m)
		}
	}
	conn := connect(t, 8*time.Second, stay)
	create(t, conn, "/snap", nil, 0)
	away.stop()
	for i := range 200 {
		create(t, conn, fmt.Sprintf("/snap/n%03d", i), []byte{byte(i)}, 0)
	}
	// Wait until the survivors have taken a snapshot, which compacts their
	// logs past what the absent member has.
	waitFor(t, 20*time.Second, "a snapshot on the members that stayed", func() bool {
		entries, _ := os.ReadDir(filepath.Join(stay[0].dir, "raft", "snapshots"))
		return len(entries) > 0
	})
	away.start(nil)
	back := connect(t, 8*time.Second, []*member{away})
	data, _ := readSynced(t, back, "/snap/n199")
	if !bytes.Equal(data, []byte{199}) {
		t.Fatalf("/snap/n199 on the restarted member = %v", data)
	}
	kids, _, err := back.Children("/snap")
	if err != nil || len(kids) != 200 {
		t.Fatalf("restarted member has %d children of /snap (err %v), want 200", len(kids), err)
	}
	if want := fmt.Sprintf("msg=\"state restored from snapshot\" m=%d", away.id); !strings.Contains(c.logs.tail(1<<30), want) {
		t.Errorf("the restarted member caught up without installing a snapshot (no %q in the logs)", want)
	}
	// It keeps following: a new write shows up there too.
	create(t, conn, "/snap/late", nil, 0)
	readSynced(t, back, "/snap/late")
}
