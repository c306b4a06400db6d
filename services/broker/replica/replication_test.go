package replica

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/runnel-io/runnel/plugins/storage/memory"
	"github.com/runnel-io/runnel/services/broker/config"
	"github.com/runnel-io/runnel/services/broker/metadata"
)

// replicaPair is two brokers' managers hosting partition t-0 of two
// replicas, with a clock the test moves. The test plays the fetcher: it
// reads from one side and appends on the other.
type replicaPair struct {
	m   map[int32]*Manager
	now time.Time
}

func newReplicaPair(t *testing.T) *replicaPair {
	t.Helper()
	bc, err := config.NewBroker(map[string]string{"replica.lag.time.max.ms": "1000", "min.insync.replicas": "2"})
	if err != nil {
		t.Fatal(err)
	}
	rp := &replicaPair{m: map[int32]*Manager{}, now: time.UnixMilli(1_700_000_000_000)}
	for _, id := range []int32{1, 2} {
		b := memory.New()
		m := NewManager(Params{BrokerID: id, DataDir: t.TempDir(), Backend: b, Broker: bc, Now: func() time.Time { return rp.now }})
		t.Cleanup(func() { m.Close(); b.Close() })
		rp.m[id] = m
	}
	return rp
}

// state sets the partition's state on both brokers.
func (rp *replicaPair) state(t *testing.T, leader, epoch int32, isr []int32, version int32) {
	t.Helper()
	topics := []*metadata.Topic{{Name: "t", Partitions: []metadata.Partition{
		{Topic: "t", ID: 0, Replicas: []int32{1, 2}, Leader: leader, LeaderEpoch: epoch, ISR: isr, StateVersion: version},
	}}}
	for _, m := range rp.m {
		if err := m.Sync(context.Background(), topics); err != nil {
			t.Fatal(err)
		}
	}
}

func (rp *replicaPair) p(id int32) *Partition { return rp.m[id].Partition("t", 0) }

func (rp *replicaPair) produce(t *testing.T, leader int32, n int) AppendResult {
	t.Helper()
	b := testBatch(n, rp.now.UnixMilli(), []byte("v"))
	info, err := ValidateProduce(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rp.p(leader).Append(context.Background(), b, info, 1, rp.now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// readAll reads a partition's whole log.
func readAll(t *testing.T, p *Partition) []byte {
	t.Helper()
	var out []byte
	for off := p.LogStartOffset(); off < p.LogEndOffset(); {
		r, err := p.Read(context.Background(), off, math.MaxInt32, ToLogEnd)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Batches) == 0 {
			break
		}
		out = append(out, r.Batches...)
		off = r.NextOffset
	}
	return out
}

// fetch is one follower fetch: the leader records the follower's offset,
// and the follower appends what the leader has past it.
func (rp *replicaPair) fetch(t *testing.T, leader, follower int32) {
	t.Helper()
	lp, fp := rp.p(leader), rp.p(follower)
	if err := lp.FollowerFetch(follower, fp.FetchOffset(), rp.now); err != nil {
		t.Fatal(err)
	}
	r, err := lp.Read(context.Background(), fp.FetchOffset(), math.MaxInt32, ToLogEnd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fp.AppendReplicated(context.Background(), r.Batches, lp.HighWatermark(), lp.LogStartOffset()); err != nil {
		t.Fatal(err)
	}
}

// TestHighWatermarkFollowsTheISR: acks=all waits until the follower has
// fetched past the records, the high watermark is the smallest log end
// offset in the ISR, and the follower takes the leader's.
func TestHighWatermarkFollowsTheISR(t *testing.T) {
	rp := newReplicaPair(t)
	rp.state(t, 1, 0, []int32{1, 2}, 0)
	res := rp.produce(t, 1, 4)
	if res.LastOffset != 3 || rp.p(1).HighWatermark() != 0 {
		t.Fatalf("append %+v, high watermark %d: nothing is committed before the follower has it", res, rp.p(1).HighWatermark())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := rp.p(1).WaitReplicated(ctx, res.LastOffset, res.LeaderEpoch); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReplicated before replication: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- rp.p(1).WaitReplicated(context.Background(), res.LastOffset, res.LeaderEpoch) }()
	rp.fetch(t, 1, 2) // the follower gets the records
	if hw := rp.p(1).HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d after the follower fetched from 0", hw)
	}
	rp.fetch(t, 1, 2) // and says so with its next fetch
	if err := <-done; err != nil {
		t.Fatalf("WaitReplicated: %v", err)
	}
	if hw := rp.p(1).HighWatermark(); hw != 4 {
		t.Fatalf("leader high watermark %d, want 4", hw)
	}
	if got := rp.p(2); got.LogEndOffset() != 4 || got.HighWatermark() != 4 {
		t.Fatalf("follower log end %d high watermark %d, want 4 and 4", got.LogEndOffset(), got.HighWatermark())
	}
	if e := rp.p(2).EpochForOffset(3); e != 0 {
		t.Fatalf("follower epoch cache gives epoch %d for offset 3, want 0", e)
	}
}

// TestISRShrinksAndExpands: a follower that has not caught up within
// replica.lag.time.max.ms leaves the ISR; once it has caught up with the
// high watermark it joins again.
func TestISRShrinksAndExpands(t *testing.T) {
	rp := newReplicaPair(t)
	rp.state(t, 1, 0, []int32{1, 2}, 0)
	rp.produce(t, 1, 2)
	rp.fetch(t, 1, 2)
	rp.fetch(t, 1, 2)
	if _, change := rp.p(1).wantedISR(rp.now, time.Second); change {
		t.Fatal("a caught-up follower would leave the ISR")
	}
	rp.produce(t, 1, 2)
	rp.now = rp.now.Add(1500 * time.Millisecond)
	st, change := rp.p(1).wantedISR(rp.now, time.Second)
	if !change || !slices.Equal(st.ISR, []int32{1}) {
		t.Fatalf("after 1.5 s without catching up: ISR %v (change %v), want [1]", st.ISR, change)
	}
	// The ISR writer accepted the shrink: the leader alone commits.
	rp.state(t, 1, 0, []int32{1}, 1)
	if hw := rp.p(1).HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d with the leader alone in the ISR, want 4", hw)
	}
	rp.fetch(t, 1, 2)
	rp.fetch(t, 1, 2)
	st, change = rp.p(1).wantedISR(rp.now, time.Second)
	if !change || !slices.Equal(st.ISR, []int32{1, 2}) {
		t.Fatalf("after catching up: ISR %v (change %v), want [1 2]", st.ISR, change)
	}
}

// TestNotEnoughReplicasAfterAppend: records that reach the whole ISR when
// the ISR is below min.insync.replicas are reported as such.
func TestNotEnoughReplicasAfterAppend(t *testing.T) {
	rp := newReplicaPair(t)
	rp.state(t, 1, 0, []int32{1, 2}, 0)
	res := rp.produce(t, 1, 1)
	rp.state(t, 1, 0, []int32{1}, 1) // the follower left before it had them
	err := rp.p(1).WaitReplicated(context.Background(), res.LastOffset, res.LeaderEpoch)
	if !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
		t.Fatalf("WaitReplicated: %v, want ErrNotEnoughReplicasAfterAppend", err)
	}
	b := testBatch(1, rp.now.UnixMilli(), []byte("v"))
	info, _ := ValidateProduce(b, 1<<20)
	if _, err := rp.p(1).Append(context.Background(), b, info, -1, rp.now.UnixMilli()); !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all append with ISR [1]: %v, want ErrNotEnoughReplicas", err)
	}
	rp.state(t, 2, 1, []int32{2}, 2)
	if err := rp.p(1).WaitReplicated(context.Background(), res.LastOffset, res.LeaderEpoch); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("WaitReplicated after the leadership moved: %v, want ErrNotLeader", err)
	}
}

// TestDivergentSuffixIsTruncated: broker 1 leads at epoch 0 and writes
// records its follower never gets; broker 2 takes over at epoch 1 and
// writes its own. Following broker 2, broker 1 truncates at the offset
// where epoch 1 starts (the leader's answer for epoch 0), then copies the
// new leader's records: both logs end the same.
func TestDivergentSuffixIsTruncated(t *testing.T) {
	rp := newReplicaPair(t)
	rp.state(t, 1, 0, []int32{1, 2}, 0)
	rp.produce(t, 1, 3)
	rp.fetch(t, 1, 2)
	rp.fetch(t, 1, 2)
	rp.produce(t, 1, 2) // offsets 3-4: broker 1 only
	rp.state(t, 2, 1, []int32{2}, 1)
	rp.produce(t, 2, 4) // offsets 3-6 at epoch 1
	old := rp.p(1)
	if old.LogEndOffset() != 5 || old.LatestEpoch() != 0 {
		t.Fatalf("old leader: log end %d, latest epoch %d", old.LogEndOffset(), old.LatestEpoch())
	}
	epoch, end := rp.p(2).EndOffsetForEpoch(old.LatestEpoch())
	if epoch != 0 || end != 3 {
		t.Fatalf("the new leader ends epoch 0 at (%d, %d), want (0, 3)", epoch, end)
	}
	at := old.TruncationOffset(epoch, end)
	if at != 3 {
		t.Fatalf("truncation offset %d, want 3", at)
	}
	if err := old.TruncateTo(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	rp.fetch(t, 2, 1)
	rp.fetch(t, 2, 1)
	if old.LogEndOffset() != 7 || old.EpochForOffset(6) != 1 || old.EpochForOffset(2) != 0 {
		t.Fatalf("after catching up: log end %d, epochs %d@6 %d@2", old.LogEndOffset(), old.EpochForOffset(6), old.EpochForOffset(2))
	}
	if a, b := readAll(t, rp.p(2)), readAll(t, old); string(a) != string(b) {
		t.Fatalf("the two logs differ after truncation and catch-up: %d and %d bytes", len(a), len(b))
	}
	// Without an epoch in common the follower keeps only what is known
	// committed: its high watermark.
	if got := old.TruncationOffset(-1, -1); got != old.HighWatermark() {
		t.Fatalf("truncation offset without a common epoch %d, want the high watermark %d", got, old.HighWatermark())
	}
}

// TestReplicationGauges: a leader reports how many partitions it leads,
// how many lack a full ISR and how many are below min.insync.replicas.
func TestReplicationGauges(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	bc, _ := config.NewBroker(map[string]string{"min.insync.replicas": "2"})
	b := memory.New()
	m := NewManager(Params{BrokerID: 1, DataDir: t.TempDir(), Backend: b, Broker: bc, MeterProvider: mp})
	t.Cleanup(func() { m.Close(); b.Close() })
	topics := []*metadata.Topic{{Name: "t", Partitions: []metadata.Partition{
		{Topic: "t", ID: 0, Replicas: []int32{1, 2}, Leader: 1, ISR: []int32{1, 2}},
		{Topic: "t", ID: 1, Replicas: []int32{1, 2}, Leader: 1, ISR: []int32{1}},
		{Topic: "t", ID: 2, Replicas: []int32{2, 1}, Leader: 2, ISR: []int32{2}},
	}}}
	if err := m.Sync(context.Background(), topics); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if g, ok := mt.Data.(metricdata.Gauge[int64]); ok && len(g.DataPoints) == 1 {
				got[mt.Name] = g.DataPoints[0].Value
			}
		}
	}
	want := map[string]int64{"runnel.replica.leader_partitions": 2, "runnel.replica.under_replicated_partitions": 1,
		"runnel.replica.under_min_isr_partitions": 1}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
