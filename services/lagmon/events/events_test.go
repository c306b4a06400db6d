package events

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestSubjects(t *testing.T) {
	if LogEndSubject("runnel", "local") != "runnel.local.offsets.log_end" ||
		CommitSubject("runnel", "local") != "runnel.local.offsets.commit" ||
		MembersSubject("runnel", "local") != "runnel.local.groups.members" {
		t.Fatal("subjects differ from the documented ones")
	}
}

func TestDecode(t *testing.T) {
	le, err := DecodeLogEnd([]byte(`{"timestamp":5,"partitions":[{"topic":"t","partition":1,"partition_count":3,"offset":9}]}`))
	if err != nil || le.Timestamp != 5 || le.Partitions[0].PartitionCount != 3 || le.Partitions[0].Offset != 9 {
		t.Fatalf("%+v %v", le, err)
	}
	c, err := DecodeCommit([]byte(`{"group":"g","timestamp":5,"offsets":[{"topic":"t","partition":0,"offset":4}]}`))
	if err != nil || c.Group != "g" || c.Order != 0 || c.Offsets[0].Offset != 4 {
		t.Fatalf("%+v %v", c, err)
	}
	m, err := DecodeMembers([]byte(`{"group":"g","members":[{"client_id":"c","client_host":"/h","assignments":{"t":[0,1]}}]}`))
	if err != nil || m.Members[0].Assignments["t"][1] != 1 {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{`{`, `{"partitions":[{"topic":"","partition":0,"partition_count":1}]}`, `{"partitions":[{"topic":"t","partition":3,"partition_count":3}]}`} {
		if _, err := DecodeLogEnd([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("log_end %s: %v", bad, err)
		}
	}
	for _, bad := range []string{`[]`, `{"offsets":[]}`, `{"group":"g","offsets":[{"topic":"t","partition":-1}]}`} {
		if _, err := DecodeCommit([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("commit %s: %v", bad, err)
		}
	}
	if _, err := DecodeMembers([]byte(`{"members":[]}`)); !errors.Is(err, ErrInvalid) {
		t.Error("members without a group accepted")
	}
}

// FuzzDecode feeds arbitrary bytes to the three decoders: they must not
// panic, and what they accept must survive a round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"timestamp":5,"partitions":[{"topic":"t","partition":1,"partition_count":3,"offset":9}]}`))
	f.Add([]byte(`{"group":"g","timestamp":5,"order":7,"offsets":[{"topic":"t","partition":0,"offset":4}]}`))
	f.Add([]byte(`{"group":"g","members":[{"client_id":"c","client_host":"/h","assignments":{"t":[0,1]}}]}`))
	f.Add([]byte(`{"partitions":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := DecodeLogEnd(b); err == nil {
			again, _ := json.Marshal(v)
			if _, err := DecodeLogEnd(again); err != nil {
				t.Fatalf("log_end round trip: %v", err)
			}
		}
		if v, err := DecodeCommit(b); err == nil {
			again, _ := json.Marshal(v)
			if _, err := DecodeCommit(again); err != nil {
				t.Fatalf("commit round trip: %v", err)
			}
		}
		if v, err := DecodeMembers(b); err == nil {
			again, _ := json.Marshal(v)
			if _, err := DecodeMembers(again); err != nil {
				t.Fatalf("members round trip: %v", err)
			}
		}
	})
}
