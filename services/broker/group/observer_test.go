package group

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// recorder keeps what the coordinator tells its Observer.
type recorder struct {
	mu      sync.Mutex
	commits []OffsetCommit
	groups  []*GroupValue
}

func (r *recorder) OffsetsCommitted(_ context.Context, c OffsetCommit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits = append(r.commits, c)
}

func (r *recorder) GroupStored(_ context.Context, group string, v *GroupValue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if group != "g" {
		panic("group " + group)
	}
	r.groups = append(r.groups, v)
}

func TestObserverHearsWhatIsStored(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	obs := &recorder{}
	store := newMemStore()
	h := newObservedHarness(t, cfg, store, obs)
	p := h.c.PartitionFor("g")

	a, ja := h.joinNew("g", joinOpts{})
	if r := ja.get(); r == nil || r.Generation != 1 {
		t.Fatalf("join: %+v", r)
	}
	if len(obs.groups) != 0 {
		t.Fatal("a generation without its assignment was reported")
	}
	assignment := kmsg.ConsumerMemberAssignment{Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: "orders", Partitions: []int32{0, 1}}}}
	if r := h.sync("g", a, 1, map[string]string{a: string(assignment.AppendTo(nil))}).get(); r == nil || r.ErrorCode != 0 {
		t.Fatalf("sync: %+v", r)
	}
	if len(obs.groups) != 1 || obs.groups[0].Generation != 1 || len(obs.groups[0].Members) != 1 {
		t.Fatalf("after the assignment: %+v", obs.groups)
	}
	m := obs.groups[0].Members[0]
	var got kmsg.ConsumerMemberAssignment
	if err := got.ReadFrom(m.Assignment); err != nil || m.MemberID != a || m.ClientID != "client" || m.ClientHost != "/127.0.0.1" ||
		got.Topics[0].Topic != "orders" || !slices.Equal(got.Topics[0].Partitions, []int32{0, 1}) {
		t.Fatalf("member %+v (%v)", m, err)
	}

	// Two commits: each reported once, ordered by where its first record
	// landed in __consumer_offsets.
	if code := h.commit("g", a, 1, "orders", 0, 10); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 7
	req.Group, req.MemberID, req.Generation = "g", a, 1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: 0, Offset: 20, LeaderEpoch: -1}, {Partition: 1, Offset: 5, LeaderEpoch: -1}}}}
	if resp := h.c.CommitOffsets(context.Background(), req); resp.Topics[0].Partitions[1].ErrorCode != 0 {
		t.Fatalf("commit: %+v", resp)
	}
	// Refused commits are not reported.
	if code := h.commit("g", a, 7, "orders", 0, 99); code != kerr.IllegalGeneration.Code {
		t.Fatalf("old generation: %d", code)
	}
	if len(obs.commits) != 2 {
		t.Fatalf("commits %+v", obs.commits)
	}
	c1, c2 := obs.commits[0], obs.commits[1]
	if c1.Group != "g" || c1.Order != 1 || len(c1.Offsets) != 1 || c1.Offsets[0] != (CommittedOffset{"orders", 0, 10}) ||
		c1.Timestamp != h.clock.Now().UnixMilli() {
		t.Errorf("first commit %+v", c1)
	}
	if c2.Order != 2 || len(c2.Offsets) != 2 || c2.Offsets[1] != (CommittedOffset{"orders", 1, 5}) {
		t.Errorf("second commit %+v", c2)
	}
	// The orders are the records' offsets in the group's partition.
	if n := len(store.logs[p]); n != 4 {
		t.Errorf("partition %d holds %d records", p, n)
	}

	// A failed write reports nothing.
	store.fail = kerr.CoordinatorNotAvailable
	if code := h.commit("g", a, 1, "orders", 0, 30); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("failing store: %d", code)
	}
	store.fail = nil
	if len(obs.commits) != 2 {
		t.Fatalf("a failed commit was reported: %+v", obs.commits)
	}

	// The last member leaves: the empty generation is reported.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "g", a
	if resp := h.c.LeaveGroup(context.Background(), leave); resp.ErrorCode != 0 {
		t.Fatalf("leave: %d", resp.ErrorCode)
	}
	h.clock.Advance(time.Second)
	last := obs.groups[len(obs.groups)-1]
	if len(obs.groups) != 2 || last.Generation != 2 || len(last.Members) != 0 {
		t.Fatalf("after leaving: %+v", obs.groups)
	}
}
