package source

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func commitKey(version int16, group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = version, group, topic, partition
	return k.AppendTo(nil)
}

func commitValue(version int16, offset, ts int64) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version, v.Offset, v.CommitTimestamp, v.Metadata = version, offset, ts, "meta"
	v.LeaderEpoch, v.ExpireTimestamp = 3, ts+1000
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version, k.Group = 2, group
	return k.AppendTo(nil)
}

func assignment(topics map[string][]int32) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	for t, ps := range topics {
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic, at.Partitions = t, ps
		a.Topics = append(a.Topics, at)
	}
	return a.AppendTo(nil)
}

func groupValue(version int16, protocolType string, members ...kmsg.GroupMetadataValueMember) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version, v.ProtocolType, v.Generation = version, protocolType, 4
	proto, leader := "range", "m-1"
	v.Protocol, v.Leader = &proto, &leader
	v.Members = members
	return v.AppendTo(nil)
}

func member(clientID, host string, topics map[string][]int32) kmsg.GroupMetadataValueMember {
	m := kmsg.NewGroupMetadataValueMember()
	m.MemberID, m.ClientID, m.ClientHost = clientID+"-id", clientID, host
	m.SessionTimeoutMillis, m.RebalanceTimeoutMillis = 10000, 30000
	m.Subscription = []byte{0, 0}
	m.Assignment = assignment(topics)
	return m
}

func TestDecodeCommitVersions(t *testing.T) {
	for _, kv := range []int16{0, 1} {
		for _, vv := range []int16{0, 1, 2, 3, 4} {
			rec, err := DecodeOffsetsRecord(commitKey(kv, "billing", "orders", 7), commitValue(vv, 1234, 1_700_000_000_000))
			if err != nil {
				t.Fatalf("key v%d value v%d: %v", kv, vv, err)
			}
			if rec.Kind != KindCommit || rec.Group != "billing" || rec.Topic != "orders" || rec.Partition != 7 ||
				rec.Offset != 1234 || rec.Timestamp != 1_700_000_000_000 || rec.Tombstone {
				t.Fatalf("key v%d value v%d: %+v", kv, vv, rec)
			}
		}
	}
	rec, err := DecodeOffsetsRecord(commitKey(1, "g", "t", 0), nil)
	if err != nil || !rec.Tombstone || rec.Group != "g" {
		t.Fatalf("tombstone %+v %v", rec, err)
	}
}

func TestDecodeGroupMetadataVersions(t *testing.T) {
	for _, vv := range []int16{0, 1, 2, 3, 4} {
		val := groupValue(vv, "consumer",
			member("c-1", "/10.0.0.1", map[string][]int32{"orders": {0, 2}}),
			member("c-2", "/10.0.0.2", map[string][]int32{"orders": {1}}))
		rec, err := DecodeOffsetsRecord(groupKey("billing"), val)
		if err != nil {
			t.Fatalf("value v%d: %v", vv, err)
		}
		if rec.Kind != KindGroupMetadata || rec.Group != "billing" || rec.ProtocolType != "consumer" || len(rec.Members) != 2 {
			t.Fatalf("value v%d: %+v", vv, rec)
		}
		m := rec.Members[0]
		if m.ClientID != "c-1" || m.ClientHost != "/10.0.0.1" || len(m.Assignments["orders"]) != 2 || m.Assignments["orders"][1] != 2 {
			t.Fatalf("value v%d member %+v", vv, m)
		}
	}
	// Connect groups' assignments have their own layout: members only.
	rec, err := DecodeOffsetsRecord(groupKey("connect-x"), groupValue(3, "connect", member("w", "/h", nil)))
	if err != nil || len(rec.Members) != 1 || rec.Members[0].Assignments != nil {
		t.Fatalf("connect group %+v %v", rec, err)
	}
	rec, err = DecodeOffsetsRecord(groupKey("empty"), groupValue(2, "consumer"))
	if err != nil || len(rec.Members) != 0 {
		t.Fatalf("empty group %+v %v", rec, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := map[string]struct {
		key, value []byte
		want       error
	}{
		"short key":           {[]byte{0}, nil, ErrMalformed},
		"unknown key version": {[]byte{0, 9, 0, 0}, []byte{0, 0}, ErrUnknownVersion},
		"truncated key":       {commitKey(1, "g", "t", 0)[:6], commitValue(1, 1, 1), ErrMalformed},
		"unknown value":       {commitKey(1, "g", "t", 0), []byte{0, 7, 1, 2}, ErrUnknownVersion},
		"truncated value":     {commitKey(1, "g", "t", 0), commitValue(3, 1, 1)[:9], ErrMalformed},
		"short value":         {groupKey("g"), []byte{1}, ErrMalformed},
		"bad assignment": {groupKey("g"), groupValue(1, "consumer", func() kmsg.GroupMetadataValueMember {
			m := member("c", "h", nil)
			m.Assignment = []byte{0, 0, 0, 0, 0, 9}
			return m
		}()), ErrMalformed},
	}
	for name, tc := range cases {
		if _, err := DecodeOffsetsRecord(tc.key, tc.value); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// FuzzDecodeOffsetsKey feeds arbitrary keys (with a valid value of each
// kind): no panic, and a decoded commit key re-encodes to the same group,
// topic and partition.
func FuzzDecodeOffsetsKey(f *testing.F) {
	f.Add(commitKey(0, "g", "t", 1))
	f.Add(commitKey(1, "billing", "orders", 7))
	f.Add(groupKey("billing"))
	f.Add([]byte{0, 2, 0xff, 0xff})
	f.Add([]byte{0, 1, 0x7f, 0xff})
	f.Fuzz(func(t *testing.T, key []byte) {
		for _, val := range [][]byte{nil, commitValue(3, 5, 6), groupValue(3, "consumer", member("c", "h", map[string][]int32{"t": {0}}))} {
			rec, err := DecodeOffsetsRecord(key, val)
			if err != nil || rec.Kind != KindCommit {
				continue
			}
			again, err := DecodeOffsetsRecord(commitKey(1, rec.Group, rec.Topic, rec.Partition), val)
			if err != nil || again.Group != rec.Group || again.Topic != rec.Topic || again.Partition != rec.Partition {
				t.Fatalf("round trip %+v -> %+v %v", rec, again, err)
			}
		}
	})
}

// FuzzDecodeOffsetsValue feeds arbitrary values to both kinds of key.
func FuzzDecodeOffsetsValue(f *testing.F) {
	for _, v := range []int16{0, 1, 2, 3, 4} {
		f.Add(commitValue(v, 100, 200))
		f.Add(groupValue(v, "consumer", member("c", "/h", map[string][]int32{"t": {0, 1}})))
	}
	f.Add([]byte{0, 3})
	f.Add([]byte{0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, value []byte) {
		for _, key := range [][]byte{commitKey(1, "g", "t", 0), groupKey("g")} {
			rec, err := DecodeOffsetsRecord(key, value)
			if err == nil && rec.Group != "g" {
				t.Fatalf("decoded group %q from key of g", rec.Group)
			}
		}
	})
}
