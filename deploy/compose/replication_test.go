// The tests of this file need brokers that replicate: followers fetching
// from leaders, the ISR, acks=all waiting for it, leader failover and
// truncation.

package compose

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/runnel-io/runnel/internal/await"
)

// acked is a record the cluster acknowledged with acks=all.
type acked struct {
	partition int32
	offset    int64
	value     string
}

// ackLog collects acknowledged records from a producer's promises.
type ackLog struct {
	mu      sync.Mutex
	records []acked
	failed  int
}

func (l *ackLog) promise(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		return
	}
	l.records = append(l.records, acked{r.Partition, r.Offset, string(r.Value)})
}

func (l *ackLog) snapshot() []acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

// bootstrapAll names all three brokers.
func (s *stack) bootstrapAll() string {
	return strings.Join([]string{s.bootstrap(1), s.bootstrap(2), s.bootstrap(3)}, ",")
}

// producer is an idempotent acks=all client of the stack from the host.
func (s *stack) producer(opts ...kgo.Opt) *kgo.Client {
	s.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(strings.Split(s.bootstrapAll(), ",")...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(45 * time.Second),
	}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(cl.Close)
	return cl
}

// admin returns a kadm client of the stack from the host.
func (s *stack) admin() *kadm.Client {
	s.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(s.bootstrapAll(), ",")...))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// partitionState is one partition's leader, epoch and ISR as the cluster
// reports them.
func (s *stack) partitionState(adm *kadm.Client, topic string, p int32) (kadm.PartitionDetail, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return kadm.PartitionDetail{}, err
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return kadm.PartitionDetail{}, fmt.Errorf("topic %s: %v", topic, td.Err)
	}
	pd, ok := td.Partitions[p]
	if !ok {
		return kadm.PartitionDetail{}, fmt.Errorf("partition %s/%d missing", topic, p)
	}
	if pd.Err != nil {
		return pd, pd.Err
	}
	return pd, nil
}

// createTopic makes topic with the stack's defaults (3 replicas,
// min.insync.replicas 2) and waits until every partition has a leader and
// a full ISR.
func (s *stack) createTopic(adm *kadm.Client, topic string, partitions int32) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, -1, nil, topic); err != nil {
		s.t.Fatalf("create %s: %v", topic, err)
	}
	for p := range partitions {
		await.Until(s.t, 30*time.Second, fmt.Sprintf("%s/%d has a leader and three in sync", topic, p), func() error {
			pd, err := s.partitionState(adm, topic, p)
			if err != nil {
				return err
			}
			if pd.Leader < 0 || len(pd.ISR) != 3 {
				return fmt.Errorf("leader %d, ISR %v", pd.Leader, pd.ISR)
			}
			return nil
		})
	}
}

// consumeAll reads every partition of topic from the beginning up to the
// end offsets of the moment, from the host.
func (s *stack) consumeAll(adm *kadm.Client, topic string) map[int32][]acked {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		s.t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			s.t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		want[o.Partition] = o.Offset
	})
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(s.bootstrapAll(), ",")...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		s.t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]acked{}
	done := func() bool {
		for p, end := range want {
			n := len(out[p])
			if end > 0 && (n == 0 || out[p][n-1].offset < end-1) {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			s.t.Fatalf("consuming %s: only %v of the end offsets %v", topic, counts(out), want)
		}
		fs.EachError(func(t string, p int32, err error) { s.t.Logf("fetch %s/%d: %v", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], acked{r.Partition, r.Offset, string(r.Value)})
		})
	}
	return out
}

func counts(m map[int32][]acked) map[int32]int {
	c := map[int32]int{}
	for p, rs := range m {
		c[p] = len(rs)
	}
	return c
}

// checkNothingLost checks that every acknowledged record is in the log at
// its offset, each partition once, in order and without gaps.
func checkNothingLost(t *testing.T, log map[int32][]acked, acks []acked) {
	t.Helper()
	byOffset := map[int32]map[int64]string{}
	for p, rs := range log {
		byOffset[p] = map[int64]string{}
		for i, r := range rs {
			if i > 0 && r.offset != rs[i-1].offset+1 {
				t.Errorf("partition %d: offset %d follows %d (a gap)", p, r.offset, rs[i-1].offset)
			}
			byOffset[p][r.offset] = r.value
		}
	}
	lost := 0
	for _, a := range acks {
		if got, ok := byOffset[a.partition][a.offset]; !ok || got != a.value {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged %q at %d/%d: the log has %q (present %v)", a.value, a.partition, a.offset, got, ok)
			}
		}
	}
	seen := map[string]int{}
	for _, rs := range log {
		for _, r := range rs {
			seen[r.value]++
		}
	}
	for v, n := range seen {
		if n > 1 {
			t.Errorf("%q is in the log %d times", v, n)
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records lost", lost, len(acks))
	}
}

// produceFor sends records to topic from the host until stop is closed,
// one at a time per partition in flight, recording what was acknowledged.
func produceFor(cl *kgo.Client, topic string, log *ackLog, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ; i++ {
		select {
		case <-stop:
			cl.Flush(context.Background())
			return
		default:
		}
		r := &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i % 16)), Value: []byte(fmt.Sprintf("v-%06d", i))}
		cl.Produce(context.Background(), r, log.promise)
		if i%64 == 63 {
			cl.Flush(context.Background())
		}
	}
}

// brokerOf returns the service name of broker id.
func brokerOf(id int32) string { return fmt.Sprintf("broker-%d", id) }

// TestComposeBrokerLoss produces with acks=all while the leader of a
// partition loses its container: leadership moves to a broker of the ISR,
// producing goes on, the old leader comes back and rejoins the ISR, and
// every acknowledged record can be consumed, once, in order, without gaps.
func TestComposeBrokerLoss(t *testing.T) {
	s := startStack(t)
	adm := s.admin()
	const topic = "chaos"
	s.createTopic(adm, topic, 3)

	var log ackLog
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go produceFor(s.producer(), topic, &log, stop, &wg)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	await.Until(t, 30*time.Second, "records acknowledged before the kill", func() error {
		if n := len(log.snapshot()); n < 500 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})

	before, err := s.partitionState(adm, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	victim := before.Leader
	t.Logf("killing %s, leader of %s/0 at epoch %d", brokerOf(victim), topic, before.LeaderEpoch)
	s.kill(brokerOf(victim))

	await.Until(t, 60*time.Second, "a new leader of "+topic+"/0 from the ISR", func() error {
		pd, err := s.partitionState(adm, topic, 0)
		if err != nil {
			return err
		}
		if pd.Leader == victim || pd.Leader < 0 || !slices.Contains(before.ISR, pd.Leader) || pd.LeaderEpoch <= before.LeaderEpoch {
			return fmt.Errorf("leader %d epoch %d ISR %v", pd.Leader, pd.LeaderEpoch, pd.ISR)
		}
		if slices.Contains(pd.ISR, victim) {
			return fmt.Errorf("ISR %v still holds the killed broker", pd.ISR)
		}
		return nil
	})
	n := len(log.snapshot())
	await.Until(t, 60*time.Second, "acks=all goes on with two brokers", func() error {
		if m := len(log.snapshot()); m < n+500 {
			return fmt.Errorf("%d more so far", m-n)
		}
		return nil
	})

	s.start(brokerOf(victim))
	await.Until(t, 90*time.Second, brokerOf(victim)+" back in every ISR", func() error {
		for p := range int32(3) {
			pd, err := s.partitionState(adm, topic, p)
			if err != nil {
				return err
			}
			if !slices.Contains(pd.ISR, victim) {
				return fmt.Errorf("%s/%d ISR %v", topic, p, pd.ISR)
			}
		}
		return nil
	})
	close(stop)
	wg.Wait()

	acks := log.snapshot()
	checkNothingLost(t, s.consumeAll(adm, topic), acks)
	t.Logf("%d acknowledged records, %d sends failed during the failover, none lost", len(acks), log.failed)
}

// netnsDialer dials target from inside the network namespace of process
// pid (a container's), whatever address the client asks for: the test's
// way to talk to a broker that is cut off from every network.
func netnsDialer(pid int, target string) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			// The thread changes namespace and is never unlocked: Go
			// ends it with this goroutine instead of reusing it.
			runtime.LockOSThread()
			fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer unix.Close(fd)
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				ch <- result{err: fmt.Errorf("setns: %w", err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", target)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// TestComposeBrokerPartition cuts a partition's leader off the network
// with docker network disconnect: the cut-off leader no longer
// acknowledges acks=all, a broker of the ISR takes over, the old leader
// truncates what it alone wrote once it is reconnected, and nothing
// acknowledged is lost.
func TestComposeBrokerPartition(t *testing.T) {
	s := startStack(t)
	adm := s.admin()
	const topic = "cut"
	s.createTopic(adm, topic, 1)

	var log ackLog
	cl := s.producer()
	for i := range 100 {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("before-%03d", i))}
		res := cl.ProduceSync(context.Background(), r)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce before the cut: %v", err)
		}
		log.promise(res[0].Record, nil)
	}
	before, err := s.partitionState(adm, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := before.Leader
	svc := brokerOf(old)
	network := s.docker("inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", s.ids[svc])
	pid, err := strconv.Atoi(s.docker("inspect", "--format", "{{.State.Pid}}", s.ids[svc]))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cutting %s (leader of %s/0 at epoch %d) off %s", svc, topic, before.LeaderEpoch, network)
	s.docker("network", "disconnect", network, s.ids[svc])
	reconnected := false
	defer func() {
		if !reconnected {
			_, _, _ = s.try("", "docker", "network", "connect", network, s.ids[svc])
		}
	}()

	// A client inside the cut-off broker's namespace: whatever broker it
	// asks for, it reaches the cut-off one.
	inside, err := kgo.NewClient(
		kgo.SeedBrokers("127.0.0.1:9092"),
		kgo.Dialer(netnsDialer(pid, "127.0.0.1:9092")),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.ProduceRequestTimeout(10*time.Second),
		kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.RecordRetries(2),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	res := inside.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("divergent")})
	cancel()
	if err := res.FirstErr(); err == nil {
		t.Fatalf("the cut-off leader acknowledged acks=all at offset %d", res[0].Record.Offset)
	} else {
		t.Logf("the cut-off leader refused acks=all: %v", err)
	}
	inside.Close()

	// The others elect a leader from the ISR and go on.
	await.Until(t, 60*time.Second, "a new leader of "+topic+"/0", func() error {
		pd, err := s.partitionState(adm, topic, 0)
		if err != nil {
			return err
		}
		if pd.Leader == old || pd.Leader < 0 || pd.LeaderEpoch <= before.LeaderEpoch {
			return fmt.Errorf("leader %d epoch %d ISR %v", pd.Leader, pd.LeaderEpoch, pd.ISR)
		}
		return nil
	})
	for i := range 100 {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("during-%03d", i))}
		res := cl.ProduceSync(context.Background(), r)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce to the new leader: %v", err)
		}
		log.promise(res[0].Record, nil)
	}

	// Back on the network, the old leader follows, truncates and rejoins.
	s.docker("network", "connect", network, s.ids[svc])
	reconnected = true
	s.waitHealthy(svc)
	await.Until(t, 90*time.Second, svc+" back in the ISR", func() error {
		pd, err := s.partitionState(adm, topic, 0)
		if err != nil {
			return err
		}
		if !slices.Contains(pd.ISR, old) {
			return fmt.Errorf("ISR %v", pd.ISR)
		}
		return nil
	})

	// Its log is the new leader's: stop the two others so that it leads
	// again, and read the partition through it.
	var others []string
	for id := int32(1); id <= 3; id++ {
		if id != old {
			others = append(others, brokerOf(id))
		}
	}
	for _, o := range others {
		s.docker("stop", "--time", "20", s.ids[o])
	}
	await.Until(t, 60*time.Second, svc+" leads "+topic+"/0 again", func() error {
		pd, err := s.partitionState(adm, topic, 0)
		if err != nil {
			return err
		}
		if pd.Leader != old {
			return fmt.Errorf("leader %d", pd.Leader)
		}
		return nil
	})
	got := s.consumeAll(adm, topic)
	for _, r := range got[0] {
		if r.value == "divergent" {
			t.Fatalf("the returned leader kept the record only it had written, at offset %d", r.offset)
		}
	}
	checkNothingLost(t, got, log.snapshot())
	for _, o := range others {
		s.start(o)
	}
}
