package znode_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// PathUtils.validatePath, case by case.
func TestValidatePath(t *testing.T) {
	valid := []string{
		"/", "/a", "/a/b", "/zookeeper", "/a.b", "/.a", "/a.", "/...", "/a/.../b",
		"/a b", "/\u00a0", "/\u00e9t\u00e9", "/\u4e16\u754c", "/a\ud7ff", "/\uf900", "/\uffef", "/a-_:@~!",
	}
	invalid := []string{
		"", "a", "a/b", "//", "/a/", "/a//b", "/.", "/..", "/a/.", "/a/..", "/./a", "/../a",
		"/a\x00b", "/a\x01", "/a\x1f", "/a\x7f", "/a\u0080", "/a\u009f", "/a\xed\xa0\x80",
		"/\ue000", "/\uf8ff", "/\ufff0", "/\ufffd", "/\uffff", "/\U0001F600", "/a\xff", "/\xc3",
	}
	for _, p := range valid {
		if err := znode.ValidatePath(p, false); err != nil {
			t.Errorf("ValidatePath(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range invalid {
		err := znode.ValidatePath(p, false)
		if err == nil {
			t.Errorf("ValidatePath(%q) = nil, want an error", p)
			continue
		}
		if !errors.Is(err, jute.ErrBadArguments) {
			t.Errorf("ValidatePath(%q) = %v, not BadArguments", p, err)
		}
	}
	// A sequential path may end in "/" (the number follows) but not "//".
	for p, want := range map[string]bool{"/a/": true, "/": true, "/a": true, "/a//": false, "a/": false, "/.": true, "/./": false} {
		if got := znode.ValidatePath(p, true) == nil; got != want {
			t.Errorf("ValidatePath(%q, true) valid=%v, want %v", p, got, want)
		}
	}
}

func TestDigestID(t *testing.T) {
	if got := znode.DigestID("super", "test"); got != "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" {
		t.Errorf("DigestID(super, test) = %q", got)
	}
	// The user part is everything before the first ':' of "user:password".
	if got := znode.DigestID("u", "p:w"); got[:2] != "u:" || got == znode.DigestID("u", "p") {
		t.Errorf("DigestID(u, p:w) = %q", got)
	}
}

// sampleTxns covers every opcode a Txn can carry.
func sampleTxns() []*znode.Txn {
	acl := []jute.ACL{{Perms: jute.PermAll, ID: jute.WorldAnyone}, {Perms: jute.PermRead, ID: jute.Id{Scheme: "digest", ID: "u:h"}}}
	auth := []jute.Id{{Scheme: "ip", ID: "127.0.0.1"}, {Scheme: "digest", ID: "u:h"}}
	base := func(op int32, req jute.Record) *znode.Txn {
		return &znode.Txn{Zxid: 0x100000007, Time: 1_700_000_000_123, SessionID: 0x1000abc, Cxid: 42, Op: op, Req: req, Auth: auth, Origin: 7<<32 | 9}
	}
	multi := &jute.MultiRequest{Ops: []jute.MultiOp{
		{Type: jute.OpCreate, Req: &jute.CreateRequest{Path: "/a", Data: []byte("x"), ACL: acl, Flags: 2}},
		{Type: jute.OpCreate2, Req: &jute.CreateRequest{Path: "/b", ACL: acl}},
		{Type: jute.OpCreateContainer, Req: &jute.CreateRequest{Path: "/c", Data: []byte{}, ACL: acl, Flags: 4}},
		{Type: jute.OpCreateTTL, Req: &jute.CreateTTLRequest{Path: "/d", ACL: acl, Flags: 5, TTL: 99}},
		{Type: jute.OpDelete, Req: &jute.DeleteRequest{Path: "/a", Version: -1}},
		{Type: jute.OpSetData, Req: &jute.SetDataRequest{Path: "/b", Data: []byte("y"), Version: 3}},
		{Type: jute.OpCheck, Req: &jute.DeleteRequest{Path: "/b", Version: 4}},
	}}
	return []*znode.Txn{
		base(jute.OpCreate, &jute.CreateRequest{Path: "/a", Data: []byte("data"), ACL: acl, Flags: 3}),
		base(jute.OpCreate2, &jute.CreateRequest{Path: "/a", Data: nil, ACL: nil, Flags: 0}),
		base(jute.OpCreateContainer, &jute.CreateRequest{Path: "/c", Data: []byte{}, ACL: []jute.ACL{}, Flags: 4}),
		base(jute.OpCreateTTL, &jute.CreateTTLRequest{Path: "/t", Data: []byte{0, 1, 2}, ACL: acl, Flags: 6, TTL: znode.MaxTTL}),
		base(jute.OpDelete, &jute.DeleteRequest{Path: "/a", Version: 7}),
		base(jute.OpSetData, &jute.SetDataRequest{Path: "/a", Data: bytes.Repeat([]byte("z"), 300), Version: -1}),
		base(jute.OpSetACL, &jute.SetACLRequest{Path: "/a", ACL: acl, Version: 2}),
		base(jute.OpCheck, &jute.DeleteRequest{Path: "/a", Version: 1}),
		base(jute.OpMulti, multi),
		base(jute.OpMulti, &jute.MultiRequest{}),
		base(jute.OpDeleteContainer, &jute.DeleteRequest{Path: "/c", Version: -1}),
		base(jute.OpSync, &jute.PathRequest{Path: "/s"}),
		base(znode.OpNoop, &jute.PathRequest{Path: ""}),
		base(znode.OpNoop, nil),
		{Zxid: 1, Time: 2, SessionID: 0x55, Op: jute.OpCreateSession, Timeout: 30000, Passwd: []byte("0123456789abcdef")},
		{Zxid: 1, Time: 2, SessionID: 0x55, Op: jute.OpCreateSession, Timeout: 4000, Passwd: []byte{}},
		{Zxid: 3, SessionID: -1, Op: jute.OpCloseSession},
		{Zxid: -5, Time: -6, Cxid: -7, Op: 12345, Timeout: -1},
		{},
	}
}

func TestTxnRoundtrip(t *testing.T) {
	for i, txn := range sampleTxns() {
		b, err := txn.MarshalBinary()
		if err != nil {
			t.Fatalf("%d (%s): marshal: %v", i, jute.OpName(txn.Op), err)
		}
		if b[0] != 1 {
			t.Errorf("%d: version byte %d", i, b[0])
		}
		var back znode.Txn
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("%d (%s): unmarshal: %v", i, jute.OpName(txn.Op), err)
		}
		if !reflect.DeepEqual(txn, &back) {
			t.Errorf("%d (%s): roundtrip\n got %#v\nwant %#v", i, jute.OpName(txn.Op), &back, txn)
		}
		// Every proper prefix fails cleanly.
		for n := 0; n < len(b); n++ {
			var x znode.Txn
			if err := x.UnmarshalBinary(b[:n]); err == nil {
				t.Errorf("%d (%s): prefix of %d/%d bytes decoded", i, jute.OpName(txn.Op), n, len(b))
			} else if !errors.Is(err, znode.ErrCorrupt) {
				t.Errorf("%d: error %v does not wrap ErrCorrupt", i, err)
			}
		}
		var x znode.Txn
		if err := x.UnmarshalBinary(append(slices.Clone(b), 0)); err == nil {
			t.Errorf("%d (%s): trailing byte accepted", i, jute.OpName(txn.Op))
		}
	}
}

func TestTxnMarshalRejectsMismatchedRequests(t *testing.T) {
	bad := []*znode.Txn{
		{Op: jute.OpCreate, Req: &jute.DeleteRequest{}},
		{Op: jute.OpCreateTTL, Req: &jute.CreateRequest{}},
		{Op: jute.OpCloseSession, Req: &jute.PathRequest{}},
		{Op: 12345, Req: &jute.PathRequest{}},
		{Op: jute.OpMulti, Req: &jute.MultiRequest{Ops: []jute.MultiOp{{Type: jute.OpSetACL, Req: &jute.SetACLRequest{}}}}},
		{Op: jute.OpMulti, Req: &jute.MultiRequest{Ops: []jute.MultiOp{{Type: jute.OpCreate, Req: nil}}}},
	}
	for i, txn := range bad {
		if _, err := txn.MarshalBinary(); err == nil {
			t.Errorf("%d: %s with %T marshalled", i, jute.OpName(txn.Op), txn.Req)
		}
	}
	var x znode.Txn
	if err := x.UnmarshalBinary([]byte{2, 0}); !errors.Is(err, znode.ErrCorrupt) {
		t.Errorf("unknown version: %v", err)
	}
}

// buildTree applies a mix of operations and returns the DB.
func buildTree(t testing.TB) *znode.DB {
	db := znode.New()
	zxid := int64(0)
	apply := func(session int64, op int32, req jute.Record) {
		zxid++
		if r := db.Apply(&znode.Txn{Zxid: zxid, Time: 1000 + zxid, SessionID: session, Op: op, Req: req}); r.Err != jute.ErrOK {
			t.Fatalf("zxid %d %s: %v", zxid, jute.OpName(op), r.Err)
		}
	}
	zxid++
	db.Apply(&znode.Txn{Zxid: zxid, Op: jute.OpCreateSession, SessionID: 0x10, Timeout: 5000, Passwd: []byte("pw")})
	zxid++
	db.Apply(&znode.Txn{Zxid: zxid, Op: jute.OpCreateSession, SessionID: 0x20, Timeout: 6000})
	open := jute.OpenACLUnsafe
	digest := []jute.ACL{{Perms: jute.PermAll, ID: jute.Id{Scheme: "digest", ID: znode.DigestID("u", "p")}}}
	apply(0, jute.OpCreate, &jute.CreateRequest{Path: "/a", Data: []byte("a"), ACL: open})
	apply(0, jute.OpCreate, &jute.CreateRequest{Path: "/a/b", Data: nil, ACL: digest})
	apply(0, jute.OpCreate, &jute.CreateRequest{Path: "/a/s", ACL: open, Flags: jute.FlagPersistentSequential})
	apply(0, jute.OpCreateContainer, &jute.CreateRequest{Path: "/c", ACL: open, Flags: jute.FlagContainer})
	apply(0, jute.OpCreate, &jute.CreateRequest{Path: "/c/x", Data: []byte{}, ACL: open})
	apply(0, jute.OpCreateTTL, &jute.CreateTTLRequest{Path: "/t", Data: []byte("ttl"), ACL: open, Flags: jute.FlagPersistentWithTTL, TTL: 5})
	apply(0x10, jute.OpCreate, &jute.CreateRequest{Path: "/a/e", Data: []byte("eph"), ACL: open, Flags: jute.FlagEphemeral})
	apply(0x20, jute.OpCreate, &jute.CreateRequest{Path: "/c/e", ACL: open, Flags: jute.FlagEphemeralSequential})
	apply(0, jute.OpSetData, &jute.SetDataRequest{Path: "/a", Data: []byte("a2"), Version: -1})
	apply(0, jute.OpSetACL, &jute.SetACLRequest{Path: "/a", ACL: []jute.ACL{{Perms: jute.PermRead, ID: jute.WorldAnyone}}, Version: -1})
	apply(0, jute.OpDelete, &jute.DeleteRequest{Path: "/c/x", Version: -1})
	apply(0, jute.OpCreate, &jute.CreateRequest{Path: "/\u4e16\U0000754c", Data: []byte("unicode"), ACL: open})
	return db
}

func TestSnapshotRoundtrip(t *testing.T) {
	db := buildTree(t)
	var buf bytes.Buffer
	if err := db.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	fresh := znode.New()
	if err := fresh.ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := znode.CheckInvariants(fresh); err != nil {
		t.Fatal(err)
	}
	want, got := stateDump(t, db), stateDump(t, fresh)
	if !slices.Equal(want, got) {
		t.Fatalf("restored state differs\nwant %v\n got %v", want, got)
	}
	if !reflect.DeepEqual(db.Stats(), fresh.Stats()) || db.LastZxid() != fresh.LastZxid() ||
		!reflect.DeepEqual(db.Sessions(), fresh.Sessions()) || !reflect.DeepEqual(db.EphemeralsBySession(), fresh.EphemeralsBySession()) {
		t.Fatalf("restored counters differ: %+v vs %+v", db.Stats(), fresh.Stats())
	}
	var again bytes.Buffer
	if err := fresh.WriteSnapshot(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("a restored DB writes a different snapshot")
	}
	// The restored DB keeps working: sequence numbers continue, the session's
	// ephemerals go with it.
	r := fresh.Apply(&znode.Txn{Zxid: 100, Op: jute.OpCreate, Req: &jute.CreateRequest{Path: "/c/s", ACL: jute.OpenACLUnsafe, Flags: jute.FlagPersistentSequential}})
	if r.Err != jute.ErrOK || r.Resp.(*jute.CreateResponse).Path != "/c/s0000000002" {
		t.Fatalf("sequential create after restore: %v %v", r.Err, r.Resp)
	}
	fresh.Apply(&znode.Txn{Zxid: 101, Op: jute.OpCloseSession, SessionID: 0x10})
	if _, code := fresh.Read(0, nil, jute.OpExists, &jute.PathWatchRequest{Path: "/a/e"}, nil); code != jute.ErrNoNode {
		t.Fatalf("ephemeral survived its session: %v", code)
	}
}

func TestSnapshotRejectsCorruption(t *testing.T) {
	db := buildTree(t)
	var buf bytes.Buffer
	if err := db.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	target := znode.New()
	before := stateDump(t, target)
	check := func(what string, b []byte) {
		t.Helper()
		err := target.ReadSnapshot(bytes.NewReader(b))
		if err == nil {
			t.Fatalf("%s: accepted", what)
		}
		if !errors.Is(err, znode.ErrCorrupt) {
			t.Fatalf("%s: %v does not wrap ErrCorrupt", what, err)
		}
		if !slices.Equal(stateDump(t, target), before) {
			t.Fatalf("%s: a rejected snapshot changed the DB", what)
		}
	}
	for n := 0; n < len(good); n++ {
		check("truncated to "+strconv.Itoa(n), good[:n])
	}
	for i := 0; i < len(good); i++ {
		b := slices.Clone(good)
		b[i] ^= 0x40
		check("byte "+strconv.Itoa(i)+" flipped", b)
	}
	check("trailing byte", append(slices.Clone(good), 0))
}

// sealSnapshot appends the checksum to a hand-made snapshot body.
func sealSnapshot(body []byte) []byte {
	return binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
}

type snapNode struct {
	path string
	acl  int32
}

func craftSnapshot(nodes []snapNode, aclTable int, sessions []int64) []byte {
	e := &jute.Encoder{}
	e.B = append(e.B, "RZNS"...)
	e.B = append(e.B, 1)
	e.Long(9)
	e.Int(int32(aclTable))
	for i := 0; i < aclTable; i++ {
		e.Int(1)
		(&jute.ACL{Perms: jute.PermAll, ID: jute.WorldAnyone}).Encode(e)
	}
	e.Long(int64(len(nodes)))
	for _, n := range nodes {
		e.String(n.path)
		e.Buffer(nil)
		e.Int(n.acl)
		for i := 0; i < 4; i++ {
			e.Long(0)
		}
		e.Int(0)
		e.Int(0)
		e.Int(0)
		e.Long(0)
		e.Long(0)
	}
	e.Int(int32(len(sessions)))
	for _, id := range sessions {
		e.Long(id)
		e.Int(1000)
		e.Buffer(nil)
	}
	return sealSnapshot(e.B)
}

func TestSnapshotRejectsBadStructure(t *testing.T) {
	ok := craftSnapshot([]snapNode{{"/", 0}, {"/a", 0}, {"/a/b", -1}}, 1, []int64{1, 2})
	db := znode.New()
	if err := db.ReadSnapshot(bytes.NewReader(ok)); err != nil {
		t.Fatalf("a well-formed hand-made snapshot: %v", err)
	}
	if err := znode.CheckInvariants(db); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"no nodes":         craftSnapshot(nil, 1, nil),
		"root not first":   craftSnapshot([]snapNode{{"/a", 0}, {"/", 0}}, 1, nil),
		"child first":      craftSnapshot([]snapNode{{"/", 0}, {"/a/b", 0}, {"/a", 0}}, 1, nil),
		"duplicate":        craftSnapshot([]snapNode{{"/", 0}, {"/a", 0}, {"/a", 0}}, 1, nil),
		"root twice":       craftSnapshot([]snapNode{{"/", 0}, {"/", 0}}, 1, nil),
		"invalid path":     craftSnapshot([]snapNode{{"/", 0}, {"/a/", 0}}, 1, nil),
		"relative path":    craftSnapshot([]snapNode{{"/", 0}, {"a", 0}}, 1, nil),
		"acl index":        craftSnapshot([]snapNode{{"/", 1}}, 1, nil),
		"negative acl":     craftSnapshot([]snapNode{{"/", -2}}, 1, nil),
		"dup session":      craftSnapshot([]snapNode{{"/", 0}}, 1, []int64{5, 5}),
		"version":          sealSnapshot(append([]byte("RZNS"), 2)),
		"magic":            sealSnapshot([]byte("XZNS\x01")),
		"empty":            nil,
		"header only":      sealSnapshot([]byte("RZNS\x01")),
		"huge node count":  sealSnapshot(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte("RZNS\x01"), 0), 0), 1<<60)),
		"huge acl count":   sealSnapshot(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte("RZNS\x01"), 0), 1<<30)),
		"empty acl in tbl": sealSnapshot(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte("RZNS\x01"), 0), 1), 0)),
	}
	for name, b := range bad {
		if err := db.ReadSnapshot(bytes.NewReader(b)); !errors.Is(err, znode.ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Two members applying the same Txns end in the same state with the same
// results.
func TestApplyDeterministic(t *testing.T) {
	txns := randomTxns(rand.New(rand.NewPCG(1, 2)), 3000)
	run := func() ([]string, []byte) {
		db := znode.New()
		var results []string
		for _, txn := range txns {
			r := db.Apply(txn)
			results = append(results, fmtResult(r)...)
			if err := znode.CheckInvariants(db); err != nil {
				t.Fatalf("after zxid %d (%s): %v", txn.Zxid, jute.OpName(txn.Op), err)
			}
		}
		var buf bytes.Buffer
		if err := db.WriteSnapshot(&buf); err != nil {
			t.Fatal(err)
		}
		return results, buf.Bytes()
	}
	r1, s1 := run()
	r2, s2 := run()
	if !slices.Equal(r1, r2) || !bytes.Equal(s1, s2) {
		t.Fatal("the same Txns gave different results or states")
	}
	ok := 0
	for _, l := range r1 {
		if len(l) > 0 && bytes.Contains([]byte(l), []byte(" OK")) {
			ok++
		}
	}
	if ok < len(txns)/4 {
		t.Fatalf("only %d of %d txns succeeded: the generator is too random to test much", ok, len(txns))
	}
}

// randomTxns makes a reproducible mix of writes over a small namespace, so
// that creates, deletes, multis and session closes collide often.
func randomTxns(rng *rand.Rand, n int) []*znode.Txn {
	paths := []string{"/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z", "/c"}
	pick := func() string { return paths[rng.IntN(len(paths))] }
	writeOp := func() (int32, jute.Record) {
		switch rng.IntN(6) {
		case 0, 1:
			flags := []int32{0, 0, 1, 2, 3}[rng.IntN(5)]
			return jute.OpCreate, &jute.CreateRequest{Path: pick(), Data: []byte("d"), ACL: jute.OpenACLUnsafe, Flags: flags}
		case 2:
			return jute.OpCreateContainer, &jute.CreateRequest{Path: pick(), ACL: jute.OpenACLUnsafe, Flags: 4}
		case 3:
			return jute.OpDelete, &jute.DeleteRequest{Path: pick(), Version: int32(rng.IntN(3)) - 1}
		case 4:
			return jute.OpSetData, &jute.SetDataRequest{Path: pick(), Data: []byte("v"), Version: int32(rng.IntN(3)) - 1}
		}
		return jute.OpCheck, &jute.DeleteRequest{Path: pick(), Version: int32(rng.IntN(3)) - 1}
	}
	var out []*znode.Txn
	for i := 1; i <= n; i++ {
		txn := &znode.Txn{Zxid: int64(i), Time: int64(i * 10), SessionID: int64(rng.IntN(3) + 1)}
		switch k := rng.IntN(20); {
		case k == 0:
			txn.Op = jute.OpCreateSession
			txn.Timeout = 1000
		case k == 1:
			txn.Op = jute.OpCloseSession
		case k == 2:
			txn.Op = jute.OpDeleteContainer
			txn.Req = &jute.DeleteRequest{Path: pick(), Version: -1}
		case k < 7:
			m := &jute.MultiRequest{}
			for j := rng.IntN(4); j >= 0; j-- {
				op, req := writeOp()
				if op == jute.OpCreateContainer {
					op = jute.OpCreate // container flag under create: persistent
				}
				m.Ops = append(m.Ops, jute.MultiOp{Type: op, Req: req})
			}
			txn.Op, txn.Req = jute.OpMulti, m
		default:
			txn.Op, txn.Req = writeOp()
		}
		out = append(out, txn)
	}
	return out
}

// Reads, watch registrations, reports and snapshots run alongside Apply;
// run with -race.
func TestConcurrentUse(t *testing.T) {
	db := znode.New()
	txns := randomTxns(rand.New(rand.NewPCG(3, 4)), 2000)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			w := &countWatcher{session: int64(g)}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := []string{"/a", "/b", "/a/x", "/", "/c"}[i%5]
				db.Read(int64(g), nil, jute.OpGetData, &jute.PathWatchRequest{Path: p, Watch: i%2 == 0}, w)
				db.Read(int64(g), nil, jute.OpGetChildren2, &jute.PathWatchRequest{Path: p, Watch: i%3 == 0}, w)
				db.Read(int64(g), nil, jute.OpExists, &jute.PathWatchRequest{Path: p + "/q", Watch: true}, w)
				db.Read(int64(g), nil, jute.OpGetAllChildrenNumber, &jute.PathRequest{Path: "/"}, nil)
				if i%50 == 0 {
					db.Read(int64(g), nil, jute.OpAddWatch, &jute.AddWatchRequest{Path: p, Mode: int32(i / 50 % 2)}, w)
					db.Stats()
					db.WatchesBySession()
					db.WatchesByPath()
					db.Expirable(int64(i))
					var buf bytes.Buffer
					if err := db.WriteSnapshot(&buf); err != nil {
						t.Error(err)
					}
				}
				if i%200 == 0 {
					db.RemoveWatcher(w)
				}
			}
		}(g)
	}
	for _, txn := range txns {
		db.Apply(txn)
	}
	close(stop)
	wg.Wait()
	if err := znode.CheckInvariants(db); err != nil {
		t.Fatal(err)
	}
}

type countWatcher struct {
	mu      sync.Mutex
	session int64
	n       int
}

func (w *countWatcher) Notify(jute.WatcherEvent, int64) { w.mu.Lock(); w.n++; w.mu.Unlock() }
func (w *countWatcher) WatcherSession() int64           { return w.session }

func TestApplyRejectsMalformedRequests(t *testing.T) {
	db := znode.New()
	cases := []struct {
		op   int32
		req  jute.Record
		want jute.Err
	}{
		{jute.OpCreate, &jute.DeleteRequest{Path: "/a"}, jute.ErrMarshallingError},
		{jute.OpCreate, &jute.CreateTTLRequest{Path: "/a", ACL: jute.OpenACLUnsafe, Flags: 5, TTL: 5}, jute.ErrMarshallingError},
		{jute.OpCreateTTL, &jute.CreateRequest{Path: "/a", ACL: jute.OpenACLUnsafe, Flags: 5}, jute.ErrMarshallingError},
		{jute.OpDelete, nil, jute.ErrMarshallingError},
		{jute.OpSetData, &jute.PathRequest{}, jute.ErrMarshallingError},
		{jute.OpSetACL, nil, jute.ErrMarshallingError},
		{jute.OpCheck, nil, jute.ErrMarshallingError},
		{jute.OpDeleteContainer, nil, jute.ErrMarshallingError},
		{jute.OpSync, &jute.DeleteRequest{}, jute.ErrMarshallingError},
		{jute.OpMulti, &jute.MultiRequest{Ops: []jute.MultiOp{{Type: jute.OpSetACL, Req: &jute.SetACLRequest{Path: "/", ACL: jute.OpenACLUnsafe, Version: -1}}}}, jute.ErrMarshallingError},
		{jute.OpMulti, &jute.MultiRequest{Ops: []jute.MultiOp{{Type: jute.OpGetData, Req: &jute.PathWatchRequest{Path: "/"}}}}, jute.ErrMarshallingError},
		{jute.OpGetData, &jute.PathWatchRequest{Path: "/"}, jute.ErrUnimplemented},
		{jute.OpReconfig, nil, jute.ErrUnimplemented},
	}
	for i, c := range cases {
		r := db.Apply(&znode.Txn{Zxid: int64(i + 1), Op: c.op, Req: c.req})
		if r.Err != c.want || r.Resp != nil || r.Zxid != int64(i+1) || db.LastZxid() != int64(i+1) {
			t.Errorf("%d %s %T: %v %v, want %v", i, jute.OpName(c.op), c.req, r.Err, r.Resp, c.want)
		}
	}
	if err := znode.CheckInvariants(db); err != nil {
		t.Fatal(err)
	}
}

func TestReadRejectsMalformedRequests(t *testing.T) {
	db := znode.New()
	w := &countWatcher{}
	for _, op := range []int32{jute.OpExists, jute.OpGetData, jute.OpGetChildren, jute.OpGetChildren2, jute.OpGetACL,
		jute.OpGetAllChildrenNumber, jute.OpGetEphemerals, jute.OpSync, jute.OpMultiRead, jute.OpAddWatch,
		jute.OpCheckWatches, jute.OpRemoveWatches, jute.OpSetWatches, jute.OpSetWatches2} {
		resp, code := db.Read(1, nil, op, &jute.Empty{}, w)
		if code != jute.ErrMarshallingError || resp != nil {
			t.Errorf("%s with Empty: %v %v", jute.OpName(op), code, resp)
		}
		resp, code = db.Read(1, nil, op, nil, w)
		if code != jute.ErrMarshallingError || resp != nil {
			t.Errorf("%s with nil: %v %v", jute.OpName(op), code, resp)
		}
	}
	m := &jute.MultiRequest{Ops: []jute.MultiOp{{Type: jute.OpCreate, Req: &jute.CreateRequest{}}}}
	if _, code := db.Read(1, nil, jute.OpMultiRead, m, nil); code != jute.ErrMarshallingError {
		t.Errorf("multiRead with a create: %v", code)
	}
	if _, code := db.Read(1, nil, jute.OpCheckWatches, &jute.RemoveWatchesRequest{Path: "/", Type: 1}, nil); code != jute.ErrNoWatcher {
		t.Errorf("checkWatches without a watcher: %v", code)
	}
}

func TestHeaderErr(t *testing.T) {
	if (znode.Result{Err: jute.ErrNoNode}).HeaderErr() != jute.ErrNoNode {
		t.Error("plain failure")
	}
	if (znode.Result{Err: jute.ErrNoNode, Resp: &jute.MultiResponse{}}).HeaderErr() != jute.ErrOK {
		t.Error("failed multi")
	}
}

// The session table and its copies.
func TestSessions(t *testing.T) {
	db := znode.New()
	for i, id := range []int64{0x30, -5, 0x10} {
		db.Apply(&znode.Txn{Zxid: int64(i + 1), Op: jute.OpCreateSession, SessionID: id, Timeout: int32(1000 * (i + 1)), Passwd: []byte{byte(i)}})
	}
	got := db.Sessions()
	if len(got) != 3 || got[0].ID != -5 || got[1].ID != 0x10 || got[2].ID != 0x30 {
		t.Fatalf("Sessions() = %+v", got)
	}
	s, ok := db.Session(0x30)
	if !ok || s.Timeout != 1000 || !bytes.Equal(s.Passwd, []byte{0}) {
		t.Fatalf("Session(0x30) = %+v %v", s, ok)
	}
	s.Passwd[0] = 9
	if s2, _ := db.Session(0x30); s2.Passwd[0] != 0 {
		t.Fatal("Session returned the stored password, not a copy")
	}
	if _, ok := db.Session(0x99); ok {
		t.Fatal("unknown session found")
	}
	// Re-creating a session updates it.
	db.Apply(&znode.Txn{Zxid: 9, Op: jute.OpCreateSession, SessionID: 0x30, Timeout: 7})
	if s, _ := db.Session(0x30); s.Timeout != 7 {
		t.Fatalf("session not updated: %+v", s)
	}
}
