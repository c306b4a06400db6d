package jute

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

func roundTrip(t *testing.T, in Record, out Record) {
	t.Helper()
	b := Encode(in)
	if err := Decode(b, out, true); err != nil {
		t.Fatalf("%T: decode: %v", in, err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("%T: round trip:\n in  %+v\n out %+v", in, in, out)
	}
}

func TestRoundTrip(t *testing.T) {
	st := Stat{Czxid: 1, Mzxid: 2, Ctime: 3, Mtime: 4, Version: 5, Cversion: 6, Aversion: 7, EphemeralOwner: 8, DataLength: 9, NumChildren: 10, Pzxid: 11}
	acl := []ACL{{Perms: PermAll, ID: WorldAnyone}, {Perms: PermRead, ID: Id{"digest", "u:h"}}}
	cases := []struct{ in, out Record }{
		{&ConnectRequest{ProtocolVersion: 0, LastZxidSeen: 9, TimeOut: 30000, SessionID: 7, Passwd: make([]byte, 16), ReadOnly: true, HasReadOnly: true}, &ConnectRequest{}},
		{&ConnectRequest{TimeOut: 30000, Passwd: []byte{}}, &ConnectRequest{}},
		{&ConnectResponse{TimeOut: 4000, SessionID: -5, Passwd: []byte{1, 2}, ReadOnly: false}, &ConnectResponse{}},
		{&RequestHeader{Xid: 3, Type: OpCreate}, &RequestHeader{}},
		{&ReplyHeader{Xid: -1, Zxid: 99, Err: ErrNoNode}, &ReplyHeader{}},
		{&WatcherEvent{Type: EventNodeCreated, State: StateSyncConnected, Path: "/a"}, &WatcherEvent{}},
		{&CreateRequest{Path: "/a", Data: []byte("x"), ACL: acl, Flags: FlagEphemeralSequential}, &CreateRequest{}},
		{&CreateTTLRequest{Path: "/t", Data: nil, ACL: acl, Flags: FlagPersistentWithTTL, TTL: 1000}, &CreateTTLRequest{}},
		{&CreateResponse{Path: "/a0000000001"}, &CreateResponse{}},
		{&Create2Response{Path: "/b", Stat: st}, &Create2Response{}},
		{&DeleteRequest{Path: "/a", Version: -1}, &DeleteRequest{}},
		{&PathWatchRequest{Path: "/a", Watch: true}, &PathWatchRequest{}},
		{&PathRequest{Path: "/a"}, &PathRequest{}},
		{&StatResponse{Stat: st}, &StatResponse{}},
		{&GetDataResponse{Data: []byte("hello"), Stat: st}, &GetDataResponse{}},
		{&SetDataRequest{Path: "/a", Data: []byte("v"), Version: 3}, &SetDataRequest{}},
		{&GetACLResponse{ACL: acl, Stat: st}, &GetACLResponse{}},
		{&SetACLRequest{Path: "/a", ACL: acl, Version: 1}, &SetACLRequest{}},
		{&ChildrenResponse{Children: []string{"a", "b"}}, &ChildrenResponse{}},
		{&Children2Response{Children: []string{}, Stat: st}, &Children2Response{}},
		{&CountResponse{TotalNumber: 12}, &CountResponse{}},
		{&PathsResponse{Paths: []string{"/e1"}}, &PathsResponse{}},
		{&AuthPacket{Type: 0, Scheme: "digest", Auth: []byte("u:p")}, &AuthPacket{}},
		{&SetWatches{RelativeZxid: 5, DataWatches: []string{"/d"}, ExistWatches: []string{}, ChildWatches: []string{"/c"}}, &SetWatches{}},
		{&SetWatches2{RelativeZxid: 5, DataWatches: []string{}, ExistWatches: []string{}, ChildWatches: []string{}, PersistentWatches: []string{"/p"}, PersistentRecursiveWatches: []string{"/r"}}, &SetWatches2{}},
		{&AddWatchRequest{Path: "/a", Mode: AddWatchPersistentRecursive}, &AddWatchRequest{}},
		{&RemoveWatchesRequest{Path: "/a", Type: WatcherTypeAny}, &RemoveWatchesRequest{}},
		{&WhoAmIResponse{ClientInfo: []ClientInfo{{"ip", "127.0.0.1"}, {"digest", "u"}}}, &WhoAmIResponse{}},
		{&ErrorResponse{Err: ErrBadVersion}, &ErrorResponse{}},
		{&MultiRequest{Ops: []MultiOp{
			{Type: OpCreate, Req: &CreateRequest{Path: "/m", Data: []byte{}, ACL: acl}},
			{Type: OpCreateTTL, Req: &CreateTTLRequest{Path: "/t", Data: []byte{}, ACL: acl, Flags: FlagPersistentWithTTL, TTL: 5}},
			{Type: OpCheck, Req: &DeleteRequest{Path: "/m", Version: 0}},
			{Type: OpSetData, Req: &SetDataRequest{Path: "/m", Data: []byte("x"), Version: -1}},
			{Type: OpDelete, Req: &DeleteRequest{Path: "/m", Version: -1}},
		}}, &MultiRequest{}},
		{&MultiResponse{Results: []MultiResult{
			{Type: OpCreate, Resp: &CreateResponse{Path: "/m"}},
			{Type: OpCreate2, Resp: &Create2Response{Path: "/n", Stat: st}},
			{Type: OpSetData, Resp: &StatResponse{Stat: st}},
			{Type: OpDelete},
			{Type: OpCheck},
			{Type: OpGetData, Resp: &GetDataResponse{Data: []byte("d"), Stat: st}},
			{Type: OpGetChildren, Resp: &ChildrenResponse{Children: []string{"x"}}},
			{Type: OpError, Err: ErrNoNode},
		}}, &MultiResponse{}},
	}
	for _, c := range cases {
		roundTrip(t, c.in, c.out)
	}
}

// TestConnectRequestWire pins the handshake bytes a ZooKeeper 3.8 client
// sends, with and without the trailing readOnly byte.
func TestConnectRequestWire(t *testing.T) {
	req := &ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16), HasReadOnly: true}
	want := "00000000" + "0000000000000000" + "00007530" + "0000000000000000" + "00000010" + "00000000000000000000000000000000" + "00"
	if got := hex.EncodeToString(Encode(req)); got != want {
		t.Fatalf("encode:\n got  %s\n want %s", got, want)
	}
	var old ConnectRequest
	b, _ := hex.DecodeString(want[:len(want)-2])
	if err := Decode(b, &old, true); err != nil || old.HasReadOnly || old.TimeOut != 30000 {
		t.Fatalf("decode without readOnly: %+v %v", old, err)
	}
}

func TestNullsAndErrors(t *testing.T) {
	// A -1 buffer decodes as nil, a -1 vector as nil.
	e := &Encoder{}
	e.Buffer(nil)
	e.Strings(nil)
	d := NewDecoder(e.B)
	if d.Buffer() != nil || d.Strings() != nil || d.Err() != nil {
		t.Fatal("nulls")
	}
	// A length past the end is an error, not a panic or a huge allocation.
	for _, b := range [][]byte{
		{0x7f, 0xff, 0xff, 0xff},
		{0xff, 0xff, 0xff, 0xfe},
		{0, 0, 0, 5, 'a'},
	} {
		d := NewDecoder(b)
		d.Buffer()
		if !errors.Is(d.Err(), ErrLength) && !errors.Is(d.Err(), ErrShort) {
			t.Fatalf("%x: err %v", b, d.Err())
		}
	}
	// A vector claiming more elements than bytes remain.
	if err := Decode([]byte{0x00, 0x10, 0x00, 0x00}, &ChildrenResponse{}, true); err == nil {
		t.Fatal("want error for oversize vector")
	}
	// Trailing bytes are reported when exact.
	if err := Decode(append(Encode(&PathRequest{Path: "/a"}), 1), &PathRequest{}, true); err == nil {
		t.Fatal("want trailing-bytes error")
	}
	// An op that is not allowed in a multi.
	bad := Encode(&MultiHeader{Type: OpPing}, &MultiHeader{Type: -1, Done: true, Err: -1})
	if err := Decode(bad, &MultiRequest{}, true); !errors.Is(err, ErrUnknownOp) {
		t.Fatalf("multi with ping: %v", err)
	}
}

func TestFrames(t *testing.T) {
	buf := AppendFrame(nil, &RequestHeader{Xid: 1, Type: OpPing})
	got, err := ReadFrame(bytes.NewReader(buf), nil, MaxPacket)
	if err != nil || len(got) != 8 {
		t.Fatalf("frame: %x %v", got, err)
	}
	big := []byte{0x00, 0x20, 0x00, 0x00}
	if _, err := ReadFrame(bytes.NewReader(big), nil, MaxPacket); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	neg := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := ReadFrame(bytes.NewReader(neg), nil, MaxPacket); !errors.Is(err, ErrLength) {
		t.Fatalf("negative: %v", err)
	}
}

func TestOpAndErrNames(t *testing.T) {
	if OpName(OpGetChildren2) != "getChildren2" || OpName(12345) != "op(12345)" {
		t.Fatal("op names")
	}
	if ErrNoNode.Error() != "NoNode" || Err(-999).Error() != "ZooKeeperError(-999)" {
		t.Fatal("err names")
	}
}

func BenchmarkDecodeCreate(b *testing.B) {
	buf := Encode(&CreateRequest{Path: "/bench/node-000001", Data: make([]byte, 100), ACL: OpenACLUnsafe})
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	var r CreateRequest
	for b.Loop() {
		_ = Decode(buf, &r, true)
	}
}
