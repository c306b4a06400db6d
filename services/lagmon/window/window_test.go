package window

import (
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"
)

func offsets(r *Ring) []int64 {
	var out []int64
	for _, c := range r.Entries() {
		out = append(out, c.Offset)
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRingAppendMeasuresLag(t *testing.T) {
	r := NewRing(3)
	for i, off := range []int64{10, 20, 30, 40} {
		if !r.Add(Commit{Offset: off, Order: int64(i), Timestamp: int64(i) * 1000}, 35, 0) {
			t.Fatalf("commit %d not appended", i)
		}
	}
	if got := offsets(r); !equal(got, []int64{20, 30, 40}) {
		t.Fatalf("window %v, want the newest three", got)
	}
	last, _ := r.Last()
	if !last.HasLag || last.Lag != 0 {
		t.Fatalf("a commit ahead of the log end has lag %d (known %v), want 0", last.Lag, last.HasLag)
	}
	if e := r.Entries()[0]; !e.HasLag || e.Lag != 15 {
		t.Fatalf("lag %d, want 35-20", e.Lag)
	}
}

func TestRingBackfillAndDrops(t *testing.T) {
	r := NewRing(4)
	r.Add(Commit{Offset: 100, Order: 10, Timestamp: 10_000}, 200, 0)
	r.Add(Commit{Offset: 300, Order: 30, Timestamp: 30_000}, 400, 0)
	// A late commit is inserted in order, without a lag.
	if r.Add(Commit{Offset: 200, Order: 20, Timestamp: 20_000}, 400, 0) {
		t.Fatal("a back-filled commit reported as appended")
	}
	if got := offsets(r); !equal(got, []int64{100, 200, 300}) {
		t.Fatalf("window %v", got)
	}
	if r.Entries()[1].HasLag {
		t.Fatal("a back-filled commit has a lag")
	}
	// The same order twice is stored once.
	r.Add(Commit{Offset: 999, Order: 20, Timestamp: 20_000}, 400, 0)
	if got := offsets(r); !equal(got, []int64{100, 200, 300}) {
		t.Fatalf("duplicate order changed the window: %v", got)
	}
	// Older than everything while not full: prepended.
	r.Add(Commit{Offset: 50, Order: 5, Timestamp: 5_000}, 400, 0)
	if got := offsets(r); !equal(got, []int64{50, 100, 200, 300}) {
		t.Fatalf("window %v", got)
	}
	// Older than everything in a full window: dropped.
	r.Add(Commit{Offset: 1, Order: 1, Timestamp: 1_000}, 400, 0)
	if got := offsets(r); !equal(got, []int64{50, 100, 200, 300}) {
		t.Fatalf("window %v", got)
	}
	// Between the oldest two of a full window: the oldest leaves.
	r.Add(Commit{Offset: 70, Order: 7, Timestamp: 7_000}, 400, 0)
	if got := offsets(r); !equal(got, []int64{70, 100, 200, 300}) {
		t.Fatalf("window %v", got)
	}
}

func TestRingMinDistance(t *testing.T) {
	r := NewRing(5)
	r.Add(Commit{Offset: 1, Order: 1, Timestamp: 1_000}, 10, 1000)
	r.Add(Commit{Offset: 2, Order: 2, Timestamp: 1_500}, 10, 1000) // merged into the first
	r.Add(Commit{Offset: 3, Order: 3, Timestamp: 1_900}, 10, 1000) // merged again
	r.Add(Commit{Offset: 4, Order: 4, Timestamp: 2_100}, 10, 1000) // 1.1s after the kept timestamp
	if got := offsets(r); !equal(got, []int64{3, 4}) {
		t.Fatalf("window %v, want [3 4]", got)
	}
	if r.Entries()[0].Timestamp != 1_000 {
		t.Fatalf("merged commit has timestamp %d, want the first one's", r.Entries()[0].Timestamp)
	}
}

func TestLogEndRing(t *testing.T) {
	r := NewLogEndRing(3)
	if _, ok := r.Latest(); ok {
		t.Fatal("empty ring has a latest entry")
	}
	for i := int64(1); i <= 4; i++ {
		r.Add(LogEnd{Offset: i * 10, Timestamp: i})
	}
	got := r.AppendTo(nil)
	if len(got) != 3 || got[0].Offset != 20 || got[2].Offset != 40 {
		t.Fatalf("ring %v", got)
	}
	if l, _ := r.Latest(); l.Offset != 40 {
		t.Fatalf("latest %v", l)
	}
}

func TestStore(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := New(Config{Intervals: 3, ExpireGroup: time.Hour, Deny: regexp.MustCompile("^console-"), Now: func() time.Time { return now }}, "local")
	ms := now.UnixMilli()

	// No log-end offset yet: Burrow drops the commit.
	s.AddCommit("local", "g", "t", 0, 5, 1, ms)
	if _, err := s.Group("local", "g"); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("commit without a log end stored: %v", err)
	}
	s.AddLogEnd("local", "t", 0, 2, 100, ms)
	s.AddLogEnd("local", "t", 1, 2, 50, ms)
	s.AddCommit("local", "g", "t", 0, 40, 2, ms)
	s.AddCommit("local", "console-123", "t", 0, 40, 3, ms)
	s.AddCommit("local", "g", "t", 0, 40, 4, ms-2*time.Hour.Milliseconds()) // too old
	s.SetOwner("local", "g", "t", 0, "/10.0.0.1", "client-1")

	groups, _ := s.Groups("local")
	if len(groups) != 1 || groups[0] != "g" {
		t.Fatalf("groups %v: the deny list must drop console-*", groups)
	}
	snap, err := s.Group("local", "g")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Partitions) != 2 {
		t.Fatalf("%d partitions, want both of the topic", len(snap.Partitions))
	}
	p0, p1 := snap.Partitions[0], snap.Partitions[1]
	if !p0.HasWindow || len(p0.Commits) != 1 || p0.CurrentLag != 60 || p0.Owner != "/10.0.0.1" || p0.ClientID != "client-1" {
		t.Fatalf("partition 0: %+v", p0)
	}
	if p1.HasWindow || p1.CurrentLag != 0 {
		t.Fatalf("partition 1 was never committed: %+v", p1)
	}
	s.ClearOwners("local", "g")
	if snap, _ = s.Group("local", "g"); snap.Partitions[0].Owner != "" {
		t.Fatal("owners not cleared")
	}
	if offs, _ := s.TopicOffsets("local", "t"); len(offs) != 2 || offs[0] != 100 || offs[1] != 50 {
		t.Fatalf("topic offsets %v", offs)
	}
	if gs, _ := s.GroupsOfTopic("local", "t"); len(gs) != 1 {
		t.Fatalf("groups of topic %v", gs)
	}

	// Expiry: an hour and a bit later the group is gone.
	now = now.Add(61 * time.Minute)
	if _, err := s.Group("local", "g"); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("expired group still served: %v", err)
	}
	if _, err := s.Group("nope", "g"); !errors.Is(err, ErrClusterNotFound) {
		t.Fatalf("unknown cluster: %v", err)
	}
	s.ResetGroups("local")
	if gs, _ := s.Groups("local"); len(gs) != 0 {
		t.Fatalf("groups after a reset: %v", gs)
	}
	s.DeleteTopic("local", "t")
	if _, err := s.TopicOffsets("local", "t"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("deleted topic: %v", err)
	}
}

func TestCommitJSON(t *testing.T) {
	b, _ := json.Marshal([]Commit{{Offset: 5, Timestamp: 7, Lag: 3, HasLag: true}, {Offset: 6, Timestamp: 8}})
	if string(b) != `[{"offset":5,"timestamp":7,"lag":3},{"offset":6,"timestamp":8,"lag":null}]` {
		t.Fatalf("json %s", b)
	}
	var back []Commit
	if err := json.Unmarshal(b, &back); err != nil || !back[0].HasLag || back[1].HasLag || back[0].Lag != 3 {
		t.Fatalf("round trip %+v %v", back, err)
	}
}

// BenchmarkAddCommit stores commits into full windows of 10 (the hot path of
// a busy __consumer_offsets reader).
func BenchmarkAddCommit(b *testing.B) {
	s := New(Config{Intervals: 10, Now: func() time.Time { return time.UnixMilli(1 << 40) }}, "c")
	for p := int32(0); p < 100; p++ {
		s.AddLogEnd("c", "t", p, 100, 1<<30, 1<<40)
	}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		i++
		s.AddCommit("c", "g", "t", int32(i%100), i, i, 1<<40)
	}
}
