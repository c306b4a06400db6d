package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
	"github.com/runnel-io/runnel/services/broker/replica"
)

// eachCoordinator runs f once with Runnel's coordinator and once with
// Apache ZooKeeper.
func eachCoordinator(t *testing.T, f func(t *testing.T, coord string)) {
	for _, coord := range brokertest.Coordinators {
		t.Run(coord, func(t *testing.T) { f(t, coord) })
	}
}

// loader produces numbered records to each partition of a topic, one
// goroutine per partition with a bounded number in flight, acks=all and
// idempotence (franz-go's defaults), and remembers which were
// acknowledged. Record i of partition p has value "p-i".
type loader struct {
	t      *testing.T
	topic  string
	client *kgo.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	acked  map[int32][]int
	errors []error
}

func startLoader(t *testing.T, c *brokertest.Cluster, topic string, partitions int32) *loader {
	cl := c.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProduceRequestTimeout(5*time.Second), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithCancel(context.Background())
	l := &loader{t: t, topic: topic, client: cl, cancel: cancel, acked: map[int32][]int{}}
	for p := range partitions {
		l.wg.Add(1)
		go l.run(ctx, p)
	}
	return l
}

func (l *loader) run(ctx context.Context, p int32) {
	defer l.wg.Done()
	sem := make(chan struct{}, 64)
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := i
		r := &kgo.Record{Topic: l.topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, n)}
		l.client.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			<-sem
			l.mu.Lock()
			defer l.mu.Unlock()
			if err != nil {
				l.errors = append(l.errors, fmt.Errorf("partition %d record %d: %w", p, n, err))
				return
			}
			l.acked[p] = append(l.acked[p], n)
		})
		time.Sleep(time.Millisecond) // a steady load, not a flood
	}
}

// count is how many records were acknowledged so far.
func (l *loader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.acked {
		n += len(a)
	}
	return n
}

// waitProgress waits until n more records than now were acknowledged.
func (l *loader) waitProgress(n int, d time.Duration) {
	l.t.Helper()
	target := l.count() + n
	deadline := time.Now().Add(d)
	for l.count() < target {
		if time.Now().After(deadline) {
			l.t.Fatalf("the load stalled: %d acknowledged, wanted %d; errors %v", l.count(), target, l.errs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *loader) errs() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errors)
}

// stop ends the load and waits for every record in flight.
func (l *loader) stop() {
	l.t.Helper()
	l.cancel()
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.client.Flush(ctx); err != nil {
		l.t.Fatalf("flushing the load: %v", err)
	}
}

// consumeAll reads every partition of topic from the start to its high
// watermark and returns the values, by partition.
func consumeAll(t *testing.T, c *brokertest.Cluster, topic string) map[int32][]string {
	t.Helper()
	ctx := brokertest.Context(t, time.Minute)
	adm := c.Admin()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s-%d: %v", topic, o.Partition, o.Err)
		}
		want[o.Partition] = o.Offset
		offsets[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl := c.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxWait(200*time.Millisecond))
	out := map[int32][]string{}
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: reached %v of %v", topic, next, want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] {
				out[r.Partition] = append(out[r.Partition], string(r.Value))
			}
			next[r.Partition] = r.Offset + 1
		})
	}
	return out
}

// checkNothingLost asserts that each partition holds 0..n-1 in order,
// once each, and that every acknowledged record is among them.
func checkNothingLost(t *testing.T, got map[int32][]string, l *loader) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, acked := range l.acked {
		values := got[p]
		for i, v := range values {
			if want := strconv.Itoa(int(p)) + "-" + strconv.Itoa(i); v != want {
				t.Fatalf("partition %d offset %d holds %q, want %q: a gap, a duplicate or a reordering", p, i, v, want)
			}
		}
		for _, n := range acked {
			if n >= len(values) {
				t.Fatalf("partition %d lost acknowledged record %d: the log holds %d records", p, n, len(values))
			}
		}
		t.Logf("partition %d: %d records, %d acknowledged", p, len(values), len(acked))
	}
}

// leaderOf returns the current leader of a partition, waiting for one.
func leaderOf(t *testing.T, c *brokertest.Cluster, topic string, p int32) int32 {
	t.Helper()
	td := c.WaitFor(30*time.Second, "a leader", func(td kadm.TopicDetail) bool { return brokertest.Leader(td, p) > 0 }, topic)
	return brokertest.Leader(td, p)
}

// fullISR waits until every partition of topic has rf replicas in sync.
func fullISR(t *testing.T, c *brokertest.Cluster, topic string, rf int) kadm.TopicDetail {
	t.Helper()
	return c.WaitFor(60*time.Second, "a full ISR", func(td kadm.TopicDetail) bool {
		for _, p := range td.Partitions {
			if p.Leader < 0 || len(p.ISR) != rf {
				return false
			}
		}
		return len(td.Partitions) > 0
	}, topic)
}

func ptr(s string) *string { return &s }

// produceDirect sends one record to partition 0 of topic in a raw Produce
// request to the broker at addr and returns the partition's error code.
// (kgo sets a raw request's acks from the client's configuration.)
func produceDirect(t *testing.T, ctx context.Context, addr, topic string, acks int16) int16 {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(addr)}
	switch acks {
	case -1:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = replica.BuildBatch(time.Now().UnixMilli(), []replica.KeyValue{{Value: []byte("direct")}})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// createAssigned creates a topic with an explicit replica assignment.
func createAssigned(t *testing.T, c *brokertest.Cluster, topic string, assignment [][]int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, r := range assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), r
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(brokertest.Context(t, 20*time.Second), c.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// waitNoDir waits until a directory is gone.
func waitNoDir(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there", dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reassignments lists every reassignment under way
// (ListPartitionReassignments with a null topic list).
func reassignments(t *testing.T, c *brokertest.Cluster) []kmsg.ListPartitionReassignmentsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	resp, err := req.RequestWith(brokertest.Context(t, 10*time.Second), c.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("list reassignments: %v", err)
	}
	var out []kmsg.ListPartitionReassignmentsResponseTopicPartition
	for _, tp := range resp.Topics {
		out = append(out, tp.Partitions...)
	}
	return out
}

// tailer consumes a topic from the start while the test runs, keeping
// what it read by partition.
type tailer struct {
	mu     sync.Mutex
	values map[int32][]string
	cancel context.CancelFunc
	done   chan struct{}
}

func startTailer(t *testing.T, c *brokertest.Cluster, topic string, partitions int32) *tailer {
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl := c.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	tl := &tailer{values: map[int32][]string{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			tl.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { tl.values[r.Partition] = append(tl.values[r.Partition], string(r.Value)) })
			tl.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-tl.done })
	return tl
}

// matches waits until the tailer has read as much as want holds of each
// partition, then checks it read exactly that: no record twice, none
// missed, none that is not in the log.
func (tl *tailer) matches(t *testing.T, want map[int32][]string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tl.mu.Lock()
		caught := true
		for p, w := range want {
			if len(tl.values[p]) < len(w) {
				caught = false
			}
		}
		tl.mu.Unlock()
		if caught {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the live consumer did not catch up with the log")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tl.cancel()
	<-tl.done
	for p, w := range want {
		if got := tl.values[p]; !slices.Equal(got, w) {
			n := 0
			for n < len(got) && n < len(w) && got[n] == w[n] {
				n++
			}
			t.Fatalf("partition %d: the live consumer read %d records, the log holds %d; they part at record %d", p, len(got), len(w), n)
		}
	}
}
