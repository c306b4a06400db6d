package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/server"
	"github.com/runnel-io/runnel/services/coordinator/standalone"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

type fixture struct {
	srv  *server.Server
	db   *znode.DB
	rep  *standalone.Replicator
	addr string
	dir  string
}

func start(t *testing.T, mod func(*server.Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	return startIn(t, dir, mod)
}

func startIn(t *testing.T, dir string, mod func(*server.Config)) *fixture {
	t.Helper()
	db := znode.New()
	rep, err := standalone.Open(db, standalone.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rep.Start()
	cfg := server.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TickTime = 100 * time.Millisecond
	cfg.ContainerCheckInterval = 100 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(server.Params{Config: cfg, DB: db, Replicator: rep})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, db: db, rep: rep, addr: srv.Addr().String(), dir: dir}
	var once sync.Once
	t.Cleanup(func() { once.Do(f.stop) })
	return f
}

func (f *fixture) stop() {
	f.srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = f.rep.Stop(ctx)
}

func connect(t *testing.T, addr string, timeout time.Duration) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, timeout, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				return c, ev
			}
		case <-deadline:
			t.Fatal("no session within 10s")
		}
	}
}

func TestCRUDAndWatches(t *testing.T) {
	f := start(t, nil)
	c, _ := connect(t, f.addr, 2*time.Second)
	if _, err := c.Create("/a", []byte("one"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	data, st, ch, err := c.GetW("/a")
	if err != nil || string(data) != "one" || st.Version != 0 {
		t.Fatalf("get: %q %+v %v", data, st, err)
	}
	other, _ := connect(t, f.addr, 2*time.Second)
	if _, err := other.Set("/a", []byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-ch:
		if e.Type != zk.EventNodeDataChanged || e.Path != "/a" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event")
	}
	if _, err := c.Create("/a", nil, 0, zk.WorldACL(zk.PermAll)); !errors.Is(err, zk.ErrNodeExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if err := c.Delete("/a", 0); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("stale delete: %v", err)
	}
	if err := c.Delete("/a", 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get("/a"); !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("get deleted: %v", err)
	}
}

// TestPipelinedOrder sends many writes and reads without waiting and checks
// each read sees the writes issued before it on the same session.
func TestPipelinedOrder(t *testing.T) {
	f := start(t, nil)
	c, _ := connect(t, f.addr, 2*time.Second)
	if _, err := c.Create("/p", []byte("0"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	// go-zookeeper sends requests in call order on one connection, so
	// issuing Set then Get from one goroutine interleaves them on the wire.
	for i := 1; i <= n; i++ {
		if _, err := c.Set("/p", []byte{byte(i)}, -1); err != nil {
			t.Fatal(err)
		}
		d, st, err := c.Get("/p")
		if err != nil || st.Version != int32(i) || d[0] != byte(i) {
			t.Fatalf("read %d after write: version %d data %v err %v", i, st.Version, d, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestEphemeralGoesWhenSessionCloses(t *testing.T) {
	f := start(t, nil)
	c1, _ := connect(t, f.addr, 2*time.Second)
	if _, err := c1.Create("/e", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	c2, _ := connect(t, f.addr, 2*time.Second)
	ok, _, ch, err := c2.ExistsW("/e")
	if err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	c1.Close()
	select {
	case e := <-ch:
		if e.Type != zk.EventNodeDeleted {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ephemeral not deleted on close")
	}
}

// TestSessionExpiry lets a session lapse (no pings: the client's socket is
// frozen by closing it without closeSession) and checks the leader expires
// it and removes its ephemeral node.
func TestSessionExpiry(t *testing.T) {
	f := start(t, nil)
	nc, sid := rawConnect(t, f.addr, 400)
	writeReq(t, nc, 1, jute.OpCreate, &jute.CreateRequest{Path: "/gone", ACL: jute.OpenACLUnsafe, Flags: jute.FlagEphemeral})
	hdr, _ := readReply(t, nc)
	if hdr.Err != jute.ErrOK {
		t.Fatalf("create: %v", hdr.Err)
	}
	nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := f.db.Session(sid); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("session did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, _ := connect(t, f.addr, 2*time.Second)
	if ok, _, _ := c.Exists("/gone"); ok {
		t.Fatal("ephemeral survived its session")
	}
}

func TestFourLetterWords(t *testing.T) {
	f := start(t, nil)
	for cmd, want := range map[string]string{
		"ruok": "imok", "isro": "rw", "srvr": "Mode: standalone", "stat": "Clients:",
		"mntr": "zk_server_state\tstandalone", "conf": "tickTime=100", "envi": "zookeeper.version=",
		"wchs": "Total watches:", "dump": "SessionTracker dump:", "cons": "", "wchc": "", "wchp": "",
	} {
		got := fourLetter(t, f.addr, cmd)
		if !strings.Contains(got, want) {
			t.Errorf("%s: %q does not contain %q", cmd, got, want)
		}
	}
}

func fourLetter(t *testing.T, addr, cmd string) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBadInput checks that bad packets fail alone: a malformed or oversize
// packet closes its own connection, an unknown opcode and a bad path get
// error codes, and another client keeps working throughout.
func TestBadInput(t *testing.T) {
	f := start(t, nil)
	good, _ := connect(t, f.addr, 2*time.Second)

	// Unknown opcode: Unimplemented, connection stays.
	nc, _ := rawConnect(t, f.addr, 4000)
	writeRaw(t, nc, jute.Encode(&jute.RequestHeader{Xid: 7, Type: 999}))
	if h, _ := readReply(t, nc); h.Xid != 7 || h.Err != jute.ErrUnimplemented {
		t.Fatalf("unknown op: %+v", h)
	}
	// Invalid path: BadArguments.
	writeReq(t, nc, 8, jute.OpGetData, &jute.PathWatchRequest{Path: "no-slash"})
	if h, _ := readReply(t, nc); h.Xid != 8 || h.Err != jute.ErrBadArguments {
		t.Fatalf("bad path: %+v", h)
	}
	writeReq(t, nc, 9, jute.OpCreate, &jute.CreateRequest{Path: "/.", ACL: jute.OpenACLUnsafe})
	if h, _ := readReply(t, nc); h.Xid != 9 || h.Err != jute.ErrBadArguments {
		t.Fatalf("bad create path: %+v", h)
	}
	// Truncated body: the connection is closed.
	writeRaw(t, nc, append(jute.Encode(&jute.RequestHeader{Xid: 10, Type: jute.OpCreate}), 0, 0, 0, 50, 'x'))
	expectClosed(t, nc)

	// Oversize frame: closed before reading it.
	nc2, _ := rawConnect(t, f.addr, 4000)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 2<<20)
	if _, err := nc2.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc2)

	// Garbage instead of a connect request.
	nc3, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc3.Close()
	writeRaw(t, nc3, []byte{1, 2, 3})
	expectClosed(t, nc3)

	if _, err := good.Create("/still-fine", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("other client affected: %v", err)
	}
}

// TestConnectWithoutReadOnlyByte uses the pre-3.4 handshake.
func TestConnectWithoutReadOnlyByte(t *testing.T) {
	f := start(t, nil)
	for _, hasRO := range []bool{false, true} {
		nc, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		writeRaw(t, nc, jute.Encode(&jute.ConnectRequest{TimeOut: 4000, Passwd: make([]byte, 16), HasReadOnly: hasRO}))
		frame := readFrame(t, nc)
		var resp jute.ConnectResponse
		if err := jute.Decode(frame, &resp, false); err != nil || resp.SessionID == 0 || resp.TimeOut != 2000 {
			t.Fatalf("readOnly byte %v: %+v %v (timeout clamps to 20 ticks)", hasRO, resp, err)
		}
		nc.Close()
	}
}

// TestReconnectKeepsSession reconnects with the session id and password on
// a new socket and checks the ephemeral node and a watch survive.
func TestReconnectKeepsSession(t *testing.T) {
	f := start(t, nil)
	nc, sid := rawConnect(t, f.addr, 4000)
	writeReq(t, nc, 1, jute.OpCreate, &jute.CreateRequest{Path: "/keep", ACL: jute.OpenACLUnsafe, Flags: jute.FlagEphemeral})
	readReply(t, nc)
	passwd := lastPasswd
	nc.Close()
	nc2, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	writeRaw(t, nc2, jute.Encode(&jute.ConnectRequest{TimeOut: 4000, SessionID: sid, Passwd: passwd, LastZxidSeen: f.db.LastZxid()}))
	var resp jute.ConnectResponse
	if err := jute.Decode(readFrame(t, nc2), &resp, false); err != nil || resp.SessionID != sid || resp.TimeOut == 0 {
		t.Fatalf("reconnect: %+v %v", resp, err)
	}
	// A wrong password is told the session expired.
	nc3, _ := net.Dial("tcp", f.addr)
	defer nc3.Close()
	writeRaw(t, nc3, jute.Encode(&jute.ConnectRequest{TimeOut: 4000, SessionID: sid, Passwd: make([]byte, 16)}))
	var bad jute.ConnectResponse
	if err := jute.Decode(readFrame(t, nc3), &bad, false); err != nil || bad.TimeOut != 0 {
		t.Fatalf("wrong password: %+v %v", bad, err)
	}
	if _, ok := f.db.Session(sid); !ok {
		t.Fatal("session lost")
	}
}

// TestRestartRecovers stops and reopens the standalone server on the same
// data directory.
func TestRestartRecovers(t *testing.T) {
	dir := t.TempDir()
	f := startIn(t, dir, nil)
	c, _ := connect(t, f.addr, 2*time.Second)
	for i := 0; i < 50; i++ {
		if _, err := c.Create("/n", []byte("x"), zk.FlagSequence, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	f.stop()
	f2 := startIn(t, dir, nil)
	c2, _ := connect(t, f2.addr, 2*time.Second)
	kids, _, err := c2.Children("/")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range kids {
		if strings.HasPrefix(k, "n") {
			n++
		}
	}
	if n != 50 {
		t.Fatalf("after restart %d of 50 nodes", n)
	}
}

var lastPasswd []byte

func rawConnect(t *testing.T, addr string, timeoutMs int32) (net.Conn, int64) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	writeRaw(t, nc, jute.Encode(&jute.ConnectRequest{TimeOut: timeoutMs, Passwd: make([]byte, 16), HasReadOnly: true}))
	var resp jute.ConnectResponse
	if err := jute.Decode(readFrame(t, nc), &resp, false); err != nil {
		t.Fatal(err)
	}
	lastPasswd = resp.Passwd
	return nc, resp.SessionID
}

func writeRaw(t *testing.T, nc net.Conn, body []byte) {
	t.Helper()
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, err := nc.Write(append(hdr[:], body...)); err != nil {
		t.Fatal(err)
	}
}

func writeReq(t *testing.T, nc net.Conn, xid int32, op int32, req jute.Record) {
	t.Helper()
	writeRaw(t, nc, jute.Encode(&jute.RequestHeader{Xid: xid, Type: op}, req))
}

func readFrame(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := jute.ReadFrame(bufio.NewReader(nc), nil, jute.MaxPacket)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return b
}

func readReply(t *testing.T, nc net.Conn) (jute.ReplyHeader, []byte) {
	t.Helper()
	for {
		b := readFrame(t, nc)
		d := jute.NewDecoder(b)
		var h jute.ReplyHeader
		h.Decode(d)
		if h.Xid == jute.XidNotification {
			continue
		}
		return h, b[d.Off:]
	}
}

func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open after bad input")
		}
		return
	}
}
