package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

func startStore(t *testing.T, connect string, id int32) *Store {
	t.Helper()
	s, err := New(Config{Connect: connect, SessionTimeout: 4 * time.Second, Self: Broker{ID: id, Host: "127.0.0.1", Port: 9000 + id},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStoreTopicsAndWatches creates, alters, grows and deletes a topic
// through one store and watches a second store (another broker) follow;
// repeated changes do not pile up watches.
func TestStoreTopicsAndWatches(t *testing.T) {
	coord := brokertest.Coordinator(t)
	ctx := context.Background()
	a := startStore(t, coord.Addr+"/store", 1)
	b := startStore(t, coord.Addr+"/store", 2)
	if !a.IsController() || b.IsController() || b.ControllerID() != 1 {
		t.Fatalf("controller: a %d, b %d", a.ControllerID(), b.ControllerID())
	}
	if a.ClusterID() == "" || a.ClusterID() != b.ClusterID() {
		t.Fatalf("cluster ids %q %q", a.ClusterID(), b.ClusterID())
	}
	if err := a.CreateTopic(ctx, Spec{Name: "t", Assignment: [][]int32{{1, 2}, {2, 1}}, Config: map[string]string{"retention.ms": "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTopic(ctx, Spec{Name: "t", Assignment: [][]int32{{1}}}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second create: %v", err)
	}
	topic, ok := a.Topic("t")
	if !ok || len(topic.Partitions) != 2 || topic.Partitions[1].Leader != 2 || len(topic.Partitions[1].ISR) != 2 {
		t.Fatalf("created topic: %+v", topic)
	}
	waitUntil(t, "b sees the topic", func() bool { tp, ok := b.Topic("t"); return ok && tp.Config["retention.ms"] == "1" })
	before := a.pendingWatches()
	for i := 0; i < 20; i++ {
		if err := a.SetTopicConfig(ctx, "t", map[string]string{"retention.ms": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "b sees the last config", func() bool { tp, _ := b.Topic("t"); return tp.Config["retention.ms"] == "19" })
	if after := a.pendingWatches(); after > before {
		t.Fatalf("pending watches grew from %d to %d over 20 config changes", before, after)
	}
	if err := a.AddPartitions(ctx, "t", [][]int32{{1, 2}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b sees partition 2 with a leader", func() bool {
		tp, _ := b.Topic("t")
		return len(tp.Partitions) == 3 && tp.Partitions[2].Leader == 1
	})
	// Broker 1 leaves: the controller office moves to 2 (package
	// controller elects the new leaders).
	a.Close()
	waitUntil(t, "b becomes controller", b.IsController)
	waitUntil(t, "b sees broker 1 gone", func() bool { return len(b.Brokers()) == 1 })
	if err := b.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Topic("t"); ok {
		t.Fatal("topic still cached after deletion")
	}
	if err := b.DeleteTopic(ctx, "t"); !errors.Is(err, ErrNoTopic) {
		t.Fatalf("second delete: %v", err)
	}
	id1, _ := b.NextProducerID(ctx)
	id2, _ := b.NextProducerID(ctx)
	c := startStore(t, coord.Addr+"/store", 3)
	id3, err := c.NextProducerID(ctx)
	if err != nil || id2 != id1+1 || id3 < id1+producerIDBlockSize {
		t.Fatalf("producer ids %d %d %d (%v): blocks must not overlap", id1, id2, id3, err)
	}
}

func (s *Store) pendingWatches() int {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return len(s.watches)
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestControllerWritesAreFenced checks Kafka 2.x's fencing: once another
// broker has become controller (and bumped /controller_epoch), a former
// controller that still believes in its office cannot write partition
// states; conditional state versions turn away writes computed from a
// stale state.
func TestControllerWritesAreFenced(t *testing.T) {
	coord := brokertest.Coordinator(t)
	ctx := context.Background()
	a := startStore(t, coord.Addr+"/fence", 1)
	b := startStore(t, coord.Addr+"/fence", 2)
	if err := a.CreateTopic(ctx, Spec{Name: "t", Assignment: [][]int32{{1, 2}}}); err != nil {
		t.Fatal(err)
	}
	p := mustTopic(t, a, "t").Partitions[0]
	change := func(leader, epoch int32, version int32) []TopicChange {
		return []TopicChange{{Topic: "t", States: []StateChange{{Partition: 0, Leader: leader, LeaderEpoch: epoch, ISR: []int32{1, 2}, Version: version}}}}
	}
	if err := a.WriteAsController(ctx, change(2, p.LeaderEpoch+1, p.StateVersion)); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteAsController(ctx, change(1, p.LeaderEpoch+2, p.StateVersion)); !errors.Is(err, ErrConflict) {
		t.Fatalf("write from a stale state version: %v, want ErrConflict", err)
	}
	if err := b.WriteAsController(ctx, change(1, p.LeaderEpoch+2, p.StateVersion+1)); !errors.Is(err, ErrNotController) {
		t.Fatalf("write by a non-controller: %v, want ErrNotController", err)
	}
	// a stops hearing of changes (its watches and loops end, its session
	// stays), as a controller frozen or cut off from its events would;
	// the office falls vacant and b, alone to campaign, takes it. a still
	// believes it holds it.
	a.cancel()
	if err := b.conn.Delete(b.p("/controller"), -1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b becomes controller", b.IsController)
	if !a.IsController() {
		t.Fatal("a learnt of the election; the zombie case needs it not to")
	}
	cur := mustTopic(t, b, "t").Partitions[0]
	if err := a.WriteAsController(ctx, change(1, cur.LeaderEpoch+1, cur.StateVersion)); !errors.Is(err, ErrNotController) {
		t.Fatalf("write by a zombie controller: %v, want ErrNotController", err)
	}
	if got := mustTopic(t, b, "t").Partitions[0]; got.Leader != 2 || got.StateVersion != cur.StateVersion {
		t.Fatalf("the zombie's write landed: %+v", got)
	}
	if a.IsController() {
		t.Fatal("a still believes it is controller after its fenced write failed")
	}
	// A leader's own ISR change is conditional on the version it holds.
	if _, err := b.UpdateISR(ctx, "t", 0, 2, cur.LeaderEpoch, []int32{2}, cur.StateVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdateISR(ctx, "t", 0, 2, cur.LeaderEpoch, []int32{2, 1}, cur.StateVersion); !errors.Is(err, ErrConflict) {
		t.Fatalf("ISR change from a stale version: %v, want ErrConflict", err)
	}
	if got := mustTopic(t, b, "t").Partitions[0].ISR; !slices.Equal(got, []int32{2}) {
		t.Fatalf("ISR after the leader's change %v, want [2]", got)
	}
}

func mustTopic(t *testing.T, s *Store, name string) *Topic {
	t.Helper()
	tp, ok := s.Topic(name)
	if !ok {
		t.Fatalf("no topic %s", name)
	}
	return tp
}

// TestControllerCreatesStatesOfATopicItDidNotCreate: a topic written by
// another broker has no partition states; the controller's first write
// creates them, and their parent znodes, in one multi.
func TestControllerCreatesStatesOfATopicItDidNotCreate(t *testing.T) {
	coord := brokertest.Coordinator(t)
	ctx := context.Background()
	a := startStore(t, coord.Addr+"/firststates", 1)
	b := startStore(t, coord.Addr+"/firststates", 2)
	if !a.IsController() {
		t.Fatal("a is not the controller")
	}
	if err := b.CreateTopic(ctx, Spec{Name: "t", Assignment: [][]int32{{1, 2}, {2, 1}, {1, 2}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a sees the topic", func() bool { _, ok := a.Topic("t"); return ok })
	tc := TopicChange{Topic: "t"}
	for i, p := range mustTopic(t, a, "t").Partitions {
		if p.StateVersion != -1 {
			t.Fatalf("partition %d has a state already: %+v", i, p)
		}
		tc.States = append(tc.States, StateChange{Partition: int32(i), Leader: p.Replicas[0], ISR: p.Replicas, Version: -1})
	}
	if err := a.WriteAsController(ctx, []TopicChange{tc}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b sees every leader", func() bool {
		tp := mustTopic(t, b, "t")
		for _, p := range tp.Partitions {
			if p.Leader < 0 || p.StateVersion < 0 {
				return false
			}
		}
		return true
	})
}
