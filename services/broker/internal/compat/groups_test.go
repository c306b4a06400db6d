package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// groupSettings make group tests quick: a short initial rebalance delay
// and session timeouts from one second.
var groupSettings = []string{"group.initial.rebalance.delay.ms=300", "group.min.session.timeout.ms=1000"}

// produceTo writes n records "<prefix><i>" round-robin over the topic's
// partitions and waits for them all.
func produceTo(t *testing.T, ctx context.Context, c *cluster, topic string, partitions int32, prefix string, from, n int) {
	t.Helper()
	cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Partition: int32(i) % partitions, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s%d", prefix, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// committed returns the group's committed offsets by partition of topic.
func committed(t *testing.T, ctx context.Context, c *cluster, groupID, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(c.client(t))
	offs, err := adm.FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", groupID, err)
	}
	out := map[int32]int64{}
	for p, o := range offs[topic] {
		out[p] = o.At
	}
	return out
}

// TestKcatBalancedConsumers runs two kcat -G members (librdkafka's
// roundrobin assignor) on one topic: the partitions are split between
// them, and every record is read once.
func TestKcatBalancedConsumers(t *testing.T) {
	kcat := brokertest.Kcat(t)
	c := startCluster(t, brokertest.BrokerOptions{Settings: groupSettings})
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("kcat-group")
	c.createTopic(t, ctx, topic, 4, nil)
	type line struct {
		member int
		text   string
	}
	lines := make(chan line, 1024)
	var mu sync.Mutex
	stderr := map[int]*bytes.Buffer{}
	for m := 0; m < 2; m++ {
		cmd := exec.CommandContext(ctx, kcat, "-b", c.broker.Addr, "-G", "kcat-balanced", topic, "-q", "-u", "-f", "%p %o %s\n",
			"-X", "session.timeout.ms=6000", "-X", "auto.offset.reset=earliest", "-X", "partition.assignment.strategy=roundrobin")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		eb := &lockedBuf{}
		cmd.Stderr = eb
		mu.Lock()
		stderr[m] = &eb.b
		mu.Unlock()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		go func(m int) {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- line{m, sc.Text()}
			}
		}(m)
		// One member first, so that the second one's join is a rebalance.
		if m == 0 {
			time.Sleep(time.Second)
		}
	}
	// Both members must hold partitions before records flow.
	adm := kadm.NewClient(c.client(t))
	waitFor(t, 30*time.Second, "two members with assignments", func() bool {
		d, err := adm.DescribeGroups(ctx, "kcat-balanced")
		if err != nil {
			return false
		}
		g := d["kcat-balanced"]
		if g.State != "Stable" || len(g.Members) != 2 || g.Protocol != "roundrobin" {
			return false
		}
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); !ok || len(a.Topics) == 0 || len(a.Topics[0].Partitions) != 2 {
				return false
			}
		}
		return true
	})
	const n = 400
	produceTo(t, ctx, c, topic, 4, "v", 0, n)
	seen := map[string]int{}
	owner := map[string]int{}
	for len(seen) < n {
		select {
		case l := <-lines:
			f := strings.Fields(l.text)
			if len(f) != 3 {
				t.Fatalf("kcat printed %q", l.text)
			}
			seen[f[2]]++
			if o, ok := owner[f[0]]; ok && o != l.member {
				t.Fatalf("partition %s read by both members", f[0])
			}
			owner[f[0]] = l.member
		case <-ctx.Done():
			mu.Lock()
			t.Fatalf("read %d of %d records; kcat stderr:\n%s\n%s", len(seen), n, stderr[0], stderr[1])
		}
	}
	for v, k := range seen {
		if k != 1 {
			t.Fatalf("record %s read %d times", v, k)
		}
	}
	per := map[int]int{}
	for _, m := range owner {
		per[m]++
	}
	if per[0] != 2 || per[1] != 2 {
		t.Fatalf("partitions per member %v, want 2 and 2", per)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// confluentMember is one consumer of a group in its own process: it
// prints its assignments and every record it processes, and commits
// synchronously after each batch.
const confluentMember = `
import json, signal, sys, time
from confluent_kafka import Consumer, KafkaException
bootstrap, topic, group, name, session = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def out(d):
    d["m"] = name
    d["t"] = time.time()
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()
running = True
def stop(*_):
    global running
    running = False
signal.signal(signal.SIGTERM, stop)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "session.timeout.ms": session, "heartbeat.interval.ms": 300})
c.subscribe([topic],
            on_assign=lambda cons, parts: out({"e": "assign", "parts": [p.partition for p in parts]}),
            on_revoke=lambda cons, parts: out({"e": "revoke", "parts": [p.partition for p in parts]}))
out({"e": "start"})
while running:
    batch = [m for m in c.consume(num_messages=50, timeout=0.2) if not m.error()]
    if not batch:
        continue
    for m in batch:
        out({"e": "rec", "p": m.partition(), "o": m.offset(), "v": m.value().decode()})
    try:
        c.commit(asynchronous=False)
    except KafkaException as e:
        out({"e": "commit-error", "err": str(e)})
c.close()
out({"e": "closed"})
`

type memberEvent struct {
	E     string  `json:"e"`
	M     string  `json:"m"`
	T     float64 `json:"t"`
	Parts []int32 `json:"parts"`
	P     int32   `json:"p"`
	O     int64   `json:"o"`
	V     string  `json:"v"`
	Err   string  `json:"err"`
}

// groupRun collects what the member processes print.
type groupRun struct {
	t      *testing.T
	mu     sync.Mutex
	events []memberEvent
	procs  map[string]*exec.Cmd
	errs   map[string]*lockedBuf
}

func (g *groupRun) start(ctx context.Context, py, name string, args ...string) {
	g.t.Helper()
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", confluentMember}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		g.t.Fatal(err)
	}
	eb := &lockedBuf{}
	cmd.Stderr = eb
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.mu.Lock()
	g.procs[name], g.errs[name] = cmd, eb
	g.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev memberEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue
			}
			g.mu.Lock()
			g.events = append(g.events, ev)
			g.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	g.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		_ = cmd.Wait()
	})
}

// kill ends a member with SIGKILL (a crash: no leave, no commit) and
// records when.
func (g *groupRun) kill(name string) {
	g.mu.Lock()
	cmd := g.procs[name]
	g.events = append(g.events, memberEvent{E: "killed", M: name, T: float64(time.Now().UnixNano()) / 1e9})
	g.mu.Unlock()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// stop ends a member with SIGTERM: it closes its consumer (leaving the
// group) and exits.
func (g *groupRun) stop(name string) {
	g.mu.Lock()
	cmd := g.procs[name]
	g.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		g.t.Fatalf("member %s did not stop on SIGTERM", name)
	}
}

// snapshot returns the events so far, in time order.
func (g *groupRun) snapshot() []memberEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := append([]memberEvent(nil), g.events...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].T < out[j].T })
	return out
}

// owners replays assignments: each live member's partitions now. It fails
// the test when a partition was ever held by two live members at once, or
// a record was processed by a member that did not hold its partition.
func (g *groupRun) owners() map[string][]int32 {
	g.t.Helper()
	owner := map[int32]string{}
	held := map[string]map[int32]bool{}
	for _, ev := range g.snapshot() {
		switch ev.E {
		case "assign":
			for _, p := range ev.Parts {
				if o, ok := owner[p]; ok && o != ev.M {
					g.t.Fatalf("partition %d assigned to %s while %s holds it", p, ev.M, o)
				}
				owner[p] = ev.M
				if held[ev.M] == nil {
					held[ev.M] = map[int32]bool{}
				}
				held[ev.M][p] = true
			}
		case "revoke":
			for _, p := range ev.Parts {
				if owner[p] == ev.M {
					delete(owner, p)
				}
				delete(held[ev.M], p)
			}
		case "killed", "closed":
			for p := range held[ev.M] {
				if owner[p] == ev.M {
					delete(owner, p)
				}
			}
			delete(held, ev.M)
		case "rec":
			if owner[ev.P] != ev.M {
				g.t.Fatalf("%s processed %s of partition %d, held by %q", ev.M, ev.V, ev.P, owner[ev.P])
			}
		case "commit-error":
			g.t.Logf("%s: commit failed: %s", ev.M, ev.Err)
		}
	}
	out := map[string][]int32{}
	for m, ps := range held {
		for p := range ps {
			out[m] = append(out[m], p)
		}
	}
	return out
}

// processed counts how often each value was processed.
func (g *groupRun) processed() map[string]int {
	out := map[string]int{}
	for _, ev := range g.snapshot() {
		if ev.E == "rec" {
			out[ev.V]++
		}
	}
	return out
}

func (g *groupRun) waitProcessed(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := g.processed()
		if len(got) >= n {
			return
		}
		if time.Now().After(deadline) {
			var errs []string
			g.mu.Lock()
			for name, e := range g.errs {
				errs = append(errs, name+": "+e.String())
			}
			g.mu.Unlock()
			t.Fatalf("%d of %d records processed after %s; stderr:\n%s", len(got), n, d, strings.Join(errs, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitBalanced waits until the live members hold every partition, each
// the given number.
func (g *groupRun) waitBalanced(t *testing.T, members []string, per int, d time.Duration) map[string][]int32 {
	t.Helper()
	var own map[string][]int32
	waitFor(t, d, fmt.Sprintf("%v to hold %d partitions each", members, per), func() bool {
		own = g.owners()
		for _, m := range members {
			if len(own[m]) != per {
				return false
			}
		}
		return len(own) == len(members)
	})
	return own
}

// TestConfluentConsumerGroup runs a group of three confluent-kafka
// (librdkafka) consumer processes on a six-partition topic. Every
// partition has one owner at a time; with a synchronous commit after each
// batch no record is processed twice; a killed member's partitions move
// to the others once its session times out; members started again resume
// from the committed offsets.
func TestConfluentConsumerGroup(t *testing.T) {
	py := brokertest.Python(t, "confluent_kafka", "python3-confluent-kafka")
	c := startCluster(t, brokertest.BrokerOptions{Settings: groupSettings})
	ctx := brokertest.Context(t, 4*time.Minute)
	topic := uniqueTopic("confluent-group")
	c.createTopic(t, ctx, topic, 6, nil)
	g := &groupRun{t: t, procs: map[string]*exec.Cmd{}, errs: map[string]*lockedBuf{}}
	const session = "3000"
	for _, m := range []string{"a", "b", "c"} {
		g.start(ctx, py, m, c.broker.Addr, topic, "confluent-group", m, session)
	}
	g.waitBalanced(t, []string{"a", "b", "c"}, 2, time.Minute)

	produceTo(t, ctx, c, topic, 6, "v", 0, 600)
	g.waitProcessed(t, 600, time.Minute)
	waitFor(t, 30*time.Second, "offsets committed", func() bool {
		offs := committed(t, ctx, c, "confluent-group", topic)
		for p := int32(0); p < 6; p++ {
			if offs[p] != 100 {
				return false
			}
		}
		return true
	})

	// Kill one member: after its session (3 s) the other two get its
	// partitions, and carry on from its committed offsets.
	g.kill("a")
	killed := time.Now()
	produceTo(t, ctx, c, topic, 6, "v", 600, 600)
	own := g.waitBalanced(t, []string{"b", "c"}, 3, time.Minute)
	t.Logf("partitions of the killed member reassigned %s after the kill: %v", time.Since(killed).Round(100*time.Millisecond), own)
	g.waitProcessed(t, 1200, time.Minute)

	// Stop everyone, write more, start three members again: they resume
	// where the group committed.
	g.stop("b")
	g.stop("c")
	waitFor(t, 30*time.Second, "an empty group", func() bool {
		d, err := kadm.NewClient(c.client(t)).DescribeGroups(ctx, "confluent-group")
		return err == nil && d["confluent-group"].State == "Empty"
	})
	offs := committed(t, ctx, c, "confluent-group", topic)
	for p := int32(0); p < 6; p++ {
		if offs[p] != 200 {
			t.Fatalf("committed offsets after the second phase: %v", offs)
		}
	}
	produceTo(t, ctx, c, topic, 6, "v", 1200, 300)
	for _, m := range []string{"d", "e", "f"} {
		g.start(ctx, py, m, c.broker.Addr, topic, "confluent-group", m, session)
	}
	g.waitProcessed(t, 1500, time.Minute)
	g.owners() // checks single ownership and record ownership over the whole run
	for v, n := range g.processed() {
		if n != 1 {
			t.Fatalf("record %s processed %d times", v, n)
		}
	}
	for _, ev := range g.snapshot() {
		if (ev.M == "d" || ev.M == "e" || ev.M == "f") && ev.E == "rec" && ev.O < 200 {
			t.Fatalf("restarted member %s re-read %s at offset %d of partition %d", ev.M, ev.V, ev.O, ev.P)
		}
	}
}

// kafkaPythonGroup consumes want records in a group, committing every
// ten and at the end, then leaves.
const kafkaPythonGroup = `
import json, sys
from kafka import KafkaConsumer
bootstrap, topic, group, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                  auto_offset_reset="earliest", consumer_timeout_ms=20000,
                  session_timeout_ms=6000, heartbeat_interval_ms=1000)
n = 0
for m in c:
    print(json.dumps({"p": m.partition, "o": m.offset, "k": m.key.decode(), "v": m.value.decode()}))
    n += 1
    if n % 10 == 0:
        c.commit()
    if n == want:
        break
c.commit()
c.close()
`

// TestKafkaPythonGroupConsumer runs kafka-python's group consumer twice:
// the second run reads exactly what the first left, from its commits
// (OffsetCommit v2, as kafka-python sends it).
func TestKafkaPythonGroupConsumer(t *testing.T) {
	py := brokertest.Python(t, "kafka", "python3-kafka")
	c := startCluster(t, brokertest.BrokerOptions{Settings: groupSettings})
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("kafka-python-group")
	c.createTopic(t, ctx, topic, 2, nil)
	produceTo(t, ctx, c, topic, 2, "v", 0, 100)
	first := runPython(t, py, kafkaPythonGroup, c.broker.Addr, topic, "kp-group", "60")
	offs := committed(t, ctx, c, "kp-group", topic)
	if offs[0]+offs[1] != 60 {
		t.Fatalf("committed %v after 60 records", offs)
	}
	second := runPython(t, py, kafkaPythonGroup, c.broker.Addr, topic, "kp-group", "40")
	seen := map[string]bool{}
	for _, l := range append(first, second...) {
		if seen[l.V] {
			t.Fatalf("record %s read twice", l.V)
		}
		seen[l.V] = true
	}
	if len(seen) != 100 {
		t.Fatalf("read %d distinct records, want 100", len(seen))
	}
	offs = committed(t, ctx, c, "kp-group", topic)
	if offs[0] != 50 || offs[1] != 50 {
		t.Fatalf("committed %v at the end", offs)
	}
}

// TestFranzGoCooperativeSticky runs two franz-go members with the
// cooperative-sticky balancer: when the second joins, the first gives up
// only the partitions that move (an incremental rebalance, KIP-429), and
// every record is consumed once.
func TestFranzGoCooperativeSticky(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: groupSettings})
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("franz-coop")
	c.createTopic(t, ctx, topic, 4, nil)
	type state struct {
		mu       sync.Mutex
		owned    map[int32]bool
		revoked  [][]int32
		consumed map[string]int
	}
	newMember := func(name string) (*kgo.Client, *state) {
		st := &state{owned: map[int32]bool{}, consumed: map[string]int{}}
		cl := c.client(t, kgo.ConsumerGroup("coop"), kgo.ConsumeTopics(topic), kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				st.mu.Lock()
				defer st.mu.Unlock()
				for _, p := range m[topic] {
					st.owned[p] = true
				}
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				st.mu.Lock()
				defer st.mu.Unlock()
				st.revoked = append(st.revoked, m[topic])
				for _, p := range m[topic] {
					delete(st.owned, p)
				}
			}))
		go func() {
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				st.mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { st.consumed[string(r.Value)]++ })
				st.mu.Unlock()
			}
		}()
		return cl, st
	}
	owned := func(st *state) int {
		st.mu.Lock()
		defer st.mu.Unlock()
		return len(st.owned)
	}
	_, s1 := newMember("one")
	waitFor(t, 30*time.Second, "the first member to own all partitions", func() bool { return owned(s1) == 4 })
	_, s2 := newMember("two")
	waitFor(t, 30*time.Second, "two and two partitions", func() bool { return owned(s1) == 2 && owned(s2) == 2 })
	s1.mu.Lock()
	var revoked [][]int32
	for _, r := range s1.revoked {
		if len(r) > 0 { // franz-go reports empty revocations of cooperative rounds too
			revoked = append(revoked, r)
		}
	}
	s1.mu.Unlock()
	if len(revoked) != 1 || len(revoked[0]) != 2 {
		t.Fatalf("the first member's revocations %v: want one of two partitions (incremental)", revoked)
	}
	d, err := kadm.NewClient(c.client(t)).DescribeGroups(ctx, "coop")
	if err != nil || d["coop"].Protocol != "cooperative-sticky" {
		t.Fatalf("group protocol %q (%v)", d["coop"].Protocol, err)
	}
	produceTo(t, ctx, c, topic, 4, "v", 0, 400)
	waitFor(t, time.Minute, "400 records consumed", func() bool {
		s1.mu.Lock()
		s2.mu.Lock()
		defer s1.mu.Unlock()
		defer s2.mu.Unlock()
		return len(s1.consumed)+len(s2.consumed) >= 400
	})
	s1.mu.Lock()
	s2.mu.Lock()
	defer s1.mu.Unlock()
	defer s2.mu.Unlock()
	for v, n := range s1.consumed {
		if n != 1 || s2.consumed[v] != 0 {
			t.Fatalf("record %s consumed %d+%d times", v, n, s2.consumed[v])
		}
	}
}

type saramaHandler struct {
	mu   sync.Mutex
	seen map[string]int
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.seen[string(m.Value)]++
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// TestSaramaConsumerGroup consumes with sarama's consumer group (its
// sticky assignor and offset manager) and checks its commits.
func TestSaramaConsumerGroup(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: groupSettings})
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("sarama-group")
	c.createTopic(t, ctx, topic, 3, nil)
	produceTo(t, ctx, c, topic, 3, "v", 0, 300)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	cg, err := sarama.NewConsumerGroup([]string{c.broker.Addr}, "sarama-group", cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &saramaHandler{seen: map[string]int{}}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{topic}, h); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitFor(t, time.Minute, "300 records", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.seen) == 300
	})
	if d, err := kadm.NewClient(c.client(t)).DescribeGroups(ctx, "sarama-group"); err != nil || d["sarama-group"].Protocol != "sticky" {
		t.Errorf("sarama group protocol %q (%v), want sticky", d["sarama-group"].Protocol, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sarama consume: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Fatalf("sarama close: %v", err)
	}
	for v, n := range h.seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", v, n)
		}
	}
	offs := committed(t, ctx, c, "sarama-group", topic)
	if offs[0] != 100 || offs[1] != 100 || offs[2] != 100 {
		t.Fatalf("sarama committed %v", offs)
	}
}

// TestGroupsSurviveBrokerRestart commits offsets from a consumer group and
// from a tool, kills the broker (kill -9) and restarts it: the groups and
// their offsets are back, the consumer resumes where it committed, and
// __consumer_offsets holds Kafka's binary records.
func TestGroupsSurviveBrokerRestart(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: append(groupSettings, "zookeeper.session.timeout.ms=4000")})
	ctx := brokertest.Context(t, 3*time.Minute)
	topic := uniqueTopic("restart-group")
	c.createTopic(t, ctx, topic, 2, nil)
	produceTo(t, ctx, c, topic, 2, "v", 0, 100)

	cons := c.client(t, kgo.ConsumerGroup("survivor"), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit())
	got := 0
	for got < 100 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	adm := kadm.NewClient(c.client(t))
	tool := kadm.Offsets{}
	tool.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "tool-group", tool); err != nil || r.Error() != nil {
		t.Fatalf("tool commit: %v %v", err, r.Error())
	}

	c.broker.Kill()
	c.broker.Restart()

	adm = kadm.NewClient(c.client(t))
	var listed kadm.ListedGroups
	waitFor(t, 30*time.Second, "groups listed after the restart", func() bool {
		var err error
		listed, err = adm.ListGroups(ctx)
		return err == nil && len(listed) == 2
	})
	if _, ok := listed["survivor"]; !ok {
		t.Fatalf("groups after restart: %v", listed.Groups())
	}
	if offs := committed(t, ctx, c, "survivor", topic); offs[0] != 50 || offs[1] != 50 {
		t.Fatalf("survivor's offsets after restart: %v", offs)
	}
	if offs := committed(t, ctx, c, "tool-group", topic); offs[0] != 7 {
		t.Fatalf("tool-group's offsets after restart: %v", offs)
	}
	d, err := adm.DescribeGroups(ctx, "survivor")
	if err != nil || d["survivor"].State != "Empty" || d["survivor"].ProtocolType != "consumer" {
		t.Fatalf("survivor after restart: %+v %v", d["survivor"], err)
	}
	produceTo(t, ctx, c, topic, 2, "w", 100, 10)
	again := c.client(t, kgo.ConsumerGroup("survivor"), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var recs []*kgo.Record
	for len(recs) < 10 {
		fs := again.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, fs.Records()...)
	}
	for _, r := range recs {
		if r.Offset < 50 {
			t.Fatalf("the group re-read offset %d of partition %d after the restart", r.Offset, r.Partition)
		}
	}

	// Read __consumer_offsets as Burrow would: every key and value decodes
	// with Kafka's schemas.
	raw := c.client(t, kgo.ConsumeTopics(group.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	kinds := map[group.KeyKind]int{}
	for kinds[group.OffsetKind] < 3 || kinds[group.GroupKind] < 1 {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := raw.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("records of __consumer_offsets: %v; broker log:\n%s", kinds, c.broker.Log()[max(0, len(c.broker.Log())-6000):])
		}
		fs.EachRecord(func(r *kgo.Record) {
			k, err := group.DecodeKey(r.Key)
			if err != nil {
				t.Fatalf("key %x: %v", r.Key, err)
			}
			kinds[k.Kind]++
			switch {
			case r.Value == nil:
			case k.Kind == group.OffsetKind:
				if _, err := group.DecodeOffsetValue(r.Value); err != nil {
					t.Fatalf("offset value %x: %v", r.Value, err)
				}
			default:
				if _, err := group.DecodeGroupValue(r.Value); err != nil {
					t.Fatalf("group value %x: %v", r.Value, err)
				}
			}
		})
	}
}
