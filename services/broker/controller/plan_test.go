package controller

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/runnel-io/runnel/services/broker/metadata"
)

func view(live []int32, down ...int32) View {
	v := View{Live: map[int32]bool{}, ShuttingDown: map[int32]bool{}}
	for _, id := range live {
		v.Live[id] = true
	}
	for _, id := range down {
		v.ShuttingDown[id] = true
	}
	return v
}

func part(replicas []int32, leader, epoch int32, isr []int32) metadata.Partition {
	return metadata.Partition{Topic: "t", Replicas: replicas, Leader: leader, LeaderEpoch: epoch, ISR: isr, StateVersion: 4}
}

// TestPlan runs each rule of Plan on one partition.
func TestPlan(t *testing.T) {
	r123 := []int32{1, 2, 3}
	cases := []struct {
		name    string
		p       metadata.Partition
		v       View
		unclean bool
		want    *metadata.StateChange // nil: no change
	}{
		{name: "healthy", p: part(r123, 1, 0, r123), v: view(r123)},
		{name: "first state: the first live replica leads",
			p:    metadata.Partition{Topic: "t", Replicas: r123, Leader: -1, StateVersion: -1},
			v:    view([]int32{2, 3}),
			want: &metadata.StateChange{Leader: 2, LeaderEpoch: 0, ISR: []int32{2, 3}, Version: -1}},
		{name: "first state without a live replica waits",
			p: metadata.Partition{Topic: "t", Replicas: r123, Leader: -1, StateVersion: -1}, v: view(nil)},
		{name: "dead leader: the next ISR member in assignment order, epoch bumped",
			p:    part(r123, 1, 3, []int32{3, 1, 2}),
			v:    view([]int32{2, 3}),
			want: &metadata.StateChange{Leader: 2, LeaderEpoch: 4, ISR: []int32{3, 2}, Version: 4}},
		{name: "dead follower leaves the ISR, epoch kept",
			p:    part(r123, 1, 3, r123),
			v:    view([]int32{1, 2}),
			want: &metadata.StateChange{Leader: 1, LeaderEpoch: 3, ISR: []int32{1, 2}, Version: 4}},
		{name: "dead leader, no live ISR member: offline, last ISR kept",
			p:    part(r123, 1, 3, []int32{1}),
			v:    view([]int32{2, 3}),
			want: &metadata.StateChange{Leader: -1, LeaderEpoch: 4, ISR: []int32{1}, Version: 4}},
		{name: "offline stays offline", p: part(r123, -1, 4, []int32{1}), v: view([]int32{2, 3})},
		{name: "unclean election takes a live replica outside the ISR",
			p: part(r123, -1, 4, []int32{1}), v: view([]int32{2, 3}), unclean: true,
			want: &metadata.StateChange{Leader: 2, LeaderEpoch: 5, ISR: []int32{2}, Version: 4}},
		{name: "the ISR member returns: clean election",
			p:    part(r123, -1, 4, []int32{1}),
			v:    view([]int32{1, 2, 3}),
			want: &metadata.StateChange{Leader: 1, LeaderEpoch: 5, ISR: []int32{1}, Version: 4}},
		{name: "leader shutting down hands over and leaves the ISR",
			p:    part(r123, 1, 0, r123),
			v:    view(r123, 1),
			want: &metadata.StateChange{Leader: 2, LeaderEpoch: 1, ISR: []int32{2, 3}, Version: 4}},
		{name: "leader shutting down with nobody in sync stays",
			p: part(r123, 1, 0, []int32{1}), v: view(r123, 1)},
		{name: "follower shutting down leaves the ISR",
			p:    part(r123, 1, 0, r123),
			v:    view(r123, 3),
			want: &metadata.StateChange{Leader: 1, LeaderEpoch: 0, ISR: []int32{1, 2}, Version: 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.v.Unclean = func(*metadata.Topic) bool { return tc.unclean }
			tp := &metadata.Topic{Name: "t", Partitions: []metadata.Partition{tc.p}, Version: 7}
			got := Plan(tp, tc.v)
			if tc.want == nil {
				if got != nil {
					t.Fatalf("Plan changed %+v, want no change", got.States)
				}
				return
			}
			if got == nil || len(got.States) != 1 {
				t.Fatalf("Plan = %+v, want %+v", got, *tc.want)
			}
			st := got.States[0]
			if st.Leader != tc.want.Leader || st.LeaderEpoch != tc.want.LeaderEpoch || !slices.Equal(st.ISR, tc.want.ISR) || st.Version != tc.want.Version {
				t.Fatalf("Plan = %+v, want %+v", st, *tc.want)
			}
		})
	}
}

// TestPlanReassignment completes a reassignment once the whole target is
// in the ISR, and not before.
func TestPlanReassignment(t *testing.T) {
	p := part([]int32{3, 2, 1}, 1, 2, []int32{1, 2})
	p.Adding, p.Removing = []int32{3}, []int32{1}
	tp := &metadata.Topic{Name: "t", Partitions: []metadata.Partition{p}, Version: 7}
	v := view([]int32{1, 2, 3})
	if c := Plan(tp, v); c != nil {
		t.Fatalf("planned %+v before replica 3 is in sync", c)
	}
	tp.Partitions[0].ISR = []int32{1, 2, 3}
	c := Plan(tp, v)
	if c == nil || c.Assignment == nil || c.AssignmentVersion != 7 {
		t.Fatalf("no assignment change: %+v", c)
	}
	if !slices.Equal(c.Assignment.Replicas[0], []int32{3, 2}) || len(c.Assignment.Adding) != 0 || len(c.Assignment.Removing) != 0 {
		t.Fatalf("assignment %+v, want [3 2] with nothing moving", c.Assignment)
	}
	st := c.States[0]
	if st.Leader != 3 || st.LeaderEpoch != 3 || !slices.Equal(st.ISR, []int32{2, 3}) {
		t.Fatalf("state %+v, want leader 3 (the first target replica), epoch 3, ISR [2 3]", st)
	}
}

// TestPreferredChange covers the outcomes of a preferred election.
func TestPreferredChange(t *testing.T) {
	r := []int32{1, 2, 3}
	if _, res := PreferredChange(ptrPart(part(r, 1, 0, r)), view(r)); res != electionNotNeeded {
		t.Fatalf("leader already preferred: %v", res)
	}
	if _, res := PreferredChange(ptrPart(part(r, 2, 0, []int32{2, 3})), view(r)); res != preferredUnavailable {
		t.Fatalf("preferred out of the ISR: %v", res)
	}
	st, res := PreferredChange(ptrPart(part(r, 2, 5, r)), view(r))
	if res != electionDone || st.Leader != 1 || st.LeaderEpoch != 6 {
		t.Fatalf("election: %+v %v", st, res)
	}
}

func ptrPart(p metadata.Partition) *metadata.Partition { return &p }

func brokers(racks ...string) []metadata.Broker {
	out := make([]metadata.Broker, len(racks))
	for i, r := range racks {
		out[i] = metadata.Broker{ID: int32(i + 1)}
		if r != "" {
			out[i].Rack = &r
		}
	}
	return out
}

// TestAssign checks the placement rules: distinct replicas, leaders
// spread evenly, and with racks every partition on as many racks as it
// can be.
func TestAssign(t *testing.T) {
	for _, tc := range []struct {
		racks []string
		rf    int16
	}{
		{[]string{"", "", ""}, 3},
		{[]string{"", "", "", "", "", ""}, 3},
		{[]string{"a", "a", "b", "b", "c", "c"}, 3},
		{[]string{"a", "a", "a", "b"}, 2},
		{[]string{"a", "b"}, 2},
	} {
		t.Run(fmt.Sprint(tc.racks, tc.rf), func(t *testing.T) {
			bs := brokers(tc.racks...)
			rackOf := map[int32]string{}
			racks := map[string]bool{}
			for _, b := range bs {
				rackOf[b.ID] = tc.racks[b.ID-1]
				racks[tc.racks[b.ID-1]] = true
			}
			const n = 60
			a, err := Assign(bs, 0, n, tc.rf, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			leaders := map[int32]int{}
			for i, rs := range a {
				if len(rs) != int(tc.rf) {
					t.Fatalf("partition %d: %v", i, rs)
				}
				seen := map[int32]bool{}
				used := map[string]bool{}
				for _, r := range rs {
					if seen[r] {
						t.Fatalf("partition %d places broker %d twice: %v", i, r, rs)
					}
					seen[r] = true
					used[rackOf[r]] = true
				}
				if want := min(int(tc.rf), len(racks)); len(used) != want {
					t.Fatalf("partition %d %v spans %d racks, want %d", i, rs, len(used), want)
				}
				leaders[rs[0]]++
			}
			for _, b := range bs {
				if leaders[b.ID] != n/len(bs) {
					t.Fatalf("leaders per broker %v: want %d each", leaders, n/len(bs))
				}
			}
		})
	}
	if _, err := Assign(brokers("", ""), 0, 1, 3, nil); err == nil {
		t.Fatal("replication factor 3 on 2 brokers was placed")
	}
}
