package natsevents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/sdk/events"
	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// subscriber collects the messages of one subject.
type subscriber struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	more chan struct{}
}

func subscribe(t *testing.T, url, subject string) *subscriber {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s := &subscriber{more: make(chan struct{}, 1)}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		s.mu.Unlock()
		select {
		case s.more <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}

// wait returns once n messages arrived.
func (s *subscriber) wait(t *testing.T, n int) []*nats.Msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		got := append([]*nats.Msg(nil), s.msgs...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.more:
		case <-deadline:
			t.Fatalf("%d messages after 10s, want %d", len(got), n)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestPayloads(t *testing.T) {
	srv := brokertest.NATS(t, 0)
	all := subscribe(t, srv.ClientURL(), "acme.prod.>")
	// 2,500 partitions: three log_end messages of at most 1,000.
	var parts []events.LogEndPartition
	for i := range 2500 {
		parts = append(parts, events.LogEndPartition{Topic: "orders", Partition: int32(i), PartitionCount: 2500, Offset: int64(i) * 10})
	}
	ticks := make(chan struct{}, 1)
	logEnds := func() []events.LogEndPartition {
		select {
		case ticks <- struct{}{}:
			return parts
		default:
			return nil // only the first tick publishes
		}
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	now := time.UnixMilli(1_700_000_000_000)
	p, err := New(Params{Config: Config{URL: srv.ClientURL(), Prefix: "acme", Cluster: "prod", Interval: 20 * time.Millisecond},
		LogEnds: logEnds, Logger: quietLogger(), TracerProvider: tp, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if s := p.Subjects(); s != [3]string{"acme.prod.offsets.log_end", "acme.prod.offsets.commit", "acme.prod.groups.members"} {
		t.Fatalf("subjects %v", s)
	}
	msgs := all.wait(t, 3)
	seen := 0
	for i, m := range msgs[:3] {
		le, err := events.DecodeLogEnd(m.Data)
		if err != nil || m.Subject != "acme.prod.offsets.log_end" || le.Timestamp != now.UnixMilli() {
			t.Fatalf("log_end %d on %s: %+v %v", i, m.Subject, le, err)
		}
		for _, lp := range le.Partitions {
			if lp != parts[seen] {
				t.Fatalf("partition %d: %+v, want %+v", seen, lp, parts[seen])
			}
			seen++
		}
		if want := min(1000, 2500-1000*i); len(le.Partitions) != want {
			t.Errorf("message %d has %d partitions, want %d", i, len(le.Partitions), want)
		}
	}
	if seen != 2500 {
		t.Fatalf("%d partitions published", seen)
	}

	// A commit from a traced request: the payload, and the trace context
	// in the headers under a producer span that is the request's child.
	ctx, req := tp.Tracer("test").Start(context.Background(), "OffsetCommit")
	p.OffsetsCommitted(ctx, group.OffsetCommit{Group: "billing", Order: 0, Timestamp: 1700000000123,
		Offsets: []group.CommittedOffset{{Topic: "orders", Partition: 0, Offset: 1200}, {Topic: "orders", Partition: 7, Offset: 3}}})
	req.End()
	assignment := kmsg.ConsumerMemberAssignment{Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: "orders", Partitions: []int32{0, 1}}, {Topic: "refunds", Partitions: []int32{2}}}}
	p.GroupStored(context.Background(), "billing", &group.GroupValue{ProtocolType: "consumer", Generation: 3, Members: []group.GroupValueMember{
		{MemberID: "m-1", ClientID: "c-1", ClientHost: "/10.0.0.7", Assignment: assignment.AppendTo(nil)},
		{MemberID: "m-2", ClientID: "c-2", ClientHost: "/10.0.0.8", Assignment: []byte{}},
	}})
	p.GroupStored(context.Background(), "billing", &group.GroupValue{ProtocolType: "consumer", Generation: 4})
	msgs = all.wait(t, 6)

	c, err := events.DecodeCommit(msgs[3].Data)
	if err != nil || msgs[3].Subject != "acme.prod.offsets.commit" || c.Group != "billing" || c.Order == nil || *c.Order != 0 ||
		c.Timestamp != 1700000000123 || len(c.Offsets) != 2 || c.Offsets[1] != (events.CommitPartition{Topic: "orders", Partition: 7, Offset: 3}) {
		t.Fatalf("commit on %s: %s (%v)", msgs[3].Subject, msgs[3].Data, err)
	}
	carrier := propagation.HeaderCarrier(http.Header(msgs[3].Header))
	got := propagation.TraceContext{}.Extract(context.Background(), carrier)
	var send sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "send acme.prod.offsets.commit" {
			send = s
		}
	}
	if send == nil || send.Parent().SpanID() != req.SpanContext().SpanID() || send.SpanContext().TraceID() != req.SpanContext().TraceID() {
		t.Fatalf("no send span under the request: %v", send)
	}
	if sc := oteltrace.SpanContextFromContext(got).SpanID(); sc != send.SpanContext().SpanID() {
		t.Fatalf("traceparent carries span %s, want the send span %s", sc, send.SpanContext().SpanID())
	}
	if v := attr(send.Attributes(), "messaging.system"); v != "nats" {
		t.Errorf("messaging.system %q", v)
	}

	m, err := events.DecodeMembers(msgs[4].Data)
	if err != nil || msgs[4].Subject != "acme.prod.groups.members" || m.Group != "billing" || m.Generation != 3 || len(m.Members) != 2 {
		t.Fatalf("members on %s: %s (%v)", msgs[4].Subject, msgs[4].Data, err)
	}
	if m1 := m.Members[0]; m1.ClientID != "c-1" || m1.ClientHost != "/10.0.0.7" || len(m1.Assignments) != 2 ||
		fmt.Sprint(m1.Assignments["orders"]) != "[0 1]" || fmt.Sprint(m1.Assignments["refunds"]) != "[2]" {
		t.Errorf("member 1 %+v", m1)
	}
	if m2 := m.Members[1]; m2.ClientID != "c-2" || len(m2.Assignments) != 0 {
		t.Errorf("member 2 %+v", m2)
	}
	if len(msgs[4].Header) != 0 {
		t.Errorf("untraced event with headers %v", msgs[4].Header)
	}
	empty, err := events.DecodeMembers(msgs[5].Data)
	if err != nil || empty.Generation != 4 || empty.Members == nil || len(empty.Members) != 0 {
		t.Fatalf("empty group: %s (%v)", msgs[5].Data, err)
	}
	if p.Dropped() != 0 {
		t.Errorf("%d dropped with NATS up", p.Dropped())
	}
}

func attr(kvs []attribute.KeyValue, key string) string {
	for _, kv := range kvs {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// counts sums a counter's data points by the value of attribute key.
func counts(t *testing.T, reader *sdkmetric.ManualReader, name, key string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key(key))
				out[v.AsString()] += dp.Value
			}
		}
	}
	return out
}

// TestNATSDown publishes while no NATS server runs: the hooks return at
// once however many events come, the events that fit nowhere are dropped
// and counted, every event is either handed to NATS or counted as dropped,
// and once a server comes up nats.go reconnects and events flow again.
func TestNATSDown(t *testing.T) {
	port := brokertest.FreePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p, err := New(Params{Config: Config{URL: url, Cluster: "down", Interval: time.Hour, Buffer: 16},
		LogEnds: func() []events.LogEndPartition { return nil }, Logger: quietLogger(), MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("a server that is down fails the start: %v", err)
	}
	defer p.Close()
	commit := func(i int) {
		p.OffsetsCommitted(context.Background(), group.OffsetCommit{Group: "billing", Order: int64(i), Timestamp: 1,
			Offsets: []group.CommittedOffset{{Topic: "orders", Partition: 0, Offset: int64(i)}}})
	}
	// First 20,000 commits of over 100 bytes, paced so the queue (16)
	// never overflows: nats.go's 1 MiB reconnect buffer fills, and what
	// does not fit is dropped.
	const paced, flood = 20000, 30000
	for i := range paced {
		for len(p.queue) == cap(p.queue) {
			time.Sleep(100 * time.Microsecond)
		}
		commit(i)
	}
	// Then 30,000 as fast as they come: the hook never waits.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range flood {
			commit(paced + i)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the commit hook blocked while NATS is down")
	}
	const sent = paced + flood
	// Wait for the sender to empty the queue, then account for every event.
	for len(p.queue) > 0 {
		time.Sleep(time.Millisecond)
	}
	var published, dropped map[string]int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		published = counts(t, reader, "runnel.broker.events.published", "event")
		dropped = counts(t, reader, "runnel.broker.events.dropped", "reason")
		if published["commit"]+dropped["queue_full"]+dropped["nats"] == sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("published %v + dropped %v != %d sent", published, dropped, sent)
		}
	}
	if dropped["nats"] == 0 || p.Dropped() != dropped["queue_full"]+dropped["nats"] {
		t.Fatalf("dropped %v, Dropped() %d", dropped, p.Dropped())
	}
	if buffered := published["commit"]; buffered == 0 || buffered*100 > reconnectBuffer {
		t.Fatalf("%d commits handed to nats.go while down, its buffer holds %d bytes", buffered, reconnectBuffer)
	}
	t.Logf("while down: %d kept in nats.go's buffer, %d dropped (%v)", published["commit"], p.Dropped(), dropped)

	// The server comes up where the publisher points: nats.go connects
	// and events flow.
	srv := brokertest.NATS(t, port)
	sub := subscribe(t, srv.ClientURL(), "runnel.down.offsets.commit")
	for deadline := time.Now().Add(20 * time.Second); !p.nc.IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the publisher never connected to the server that came up")
		}
	}
	p.OffsetsCommitted(context.Background(), group.OffsetCommit{Group: "after", Order: 1, Timestamp: 2,
		Offsets: []group.CommittedOffset{{Topic: "orders", Partition: 0, Offset: 5}}})
	for {
		msgs := sub.wait(t, 1)
		c, err := events.DecodeCommit(msgs[len(msgs)-1].Data)
		if err != nil {
			t.Fatal(err)
		}
		if c.Group == "after" {
			break
		}
		sub.wait(t, len(msgs)+1)
	}
}

func TestCloseWithoutServer(t *testing.T) {
	p, err := New(Params{Config: Config{URL: "nats://127.0.0.1:" + strconv.Itoa(brokertest.FreePort(t)), Interval: 10 * time.Millisecond},
		LogEnds: func() []events.LogEndPartition {
			return []events.LogEndPartition{{Topic: "t", Partition: 0, PartitionCount: 1, Offset: 1}}
		}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatalf("close while disconnected: %v", err)
	}
	// Hooks after Close neither block nor panic.
	p.GroupStored(context.Background(), "g", &group.GroupValue{})
}

func TestConfig(t *testing.T) {
	c := Config{URL: "nats://x:4222"}
	if err := c.Check(); err != nil || c.Prefix != "runnel" || c.Cluster != "local" || c.Interval != DefaultInterval || c.Buffer != DefaultBuffer {
		t.Fatalf("defaults %+v %v", c, err)
	}
	for _, bad := range []Config{{Cluster: "a.b"}, {Cluster: "prod*"}, {Prefix: "runnel..x"}, {Prefix: "x >"}, {Interval: -time.Second}} {
		if err := bad.Check(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if c := (Config{Prefix: "acme.runnel", Cluster: "prod-1"}); c.Check() != nil {
		t.Error("a dotted prefix is refused")
	}
	if _, err := New(Params{Config: Config{}, LogEnds: func() []events.LogEndPartition { return nil }}); !errors.Is(err, ErrConfig) {
		t.Errorf("no URL: %v", err)
	}
	if _, err := New(Params{Config: Config{URL: "nats://127.0.0.1:1"}}); !errors.Is(err, ErrConfig) {
		t.Errorf("no LogEnds: %v", err)
	}
}
