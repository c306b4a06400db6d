package group

import (
	"errors"
	"reflect"
	"testing"
)

// The decoders read bytes from disk (the __consumer_offsets log, which
// other tools may have written): whatever the bytes, they return a value
// or ErrRecord, and what they return encodes to bytes that decode to the
// same value.

func FuzzDecodeKey(f *testing.F) {
	f.Add(OffsetKey("group", "topic", 3))
	f.Add(GroupKey("group"))
	f.Add([]byte{0, 0, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 0})
	f.Add([]byte{0, 2, 0xff, 0xff})
	f.Add([]byte{0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := DecodeKey(b)
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("error %v does not wrap ErrRecord", err)
			}
			return
		}
		var again []byte
		switch k.Kind {
		case OffsetKind:
			again = OffsetKey(k.Group, k.Topic, k.Partition)
		case GroupKind:
			again = GroupKey(k.Group)
		default:
			t.Fatalf("kind %d", k.Kind)
		}
		if k2, err := DecodeKey(again); err != nil || k2 != k {
			t.Fatalf("round trip: %+v -> %+v %v", k, k2, err)
		}
	})
}

func FuzzDecodeOffsetValue(f *testing.F) {
	f.Add(OffsetValue{Offset: 10, LeaderEpoch: 2, Metadata: "meta", CommitTimestamp: 99}.Encode())
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeOffsetValue(b)
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("error %v does not wrap ErrRecord", err)
			}
			return
		}
		v2, err := DecodeOffsetValue(v.Encode())
		v.ExpireTimestamp = -1 // version 3 has none
		if err != nil || v2 != v {
			t.Fatalf("round trip: %+v -> %+v %v", v, v2, err)
		}
	})
}

func FuzzDecodeGroupValue(f *testing.F) {
	proto, leader, inst := "range", "m-1", "i-1"
	f.Add(EncodeGroupValue(&GroupValue{ProtocolType: "consumer", Generation: 1, Protocol: &proto, Leader: &leader,
		Members: []GroupValueMember{{MemberID: "m-1", InstanceID: &inst, ClientID: "c", ClientHost: "/h", SessionTimeoutMillis: 10, Subscription: []byte{1}}}}))
	f.Add(EncodeGroupValue(&GroupValue{ProtocolType: "consumer", Generation: 2}))
	f.Add([]byte{0, 0, 0, 1, 'x', 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeGroupValue(b)
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("error %v does not wrap ErrRecord", err)
			}
			return
		}
		if v.Version == 4 {
			return // flexible values carry tags that version 3 drops
		}
		v2, err := DecodeGroupValue(EncodeGroupValue(v))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		norm := func(g *GroupValue) GroupValue {
			c := *g
			c.Version = 0
			if g.Version < 2 {
				c.CurrentStateTimestamp = -1
			}
			c.Members = nil
			for _, m := range g.Members {
				if g.Version < 3 {
					m.InstanceID = nil
				}
				if g.Version < 1 {
					m.RebalanceTimeoutMillis = -1
				}
				if len(m.Subscription) == 0 {
					m.Subscription = nil
				}
				if len(m.Assignment) == 0 {
					m.Assignment = nil
				}
				c.Members = append(c.Members, m)
			}
			return c
		}
		if a, b := norm(v), norm(v2); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip:\n%+v\n%+v", a, b)
		}
	})
}
