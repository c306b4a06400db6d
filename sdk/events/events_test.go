package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestSubjects(t *testing.T) {
	if LogEndSubject("runnel", "local") != "runnel.local.offsets.log_end" ||
		CommitSubject("runnel", "local") != "runnel.local.offsets.commit" ||
		MembersSubject("runnel", "local") != "runnel.local.groups.members" {
		t.Fatal("subjects differ from the documented ones")
	}
}

// TestDocumentedPayloads decodes the examples of the package comment.
func TestDocumentedPayloads(t *testing.T) {
	le, err := DecodeLogEnd([]byte(`{"timestamp": 1700000000000,
	 "partitions": [{"topic": "orders", "partition": 0, "partition_count": 3, "offset": 1234}]}`))
	if err != nil || !reflect.DeepEqual(le, LogEnd{Timestamp: 1700000000000,
		Partitions: []LogEndPartition{{Topic: "orders", Partition: 0, PartitionCount: 3, Offset: 1234}}}) {
		t.Fatalf("log_end %+v %v", le, err)
	}
	order := int64(42)
	c, err := DecodeCommit([]byte(`{"group": "billing", "timestamp": 1700000000000, "order": 42,
	 "offsets": [{"topic": "orders", "partition": 0, "offset": 1200}]}`))
	if err != nil || !reflect.DeepEqual(c, Commit{Group: "billing", Timestamp: 1700000000000, Order: &order,
		Offsets: []CommitPartition{{Topic: "orders", Partition: 0, Offset: 1200}}}) {
		t.Fatalf("commit %+v %v", c, err)
	}
	m, err := DecodeMembers([]byte(`{"group": "billing", "generation": 3,
	 "members": [{"client_id": "c-1", "client_host": "/10.0.0.7", "assignments": {"orders": [0, 1]}}]}`))
	if err != nil || !reflect.DeepEqual(m, Members{Group: "billing", Generation: 3, Members: []Member{
		{ClientID: "c-1", ClientHost: "/10.0.0.7", Assignments: map[string][]int32{"orders": {0, 1}}}}}) {
		t.Fatalf("members %+v %v", m, err)
	}
}

func TestOrder(t *testing.T) {
	c, err := DecodeCommit([]byte(`{"group":"g","timestamp":5,"offsets":[{"topic":"t","partition":0,"offset":4}]}`))
	if err != nil || c.Order != nil {
		t.Fatalf("no order: %+v %v", c, err)
	}
	c, err = DecodeCommit([]byte(`{"group":"g","order":0,"offsets":[]}`))
	if err != nil || c.Order == nil || *c.Order != 0 {
		t.Fatalf("order 0 is an order: %+v %v", c, err)
	}
	zero := int64(0)
	b, _ := json.Marshal(Commit{Group: "g", Order: &zero})
	if again, err := DecodeCommit(b); err != nil || again.Order == nil || *again.Order != 0 {
		t.Fatalf("order 0 lost in %s: %+v %v", b, again, err)
	}
}

func TestInvalid(t *testing.T) {
	for _, bad := range []string{`{`, `[]`, `{"partitions":[{"topic":"","partition":0,"partition_count":1}]}`,
		`{"partitions":[{"topic":"t","partition":3,"partition_count":3}]}`, `{"partitions":[{"topic":"t","partition":-1,"partition_count":3}]}`,
		`{"partitions":[{"topic":"t","partition":0,"partition_count":1,"offset":-1}]}`, `{"timestamp":"now"}`} {
		if _, err := DecodeLogEnd([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("log_end %s: %v", bad, err)
		}
	}
	for _, bad := range []string{`[]`, `{"offsets":[]}`, `{"group":"g","offsets":[{"topic":"t","partition":-1}]}`,
		`{"group":"g","offsets":[{"topic":"","partition":0}]}`, `{"group":"g","order":-1}`, `{"group":"g","order":1.5}`} {
		if _, err := DecodeCommit([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("commit %s: %v", bad, err)
		}
	}
	for _, bad := range []string{`{"members":[]}`, `{"group":"g","members":[{"assignments":{"t":[-1]}}]}`,
		`{"group":"g","members":[{"assignments":{"":[0]}}]}`, `{"group":7}`} {
		if _, err := DecodeMembers([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("members %s: %v", bad, err)
		}
	}
}

// roundTrip checks that what a decoder accepted survives encoding and
// decoding again unchanged.
func roundTrip[T any](t *testing.T, v T, decode func([]byte) (T, error)) {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding an accepted %T: %v", v, err)
	}
	again, err := decode(b)
	if err != nil {
		t.Fatalf("round trip of %s: %v", b, err)
	}
	b2, _ := json.Marshal(again)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed %s into %s", b, b2)
	}
}

// The fuzz targets (seed corpora in testdata/fuzz) feed arbitrary bytes
// to each decoder: it must not panic, and what it accepts must survive a
// round trip.

func FuzzDecodeLogEnd(f *testing.F) {
	f.Add([]byte(`{"timestamp":5,"partitions":[{"topic":"t","partition":1,"partition_count":3,"offset":9}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeLogEnd(b); err == nil {
			roundTrip(t, v, DecodeLogEnd)
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error without ErrInvalid: %v", err)
		}
	})
}

func FuzzDecodeCommit(f *testing.F) {
	f.Add([]byte(`{"group":"g","timestamp":5,"order":7,"offsets":[{"topic":"t","partition":0,"offset":4}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeCommit(b); err == nil {
			roundTrip(t, v, DecodeCommit)
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error without ErrInvalid: %v", err)
		}
	})
}

func FuzzDecodeMembers(f *testing.F) {
	f.Add([]byte(`{"group":"g","generation":2,"members":[{"client_id":"c","client_host":"/h","assignments":{"t":[0,1]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeMembers(b); err == nil {
			roundTrip(t, v, DecodeMembers)
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error without ErrInvalid: %v", err)
		}
	})
}
