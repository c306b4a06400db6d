package group

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// The expected bytes below are written out by hand from Kafka's schemas
// (GroupMetadataManager's OFFSET_COMMIT_KEY_SCHEMA, OFFSET_COMMIT_VALUE_SCHEMA_V3,
// GROUP_METADATA_KEY_SCHEMA and GROUP_METADATA_VALUE_SCHEMA_V3): big-endian
// integers, int16-length strings and bytes, int32 array counts, -1 for null.

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOffsetKeyBytes(t *testing.T) {
	want := "0001" + "0002" + hex.EncodeToString([]byte("g1")) + "0006" + hex.EncodeToString([]byte("orders")) + "00000007"
	if got := hex.EncodeToString(OffsetKey("g1", "orders", 7)); got != want {
		t.Fatalf("offset key %s, want %s", got, want)
	}
	// Version 0 keys (written by Kafka 0.8.2) share the layout.
	for _, v := range []string{"0000", "0001"} {
		k, err := DecodeKey(unhex(t, v+want[4:]))
		if err != nil || k != (Key{Kind: OffsetKind, Group: "g1", Topic: "orders", Partition: 7}) {
			t.Fatalf("decode version %s: %+v %v", v, k, err)
		}
	}
}

func TestGroupKeyBytes(t *testing.T) {
	want := "0002" + "0003" + hex.EncodeToString([]byte("abc"))
	if got := hex.EncodeToString(GroupKey("abc")); got != want {
		t.Fatalf("group key %s, want %s", got, want)
	}
	k, err := DecodeKey(unhex(t, want))
	if err != nil || k != (Key{Kind: GroupKind, Group: "abc"}) {
		t.Fatalf("decode: %+v %v", k, err)
	}
	for _, bad := range []string{"", "00", "0003" + "0000", "0002" + "0005" + "6162", "0001" + "0001" + "67"} {
		if _, err := DecodeKey(unhex(t, bad)); !errors.Is(err, ErrRecord) {
			t.Errorf("key %q: %v, want ErrRecord", bad, err)
		}
	}
}

func TestOffsetValueBytes(t *testing.T) {
	v := OffsetValue{Offset: 42, LeaderEpoch: 3, Metadata: "m", CommitTimestamp: 1700000000000}
	want := "0003" + "000000000000002a" + "00000003" + "0001" + "6d" + "0000018bcfe56800"
	if got := hex.EncodeToString(v.Encode()); got != want {
		t.Fatalf("offset value %s, want %s", got, want)
	}
	got, err := DecodeOffsetValue(unhex(t, want))
	v.ExpireTimestamp = -1
	if err != nil || got != v {
		t.Fatalf("decode: %+v %v", got, err)
	}
	// Version 1 (0.9-2.0) carries an expire timestamp and no leader epoch.
	v1 := "0001" + "000000000000002a" + "0000" + "0000018bcfe56800" + "0000018bcfe56801"
	got, err = DecodeOffsetValue(unhex(t, v1))
	if err != nil || got != (OffsetValue{Offset: 42, LeaderEpoch: -1, CommitTimestamp: 1700000000000, ExpireTimestamp: 1700000000001}) {
		t.Fatalf("decode v1: %+v %v", got, err)
	}
	for _, bad := range []string{"", "0003", "0009" + "000000000000002a", "0003" + "000000000000002a" + "00000003" + "0005" + "6d"} {
		if _, err := DecodeOffsetValue(unhex(t, bad)); !errors.Is(err, ErrRecord) {
			t.Errorf("value %q: %v, want ErrRecord", bad, err)
		}
	}
}

func TestGroupValueBytes(t *testing.T) {
	proto, leader, inst := "range", "m-1", "i-1"
	v := &GroupValue{ProtocolType: "consumer", Generation: 4, Protocol: &proto, Leader: &leader, CurrentStateTimestamp: 10,
		Members: []GroupValueMember{{MemberID: "m-1", InstanceID: &inst, ClientID: "c", ClientHost: "/h",
			RebalanceTimeoutMillis: 300000, SessionTimeoutMillis: 10000, Subscription: []byte{1, 2}, Assignment: []byte{3}}}}
	s := func(x string) string {
		return hex.EncodeToString([]byte{0, byte(len(x))}) + hex.EncodeToString([]byte(x))
	}
	want := "0003" + s("consumer") + "00000004" + s("range") + s("m-1") + "000000000000000a" +
		"00000001" + s("m-1") + s("i-1") + s("c") + s("/h") + "000493e0" + "00002710" + "00000002" + "0102" + "00000001" + "03"
	if got := hex.EncodeToString(EncodeGroupValue(v)); got != want {
		t.Fatalf("group value\n%s, want\n%s", got, want)
	}
	back, err := DecodeGroupValue(unhex(t, want))
	if err != nil || back.Generation != 4 || *back.Protocol != "range" || *back.Members[0].InstanceID != "i-1" ||
		!bytes.Equal(back.Members[0].Assignment, []byte{3}) || back.Members[0].RebalanceTimeoutMillis != 300000 {
		t.Fatalf("decode: %+v %v", back, err)
	}
	// An empty group: no protocol, no leader (nulls).
	empty := &GroupValue{ProtocolType: "consumer", Generation: 5, CurrentStateTimestamp: 11}
	want = "0003" + s("consumer") + "00000005" + "ffff" + "ffff" + "000000000000000b" + "00000000"
	if got := hex.EncodeToString(EncodeGroupValue(empty)); got != want {
		t.Fatalf("empty group value %s, want %s", got, want)
	}
	if _, err := DecodeGroupValue(unhex(t, "0007")); !errors.Is(err, ErrRecord) {
		t.Fatalf("bad version: %v", err)
	}
}
