package jute

import (
	"reflect"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bytes to the decoder of every request
// opcode, and the connect request. Decoding must never panic; whatever
// decodes must encode back to bytes that decode to the same record.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(int32(OpCreate), Encode(&CreateRequest{Path: "/a", Data: []byte("x"), ACL: OpenACLUnsafe}))
	f.Add(int32(OpMulti), Encode(&MultiRequest{Ops: []MultiOp{{Type: OpDelete, Req: &DeleteRequest{Path: "/a", Version: -1}}}}))
	f.Add(int32(OpSetWatches2), Encode(&SetWatches2{DataWatches: []string{"/a"}}))
	f.Add(int32(OpCreateTTL), Encode(&CreateTTLRequest{Path: "/t", TTL: 5, ACL: OpenACLUnsafe}))
	f.Add(int32(-10), Encode(&ConnectRequest{TimeOut: 1, Passwd: []byte{}}))
	f.Add(int32(OpAuth), []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, op int32, data []byte) {
		var rec Record
		if op == -10 {
			rec = &ConnectRequest{}
		} else {
			r, _ := RequestRecord(op)
			if r == nil {
				return
			}
			rec = r
		}
		if err := Decode(data, rec, false); err != nil {
			return
		}
		again := reflect.New(reflect.TypeOf(rec).Elem()).Interface().(Record)
		if err := Decode(Encode(rec), again, true); err != nil {
			t.Fatalf("re-decode %T: %v", rec, err)
		}
		if !reflect.DeepEqual(rec, again) {
			t.Fatalf("%T changed:\n %+v\n %+v", rec, rec, again)
		}
	})
}

// FuzzReplyAndMulti checks the response-side decoders the same way.
func FuzzReplyAndMulti(f *testing.F) {
	f.Add(Encode(&MultiResponse{Results: []MultiResult{{Type: OpCreate, Resp: &CreateResponse{Path: "/a"}}, {Type: OpError, Err: ErrNoNode}}}))
	f.Add(Encode(&ReplyHeader{Xid: -1, Zxid: 1}, &WatcherEvent{Type: 1, State: 3, Path: "/x"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m MultiResponse
		if Decode(data, &m, false) == nil {
			var again MultiResponse
			if err := Decode(Encode(&m), &again, true); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
		}
		var h ReplyHeader
		var ev WatcherEvent
		d := NewDecoder(data)
		h.Decode(d)
		ev.Decode(d)
	})
}
