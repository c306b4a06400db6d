package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/sdk"
	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
)

// fakeCluster starts franz-go's in-memory Kafka with topics of n
// partitions each.
func fakeCluster(t *testing.T, partitions int32, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

type user struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pollN polls until n records arrived.
func pollN[K, V any](t *testing.T, ctx context.Context, c *sdk.Consumer[K, V], n int) []*sdk.Record[K, V] {
	t.Helper()
	var out []*sdk.Record[K, V]
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	return out
}

func TestProduceConsumeTyped(t *testing.T) {
	seeds := fakeCluster(t, 3, "users")
	ctx := ctxT(t)
	p, err := sdk.NewProducer(sdk.String(), sdk.JSON[user](), sdk.Brokers(seeds...), sdk.DefaultTopic("users"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []sdk.Message[string, user]
	for i := range 20 {
		msgs = append(msgs, sdk.Message[string, user]{Key: fmt.Sprintf("u%d", i), Value: user{Name: fmt.Sprintf("n%d", i), Age: i}})
	}
	ds, err := p.SendSync(ctx, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if d.Err != nil || d.Offset < 0 || d.Message.Key != msgs[i].Key {
			t.Errorf("delivery %d: %+v", i, d)
		}
	}
	// A keyed record lands where Kafka's Java client puts it (murmur2).
	part := kgo.StickyKeyPartitioner(nil).ForTopic("users").Partition(&kgo.Record{Key: []byte("u7")}, 3)
	if ds[7].Partition != int32(part) {
		t.Errorf("u7 went to partition %d, murmur2 says %d", ds[7].Partition, part)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	c, err := sdk.NewConsumer(sdk.String(), sdk.JSON[user](), sdk.Brokers(seeds...), sdk.Topics("users"), sdk.FromBeginning())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	got := map[string]user{}
	for _, r := range pollN(t, ctx, c, 20) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		got[r.Key] = r.Value
	}
	if len(got) != 20 || got["u5"] != (user{Name: "n5", Age: 5}) {
		t.Errorf("consumed %v", got)
	}
}

// strictUsers is a serializer that rejects users without a name or with a
// negative age, naming the field: the shape a real plugin's errors have.
type strictUsers struct{}

func (strictUsers) Describe(context.Context) (plugin.Description, error) {
	return plugin.Description{Name: "strict", Version: "1"}, nil
}
func (strictUsers) Close() error { return nil }
func (strictUsers) Encode(_ context.Context, in [][]byte) ([][]byte, error) {
	return serde.Batch(in, func(v []byte) ([]byte, error) {
		var u user
		if err := json.Unmarshal(v, &u); err != nil {
			return nil, &serde.RecordError{Reason: err.Error()}
		}
		if u.Name == "" {
			return nil, &serde.RecordError{Field: "name", Reason: "must not be empty"}
		}
		if u.Age < 0 {
			return nil, &serde.RecordError{Field: "age", Reason: "must not be negative"}
		}
		return v, nil
	})
}
func (strictUsers) Decode(_ context.Context, in [][]byte) ([][]byte, error) {
	return serde.Batch(in, func(v []byte) ([]byte, error) {
		if !json.Valid(v) {
			return nil, &serde.RecordError{Reason: "not JSON"}
		}
		return v, nil
	})
}

func TestBadValueNamesRecordAndField(t *testing.T) {
	seeds := fakeCluster(t, 1, "users")
	ctx := ctxT(t)
	p, err := sdk.NewProducer(sdk.String(), sdk.SerdeCodec[user](strictUsers{}), sdk.Brokers(seeds...), sdk.DefaultTopic("users"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	ds, err := p.SendSync(ctx,
		sdk.Message[string, user]{Key: "ok", Value: user{Name: "ann", Age: 3}},
		sdk.Message[string, user]{Key: "bob", Value: user{Name: "bob", Age: -1}},
		sdk.Message[string, user]{Key: "ok2", Value: user{Name: "cy", Age: 4}},
	)
	var se *sdk.SerializeError
	if !errors.As(err, &se) {
		t.Fatalf("SendSync: %v, want a *SerializeError", err)
	}
	if se.Index != 1 || se.Field != "age" || se.Key != "bob" || se.Part != "value" || !errors.Is(err, serde.ErrInvalidValue) {
		t.Errorf("error %+v", se)
	}
	want := `record 1 for topic "users" (key "bob"): value field "age": must not be negative`
	if err.Error() != want {
		t.Errorf("message %q\nwant    %q", err.Error(), want)
	}
	if ds[0].Err != nil || ds[2].Err != nil || ds[2].Offset != 1 {
		t.Errorf("the good records were not sent: %+v %+v", ds[0], ds[2])
	}

	// A record nobody can decode comes back with Err, not silently
	// dropped; a tombstone (null value) decodes to the zero value.
	raw, _ := kgo.NewClient(kgo.SeedBrokers(seeds...))
	defer raw.Close()
	if err := raw.ProduceSync(ctx, &kgo.Record{Topic: "users", Value: []byte("{broken")}, &kgo.Record{Topic: "users", Key: []byte("gone")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c, err := sdk.NewConsumer(sdk.String(), sdk.SerdeCodec[user](strictUsers{}), sdk.Brokers(seeds...), sdk.Topics("users"), sdk.FromBeginning(), sdk.MeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	recs := pollN(t, ctx, c, 4)
	// The record that could not be decoded is counted as consumed with
	// error.type=deserialize, and as an error.
	counts := sumsByErrorType(t, ctx, reader)
	if counts[sdk.MetricConsumed+" "] != 3 || counts[sdk.MetricConsumed+" deserialize"] != 1 || counts[sdk.MetricErrors+" deserialize"] != 1 {
		t.Errorf("consumer counts %v", counts)
	}
	if recs[3].Err != nil || recs[3].Key != "gone" || recs[3].Value != (user{}) {
		t.Errorf("tombstone: %+v", recs[3])
	}
	var de *sdk.DeserializeError
	if !errors.As(recs[2].Err, &de) || de.Offset != 2 || !strings.Contains(de.Error(), "record users/0@2: value: not JSON") {
		t.Errorf("broken record: %v", recs[2].Err)
	}
	if recs[0].Err != nil || recs[0].Value.Name != "ann" {
		t.Errorf("first record: %+v", recs[0])
	}
}

func TestTracesJoinAcrossRecords(t *testing.T) {
	seeds := fakeCluster(t, 2, "orders")
	ctx := ctxT(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	p, err := sdk.NewProducer(sdk.String(), sdk.String(), sdk.Brokers(seeds...), sdk.DefaultTopic("orders"), sdk.TracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	// The application's own span around the send: the record's trace.
	appCtx, appSpan := tp.Tracer("app").Start(ctx, "checkout")
	if _, err := p.SendSync(appCtx, sdk.Message[string, string]{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	appSpan.End()
	p.Close(ctx)

	c, err := sdk.NewConsumer(sdk.String(), sdk.String(), sdk.Brokers(seeds...), sdk.Topics("orders"), sdk.FromBeginning(), sdk.TracerProvider(tp), sdk.ClientID("billing"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	r := pollN(t, ctx, c, 1)[0]
	if r.Headers[0].Key != "traceparent" {
		t.Errorf("headers %v: want traceparent", r.Headers)
	}
	if err := c.Process(ctx, r, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	send, poll, process := spans["send orders"], spans["poll orders"], spans["process orders"]
	if send == nil || poll == nil || process == nil {
		t.Fatalf("spans %v", keys(spans))
	}
	// The messaging conventions' kinds: send PRODUCER, receive CLIENT,
	// process CONSUMER.
	if send.SpanKind() != trace.SpanKindProducer || poll.SpanKind() != trace.SpanKindClient || process.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kinds %v %v %v", send.SpanKind(), poll.SpanKind(), process.SpanKind())
	}
	if send.Parent().SpanID() != appSpan.SpanContext().SpanID() {
		t.Errorf("the send span is not a child of the application's span")
	}
	if process.SpanContext().TraceID() != send.SpanContext().TraceID() || process.Parent().SpanID() != send.SpanContext().SpanID() {
		t.Errorf("the process span does not join the producer's trace as the send span's child")
	}
	if len(poll.Links()) != 1 || poll.Links()[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("the poll span does not link to the send span: %v", poll.Links())
	}
	if len(process.Links()) != 1 || process.Links()[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("the process span does not link to the message's creation context: %v", process.Links())
	}
	for name, want := range map[string][]attribute.KeyValue{
		"send orders": {attribute.String("messaging.system", "kafka"), attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.operation.name", "send"),
			attribute.String("messaging.destination.name", "orders"), attribute.String("messaging.destination.partition.id", fmt.Sprint(r.Partition)),
			attribute.Int("messaging.kafka.offset", 0), attribute.String("messaging.kafka.message.key", "k"),
			attribute.Int("messaging.message.body.size", 1), attribute.String("messaging.client.id", "runnel-sdk")},
		"poll orders": {attribute.String("messaging.operation.type", "receive"), attribute.Int("messaging.batch.message_count", 1),
			attribute.String("messaging.destination.partition.id", fmt.Sprint(r.Partition))},
		"process orders": {attribute.String("messaging.operation.type", "process"), attribute.String("messaging.client.id", "billing")},
	} {
		have := attribute.NewSet(spans[name].Attributes()...)
		for _, kv := range want {
			if v, ok := have.Value(kv.Key); !ok || v != kv.Value {
				t.Errorf("%s: %s = %v, want %v", name, kv.Key, v.String(), kv.Value.String())
			}
		}
	}
	// The attributes a sampler may decide on are there when the send span
	// starts.
	if len(rec.Started()) == 0 {
		t.Fatal("no started spans")
	}
	for _, s := range rec.Started() {
		if s.Name() != "send orders" {
			continue
		}
		have := attribute.NewSet(s.Attributes()...)
		for _, k := range []attribute.Key{"messaging.system", "messaging.operation.type", "messaging.operation.name", "messaging.destination.name"} {
			if !have.HasValue(k) {
				t.Errorf("the send span started without %s", k)
			}
		}
	}

	// Processing inside another span (say, an HTTP handler's): the process
	// span still joins the producer's trace and links to both.
	handlerCtx, handler := tp.Tracer("app").Start(ctx, "handler")
	if err := c.Process(handlerCtx, r, func(context.Context) error { return errors.New("no stock") }); err == nil {
		t.Fatal("Process lost fn's error")
	}
	handler.End()
	var failed sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "process orders" && s.Status().Code == codes.Error {
			failed = s
		}
	}
	if failed == nil {
		t.Fatal("no failed process span")
	}
	if failed.Parent().SpanID() != send.SpanContext().SpanID() || len(failed.Links()) != 2 || failed.Links()[1].SpanContext.SpanID() != handler.SpanContext().SpanID() {
		t.Errorf("process span in a handler: parent %v, links %v", failed.Parent().SpanID(), failed.Links())
	}
	if fs := attribute.NewSet(failed.Attributes()...); fs.Len() == 0 {
		t.Error("failed process span has no attributes")
	} else if v, ok := fs.Value("error.type"); !ok || v.AsString() != "process" {
		t.Errorf("failed process span: error.type %v", v)
	}
}

func keys[M ~map[string]V, V any](m M) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMetricsAndLag(t *testing.T) {
	seeds := fakeCluster(t, 1, "events")
	ctx := ctxT(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p, err := sdk.NewProducer(sdk.Bytes(), sdk.Bytes(), sdk.Brokers(seeds...), sdk.DefaultTopic("events"), sdk.MeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []sdk.Message[[]byte, []byte]
	for i := range 10 {
		msgs = append(msgs, sdk.Message[[]byte, []byte]{Value: []byte{byte(i)}})
	}
	if _, err := p.SendSync(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	c, err := sdk.NewConsumer(sdk.Bytes(), sdk.Bytes(), sdk.Brokers(seeds...), sdk.Topics("events"), sdk.FromBeginning(), sdk.MaxPollRecords(4), sdk.MeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	first := pollN(t, ctx, c, 1)
	if len(first) != 4 {
		t.Fatalf("first poll: %d records, want 4 (MaxPollRecords)", len(first))
	}
	if lag := c.Lag()["events"][0]; lag != 6 || c.RecordsLagMax() != 6 {
		t.Errorf("lag after 4 of 10: %d, max %d; want 6", lag, c.RecordsLagMax())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					got[m.Name] += dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					got[m.Name] = max(got[m.Name], dp.Value)
				}
			}
		}
	}
	want := map[string]int64{sdk.MetricSent: 10, sdk.MetricConsumed: 4, sdk.MetricLag: 6, sdk.MetricLagMax: 6}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metric %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// logBuffer is a slog handler target safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestGroupSplitsPartitionsAndWarnsWhenIdle(t *testing.T) {
	seeds := fakeCluster(t, 2, "jobs")
	ctx := ctxT(t)
	p, err := sdk.NewProducer(sdk.String(), sdk.String(), sdk.Brokers(seeds...), sdk.DefaultTopic("jobs"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var msgs []sdk.Message[string, string]
	for i := range 40 {
		msgs = append(msgs, sdk.Message[string, string]{Key: fmt.Sprint("k", i), Value: fmt.Sprint(i)})
	}
	if _, err := p.SendSync(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	logs := &logBuffer{}
	var (
		mu       sync.Mutex
		assigned = map[int]map[string][]int32{}
	)
	var consumers []*sdk.Consumer[string, string]
	for i := range 3 {
		c, err := sdk.NewConsumer(sdk.String(), sdk.String(), sdk.Brokers(seeds...), sdk.Topics("jobs"), sdk.Group("workers"), sdk.FromBeginning(), sdk.ManualCommit(),
			sdk.Logger(slog.New(slog.NewTextHandler(logs, nil))),
			sdk.OnAssigned(func(_ context.Context, m map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				if assigned[i] == nil {
					assigned[i] = map[string][]int32{}
				}
				// Cooperative rebalancing reports only what is added.
				assigned[i]["jobs"] = append(assigned[i]["jobs"], m["jobs"]...)
			}))
		if err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, c)
	}
	defer func() {
		for _, c := range consumers {
			c.Close(ctx)
		}
	}()
	// Poll all three until the 40 records are read and the group has
	// settled with all three members.
	seen := map[string]bool{}
	var wg sync.WaitGroup
	var smu sync.Mutex
	for _, c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				recs, _ := c.Poll(pctx)
				cancel()
				smu.Lock()
				for _, r := range recs {
					seen[r.Value] = true
				}
				if len(recs) > 0 {
					if err := c.Commit(ctx, recs...); err != nil {
						t.Errorf("commit: %v", err)
					}
				}
				done := len(seen) == 40 && strings.Contains(logs.String(), "more consumers than partitions")
				smu.Unlock()
				if done || ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("the group read %d of 40 records", len(seen))
	}
	if !strings.Contains(logs.String(), "consumers=3 partitions=2") {
		t.Errorf("no idle-consumer warning; logs:\n%s", logs.String())
	}
	b, err := consumers[0].Balance(ctx)
	if err != nil || b.Members != 3 || b.Partitions != 2 || !b.Idle() {
		t.Errorf("balance %+v, %v", b, err)
	}
	// Every partition was handed out by OnAssigned.
	owners := map[int32]int{}
	mu.Lock()
	for _, m := range assigned {
		for _, p := range m["jobs"] {
			owners[p]++
		}
	}
	mu.Unlock()
	if len(owners) != 2 {
		t.Errorf("OnAssigned handed out partitions %v, want both", owners)
	}

	adm, err := sdk.NewAdmin(sdk.Brokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	committed, err := adm.CommittedOffsets(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.EndOffsets(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends["jobs"] {
		if committed["jobs"][p] != end {
			t.Errorf("partition %d: committed %d, end %d", p, committed["jobs"][p], end)
		}
	}
}

func TestSeekPauseResume(t *testing.T) {
	seeds := fakeCluster(t, 1, "log")
	ctx := ctxT(t)
	p, _ := sdk.NewProducer(sdk.Bytes(), sdk.String(), sdk.Brokers(seeds...), sdk.DefaultTopic("log"))
	var msgs []sdk.Message[[]byte, string]
	for i := range 5 {
		msgs = append(msgs, sdk.Message[[]byte, string]{Value: fmt.Sprint(i)})
	}
	if _, err := p.SendSync(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	c, err := sdk.NewConsumer(sdk.Bytes(), sdk.String(), sdk.Brokers(seeds...), sdk.Partitions(map[string]map[int32]kgo.Offset{"log": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if got := pollN(t, ctx, c, 5); got[4].Value != "4" {
		t.Fatalf("read %v", got[4].Value)
	}
	c.Seek("log", 0, 3)
	if got := pollN(t, ctx, c, 2); got[0].Offset != 3 || got[0].Value != "3" {
		t.Errorf("after seek to 3: offset %d", got[0].Offset)
	}
	c.Pause("log")
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	c.Seek("log", 0, 0)
	recs, err := c.Poll(pctx)
	cancel()
	if len(recs) != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("paused poll returned %d records, %v", len(recs), err)
	}
	c.Resume("log")
	if got := pollN(t, ctx, c, 1); got[0].Offset != 0 {
		t.Errorf("after resume: offset %d", got[0].Offset)
	}
}

func TestCloseFlushes(t *testing.T) {
	seeds := fakeCluster(t, 4, "burst")
	ctx := ctxT(t)
	p, err := sdk.NewProducer(sdk.Bytes(), sdk.Bytes(), sdk.Brokers(seeds...), sdk.DefaultTopic("burst"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := 0
	for range 1000 {
		p.Send(ctx, sdk.Message[[]byte, []byte]{Value: []byte("x")}, func(d sdk.Delivery[[]byte, []byte]) {
			if d.Err == nil {
				mu.Lock()
				acked++
				mu.Unlock()
			}
		})
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if acked != 1000 {
		t.Errorf("Close returned with %d of 1000 records acknowledged", acked)
	}
}

// deliveries collects Send's deliveries.
type deliveries[K, V any] struct {
	mu  sync.Mutex
	got []sdk.Delivery[K, V]
	wg  sync.WaitGroup
}

func (d *deliveries[K, V]) done() func(sdk.Delivery[K, V]) {
	d.wg.Add(1)
	return func(dl sdk.Delivery[K, V]) {
		d.mu.Lock()
		d.got = append(d.got, dl)
		d.mu.Unlock()
		d.wg.Done()
	}
}

// A Delivery gives back the message as sent, whether the producer kept
// its typed key and value (JSON) or rebuilds them from the record (Bytes,
// String), traced or not.
func TestDeliveryCarriesTheMessage(t *testing.T) {
	seeds := fakeCluster(t, 3, "d")
	ctx := ctxT(t)
	hdr := []sdk.Header{{Key: "h", Value: []byte("v")}}
	when := time.UnixMilli(1700000000123)

	raw, err := sdk.NewProducer(sdk.Bytes(), sdk.Bytes(), sdk.Brokers(seeds...), sdk.DefaultTopic("d"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	var rd deliveries[[]byte, []byte]
	raw.Send(ctx, sdk.Message[[]byte, []byte]{Key: []byte("k1"), Value: []byte("v1"), Headers: hdr, Timestamp: when}, rd.done())
	raw.Send(ctx, sdk.Message[[]byte, []byte]{Value: []byte("v2")}, rd.done())
	rd.wg.Wait()
	for _, d := range rd.got {
		if d.Err != nil || d.Message.Topic != "d" || d.Index != 0 || d.Offset < 0 || d.Partition != d.Message.Partition {
			t.Errorf("delivery %+v", d)
		}
		switch string(d.Message.Value) {
		case "v1":
			if string(d.Message.Key) != "k1" || len(d.Message.Headers) != 1 || !d.Message.Timestamp.Equal(when) || !d.Timestamp.Equal(when) {
				t.Errorf("first message came back as %+v", d.Message)
			}
		case "v2":
			if d.Message.Key != nil || d.Message.Timestamp.IsZero() {
				t.Errorf("second message came back as %+v", d.Message)
			}
		default:
			t.Errorf("unknown value %q", d.Message.Value)
		}
	}

	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(ctx)
	typed, err := sdk.NewProducer(sdk.String(), sdk.JSON[user](), sdk.Brokers(seeds...), sdk.DefaultTopic("d"), sdk.TracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer typed.Close(ctx)
	var td deliveries[string, user]
	typed.Send(ctx, sdk.Message[string, user]{Key: "ann", Value: user{Name: "ann", Age: 7}}, td.done())
	td.wg.Wait()
	if d := td.got[0]; d.Err != nil || d.Message.Key != "ann" || d.Message.Value != (user{Name: "ann", Age: 7}) ||
		len(d.Message.Headers) != 1 || d.Message.Headers[0].Key != "traceparent" {
		t.Errorf("typed, traced delivery %+v", d)
	}

	// String keys are rebuilt from the record, for Send and SendBatch.
	str, err := sdk.NewProducer(sdk.String(), sdk.String(), sdk.Brokers(seeds...), sdk.DefaultTopic("d"))
	if err != nil {
		t.Fatal(err)
	}
	defer str.Close(ctx)
	ds, err := str.SendSync(ctx, sdk.Message[string, string]{Key: "a", Value: "1"}, sdk.Message[string, string]{Value: "2"}, sdk.Message[string, string]{Key: "c", Value: "3"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a", "", "c"} {
		if ds[i].Index != i || ds[i].Message.Key != want || ds[i].Message.Value != fmt.Sprint(i+1) {
			t.Errorf("batch delivery %d: %+v", i, ds[i])
		}
	}
}

// A traced message's traceparent goes into a headers slice of its own:
// messages sharing the caller's slice (with room to spare) each keep
// their own trace, and the caller's slice is left as it was.
func TestTraceHeaderLeavesTheCallersSlice(t *testing.T) {
	seeds := fakeCluster(t, 1, "h")
	ctx := ctxT(t)
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(ctx)
	p, err := sdk.NewProducer(sdk.String(), sdk.String(), sdk.Brokers(seeds...), sdk.DefaultTopic("h"), sdk.TracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	shared := make([]sdk.Header, 1, 8)
	shared[0] = sdk.Header{Key: "app", Value: []byte("x")}
	msgs := []sdk.Message[string, string]{{Value: "1", Headers: shared}, {Value: "2", Headers: shared}}
	ds, err := p.SendSync(ctx, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	if spare := shared[:cap(shared)]; spare[1].Key != "" {
		t.Errorf("the producer wrote into the caller's headers: %v", spare[:2])
	}
	var tps []string
	for _, d := range ds {
		hs := d.Message.Headers
		if len(hs) != 2 || hs[0].Key != "app" || hs[1].Key != "traceparent" {
			t.Fatalf("headers %v", hs)
		}
		tps = append(tps, string(hs[1].Value))
	}
	if tps[0] == tps[1] {
		t.Errorf("two messages carry one traceparent %s", tps[0])
	}
}

// A send that fails says why on its span (error.type) and in the sent
// metric, as the messaging conventions ask.
func TestFailedSendTelemetry(t *testing.T) {
	seeds := fakeCluster(t, 1, "exists")
	ctx := ctxT(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p, err := sdk.NewProducer(sdk.Bytes(), sdk.Bytes(), sdk.Brokers(seeds...), sdk.TracerProvider(tp), sdk.MeterProvider(mp),
		sdk.DeliveryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	_, err = p.SendSync(ctx, sdk.Message[[]byte, []byte]{Topic: "missing", Value: []byte("v")}, sdk.Message[[]byte, []byte]{Topic: "exists", Value: []byte("v")})
	if err == nil {
		t.Fatal("a send to a missing topic succeeded")
	}
	var errType string
	for _, s := range rec.Ended() {
		if s.Name() != "send missing" {
			continue
		}
		if s.Status().Code != codes.Error {
			t.Errorf("status %v", s.Status())
		}
		for _, kv := range s.Attributes() {
			if kv.Key == "error.type" {
				errType = kv.Value.AsString()
			}
		}
	}
	t.Logf("the failed send ended with error.type %s", errType)
	if errType == "" || errType == "_OTHER" {
		t.Errorf("the failed send span's error.type is %q", errType)
	}
	counts := sumsByErrorType(t, ctx, reader)
	if counts[sdk.MetricSent+" "] != 1 || counts[sdk.MetricSent+" "+errType] != 1 || counts[sdk.MetricErrors+" send"] != 1 {
		t.Errorf("counts by error.type: %v, want 1 sent, 1 failed with %s", counts, errType)
	}
}

// sumsByErrorType collects reader's counters, summed by metric name and
// error.type ("name" plus a space plus the type, empty when none). Every
// data point of the SDK's counters must carry messaging.operation.name.
func sumsByErrorType(t *testing.T, ctx context.Context, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			d, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range d.DataPoints {
				if !dp.Attributes.HasValue("messaging.operation.name") {
					t.Errorf("%s data point without messaging.operation.name: %v", m.Name, dp.Attributes.ToSlice())
				}
				et, _ := dp.Attributes.Value("error.type")
				out[m.Name+" "+et.AsString()] += dp.Value
			}
		}
	}
	return out
}

// OnRevoked runs when a rebalance takes partitions away: here when a
// second consumer joins and gets one of the first one's two partitions.
// OnAssigned tells the newcomer what it got.
func TestRebalanceCallbacks(t *testing.T) {
	seeds := fakeCluster(t, 2, "work")
	ctx := ctxT(t)
	type event struct {
		who, what string
		parts     []int32
	}
	events := make(chan event, 16)
	consumer := func(who string) *sdk.Consumer[string, string] {
		c, err := sdk.NewConsumer(sdk.String(), sdk.String(), sdk.Brokers(seeds...), sdk.Topics("work"), sdk.Group("crew"),
			sdk.OnAssigned(func(_ context.Context, m map[string][]int32) { events <- event{who, "assigned", m["work"]} }),
			sdk.OnRevoked(func(_ context.Context, m map[string][]int32) { events <- event{who, "revoked", m["work"]} }))
		if err != nil {
			t.Fatal(err)
		}
		// Poll in the background: a group member does its group work as
		// it polls.
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for pctx.Err() == nil {
				c.Poll(pctx)
			}
		}()
		t.Cleanup(func() {
			cancel()
			<-done
			c.Close(context.Background())
		})
		return c
	}
	next := func(want string) event {
		t.Helper()
		select {
		case e := <-events:
			if e.who+" "+e.what != want {
				t.Fatalf("event %s %s %v, want %s", e.who, e.what, e.parts, want)
			}
			return e
		case <-ctx.Done():
			t.Fatalf("no %s", want)
		}
		return event{}
	}
	consumer("a")
	if e := next("a assigned"); len(e.parts) != 2 {
		t.Fatalf("a alone got %v, want both partitions", e.parts)
	}
	consumer("b")
	revoked := next("a revoked")
	if len(revoked.parts) != 1 {
		t.Fatalf("a lost %v, want one partition", revoked.parts)
	}
	// Cooperative rebalancing: b gets what a gave up.
	if e := next("b assigned"); len(e.parts) != 1 || e.parts[0] != revoked.parts[0] {
		t.Errorf("b got %v, a gave up %v", e.parts, revoked.parts)
	}
}
