package zktest

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/internal/launch"
	"github.com/runnel-io/runnel/services/coordinator/jute"
)

var open = zk.WorldACL(zk.PermAll)

// The helpers are tested against Apache ZooKeeper: they must be right
// about the reference before they judge anything else.
func TestHelpersAgainstZooKeeper(t *testing.T) {
	srv := ZooKeeper(t, launch.Options{ContainerCheckInterval: 100 * time.Millisecond})

	t.Run("EventLogKeepsArrivalOrder", func(t *testing.T) {
		writer := Connect(t, srv.Addr())
		watcher, log := ConnectLog(t, srv.Addr())
		if _, err := writer.Create("/log", nil, 0, open); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := watcher.GetW("/log"); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := watcher.ChildrenW("/log"); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Create("/log/a", nil, 0, open); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Set("/log", []byte("x"), -1); err != nil {
			t.Fatal(err)
		}
		got := log.Settle(t, watcher)
		want := []zk.Event{
			{Type: zk.EventNodeChildrenChanged, State: zk.StateSyncConnected, Path: "/log"},
			{Type: zk.EventNodeDataChanged, State: zk.StateSyncConnected, Path: "/log"},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("events %+v, want %+v", got, want)
		}
		if more := log.Settle(t, watcher); len(more) != 0 {
			t.Fatalf("one-shot watches fired again: %+v", more)
		}
	})

	t.Run("WatchesCollectInAddOrder", func(t *testing.T) {
		conn := Connect(t, srv.Addr())
		var w Watches
		_, _, ch1, err := conn.ExistsW("/w")
		if err != nil {
			t.Fatal(err)
		}
		w.Add("exists /w", ch1)
		_, _, ch2, err := conn.ExistsW("/w2")
		if err != nil {
			t.Fatal(err)
		}
		w.Add("exists /w2", ch2)
		if _, err := conn.Create("/w2", nil, 0, open); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Create("/w", nil, 0, open); err != nil {
			t.Fatal(err)
		}
		got := w.Collect(t, conn)
		if len(got) != 2 || got[0].Name != "exists /w" || got[1].Name != "exists /w2" ||
			got[0].Event.Type != zk.EventNodeCreated {
			t.Fatalf("fired %v", got)
		}
		if len(w.Pending()) != 0 {
			t.Fatalf("pending %v", w.Pending())
		}
		_, _, ch3, err := conn.GetW("/w")
		if err != nil {
			t.Fatal(err)
		}
		w.Add("get /w", ch3)
		if got := w.Collect(t, conn); len(got) != 0 {
			t.Fatalf("fired before any change: %v", got)
		}
		if p := w.Pending(); !slices.Equal(p, []string{"get /w"}) {
			t.Fatalf("pending %v", p)
		}
		// A container removed by the server's timer fires the watch
		// with no client write to wait for.
		if _, err := conn.CreateContainer("/cont", nil, zk.FlagContainer, open); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Create("/cont/c", nil, 0, open); err != nil {
			t.Fatal(err)
		}
		_, _, ch4, err := conn.ExistsW("/cont")
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Delete("/cont/c", -1); err != nil {
			t.Fatal(err)
		}
		ev := Next(t, ch4, 10*time.Second)
		if ev.Type != zk.EventNodeDeleted || ev.Path != "/cont" {
			t.Fatalf("container watch: %+v", ev)
		}
	})

	t.Run("RawConn", func(t *testing.T) {
		raw := Raw(t, srv.Addr())
		if raw.SessionID == 0 || raw.Timeout <= 0 {
			t.Fatalf("session %x timeout %v", raw.SessionID, raw.Timeout)
		}
		// go-zookeeper refuses this path itself; the server's answer
		// is BadArguments.
		hdr, err := raw.Call(jute.OpCreate, &jute.CreateRequest{Path: "noslash", ACL: jute.OpenACLUnsafe}, nil)
		if err != nil || hdr.Err != jute.ErrBadArguments {
			t.Fatalf("create noslash: %v, %v", hdr.Err, err)
		}
		var cr jute.Create2Response
		hdr, err = raw.Call(jute.OpCreate2, &jute.CreateRequest{Path: "/raw", Data: []byte("d"), ACL: jute.OpenACLUnsafe,
			Flags: jute.FlagEphemeral}, &cr)
		if err != nil || hdr.Err != jute.ErrOK || cr.Path != "/raw" || cr.Stat.EphemeralOwner != raw.SessionID {
			t.Fatalf("create2: %v %v %+v", hdr.Err, err, cr)
		}
		hdr, err = raw.Call(jute.OpAddWatch, &jute.AddWatchRequest{Path: "/raw", Mode: jute.AddWatchPersistent}, nil)
		if err != nil || hdr.Err != jute.ErrOK {
			t.Fatalf("addWatch: %v, %v", hdr.Err, err)
		}
		other := Connect(t, srv.Addr())
		for range 2 {
			if _, err := other.Set("/raw", []byte("e"), -1); err != nil {
				t.Fatal(err)
			}
		}
		if err := raw.Barrier(); err != nil {
			t.Fatal(err)
		}
		evs := raw.Events()
		if len(evs) != 2 || evs[1].Type != jute.EventNodeDataChanged || evs[1].Path != "/raw" {
			t.Fatalf("persistent watch events %+v", evs)
		}
		var eph jute.PathsResponse
		if hdr, err := raw.Call(jute.OpGetEphemerals, &jute.PathRequest{Path: "/"}, &eph); err != nil || hdr.Err != jute.ErrOK ||
			!slices.Equal(eph.Paths, []string{"/raw"}) {
			t.Fatalf("getEphemerals: %v %v %v", hdr.Err, err, eph.Paths)
		}
		code, err := raw.AddAuth("digest", []byte("bob:secret"))
		if err != nil || code != jute.ErrOK {
			t.Fatalf("auth: %v, %v", code, err)
		}
		var who jute.WhoAmIResponse
		if hdr, err := raw.Call(jute.OpWhoAmI, nil, &who); err != nil || hdr.Err != jute.ErrOK ||
			!slices.Contains(who.ClientInfo, jute.ClientInfo{AuthScheme: "digest", User: "bob"}) {
			t.Fatalf("whoAmI: %v %v %+v", hdr.Err, err, who)
		}
		var mr jute.MultiResponse
		hdr, err = raw.Call(jute.OpMultiRead, &jute.MultiRequest{Ops: []jute.MultiOp{
			{Type: jute.OpGetData, Req: &jute.PathWatchRequest{Path: "/raw"}},
			{Type: jute.OpGetChildren, Req: &jute.PathWatchRequest{Path: "/missing"}},
		}}, &mr)
		if err != nil || hdr.Err != jute.ErrOK || len(mr.Results) != 2 ||
			string(mr.Results[0].Resp.(*jute.GetDataResponse).Data) != "e" || mr.Results[1].Err != jute.ErrNoNode {
			t.Fatalf("multiRead: %v %v %+v", hdr.Err, err, mr.Results)
		}
		if err := raw.Close(); err != nil {
			t.Fatal(err)
		}
		// closeSession was answered, so the ephemeral node is gone.
		if ok, _, err := other.Exists("/raw"); err != nil || ok {
			t.Fatalf("ephemeral after close: %v, %v", ok, err)
		}
		if _, err := raw.Call(jute.OpExists, &jute.PathWatchRequest{Path: "/"}, nil); err == nil {
			t.Fatal("call on a closed RawConn succeeded")
		}
	})
}

// FuzzRawReadLoop feeds arbitrary server bytes to RawConn's reader: it may
// end the connection, but must not panic or hang.
func FuzzRawReadLoop(f *testing.F) {
	hdr := jute.ReplyHeader{Xid: jute.XidNotification}
	f.Add(jute.AppendFrame(nil, &hdr, &jute.WatcherEvent{Type: 1, State: 3, Path: "/a"}))
	f.Add(jute.AppendFrame(nil, &jute.ReplyHeader{Xid: jute.XidPing}))
	f.Add(jute.AppendFrame(nil, &jute.ReplyHeader{Xid: 1, Err: jute.ErrNoNode}))
	f.Add([]byte{0, 0, 0, 3, 1, 2, 3})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		client, server := net.Pipe()
		c := &RawConn{Timeout: time.Hour, conn: client, pending: map[int32]chan rawReply{},
			done: make(chan struct{}), stopPing: make(chan struct{})}
		go c.readLoop()
		go func() {
			server.Write(b)
			server.Close()
		}()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("read loop did not end after the server closed")
		}
		if c.Err() == nil {
			t.Fatal("read loop ended without a reason")
		}
	})
}
