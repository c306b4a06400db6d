package sdk

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the tracer and meter of this package.
const instrumentationName = "github.com/runnel-io/runnel/sdk"

// Metric names. The counters follow the messaging semantic conventions;
// lag has no convention yet, so it takes Kafka's own names under runnel.
const (
	MetricSent     = "messaging.client.sent.messages"
	MetricConsumed = "messaging.client.consumed.messages"
	MetricErrors   = "runnel.client.errors"
	MetricLag      = "runnel.consumer.records_lag"
	MetricLagMax   = "runnel.consumer.records_lag_max"
)

// telemetry holds one client's tracer, instruments and attribute sets.
type telemetry struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	clientID   string
	group      string
	// op is the client's messaging.operation.name on its metrics: "send"
	// or "poll".
	op string

	sent, consumed, errors metric.Int64Counter

	// active is whether the tracer records or samples (see tracing).
	active bool
	// counting is whether the meter provider records measurements,
	// probed once like the tracer: with none installed, each Add is an
	// interface call and an atomic load for nothing.
	counting bool

	// sets caches the measurement options of each topic, so counting a
	// record allocates nothing.
	sets sync.Map // string -> *topicInfo
	last atomic.Pointer[topicInfo]
}

func newTelemetry(c *cfg, op string) (*telemetry, error) {
	t := &telemetry{
		tracer:     c.tracer.Tracer(instrumentationName),
		propagator: c.propagator,
		clientID:   c.clientID,
		group:      c.group,
		op:         op,
	}
	t.probe()
	m := c.meter.Meter(instrumentationName)
	var err error
	if t.sent, err = m.Int64Counter(MetricSent, metric.WithUnit("{message}"), metric.WithDescription("Records the producer tried to send; error.type is set on those the cluster did not store.")); err != nil {
		return nil, err
	}
	if t.consumed, err = m.Int64Counter(MetricConsumed, metric.WithUnit("{message}"), metric.WithDescription("Records returned by Poll; error.type is set on those that could not be decoded.")); err != nil {
		return nil, err
	}
	if t.errors, err = m.Int64Counter(MetricErrors, metric.WithUnit("{error}"), metric.WithDescription("Failed sends, fetches and decodes, by error.type.")); err != nil {
		return nil, err
	}
	t.counting = t.errors.Enabled(context.Background())
	return t, nil
}

// countSent counts a record whose send ended, with err.
func (t *telemetry) countSent(topic string, err error) {
	if !t.counting {
		return
	}
	if err == nil {
		t.sent.Add(context.Background(), 1, t.topic(topic).opts)
		return
	}
	t.sent.Add(context.Background(), 1, t.failedOpts(topic, errorType(err)))
}

// countConsumed counts n records of topic returned by Poll; failed is
// how many of them could not be decoded.
func (t *telemetry) countConsumed(ctx context.Context, topic string, n, failed int64) {
	if !t.counting {
		return
	}
	if ok := n - failed; ok > 0 {
		t.consumed.Add(ctx, ok, t.topic(topic).opts)
	}
	if failed > 0 {
		t.consumed.Add(ctx, failed, t.failedOpts(topic, "deserialize"))
	}
}

// failedOpts are the attributes of topic's records that failed with
// errType (built each time: failures are rare).
func (t *telemetry) failedOpts(topic, errType string) metric.MeasurementOption {
	return metric.WithAttributes(append(t.baseAttrs(topic), semconv.ErrorTypeKey.String(errType))...)
}

// baseAttrs are the attributes of every measurement about topic.
func (t *telemetry) baseAttrs(topic string) []attribute.KeyValue {
	kv := []attribute.KeyValue{semconv.MessagingSystemKafka, semconv.MessagingOperationName(t.op), semconv.MessagingDestinationName(topic)}
	if t.group != "" {
		kv = append(kv, semconv.MessagingConsumerGroupName(t.group))
	}
	return kv
}

// topicInfo is what telemetry needs per topic, built once.
type topicInfo struct {
	name string
	opts metric.MeasurementOption // the topic's attributes
	send string                   // the send span's name
	// sendStart starts a send span: its kind, and the attributes the
	// semantic conventions want at creation, where samplers see them.
	sendStart []trace.SpanStartOption
}

func (t *telemetry) topic(topic string) *topicInfo {
	// Most producers write one topic: skip the map for the last one seen.
	if ti := t.last.Load(); ti != nil && ti.name == topic {
		return ti
	}
	if s, ok := t.sets.Load(topic); ok {
		t.last.Store(s.(*topicInfo))
		return s.(*topicInfo)
	}
	ti := &topicInfo{name: topic, opts: metric.WithAttributeSet(attribute.NewSet(t.baseAttrs(topic)...)), send: "send " + topic,
		sendStart: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(topic),
		)}}
	s, _ := t.sets.LoadOrStore(topic, ti)
	t.last.Store(s.(*topicInfo))
	return s.(*topicInfo)
}

// countError counts a failure of kind (send, serialize, fetch,
// deserialize, process) about topic.
func (t *telemetry) countError(ctx context.Context, topic, kind string) {
	t.errors.Add(ctx, 1, t.failedOpts(topic, kind))
}

// startSend starts the "send T" span of a record and writes its trace
// context into the record's headers, in th (or a new traceHeader) when
// the record has none. It returns the context for the record and whether
// the span records, hence must be ended when the record's fate is known:
// a span that does not record (not sampled) is ended at once, its
// context still propagated. Call it only when tracing(ctx).
func (t *telemetry) startSend(ctx context.Context, r *kgo.Record, th *traceHeader) (context.Context, bool) {
	ti := t.topic(r.Topic)
	sctx, span := t.tracer.Start(ctx, ti.send, ti.sendStart...)
	if !span.SpanContext().IsValid() {
		// Nothing to propagate or record; keep the caller's context.
		span.End()
		return ctx, false
	}
	if th == nil && len(r.Headers) == 0 {
		th = new(traceHeader)
	}
	var c *headerCarrier
	if th != nil {
		c = &th.carrier
		*c = headerCarrier{r: r, th: th}
	} else {
		c = &headerCarrier{r: r}
	}
	t.propagator.Inject(sctx, c)
	if !span.IsRecording() {
		span.End()
		return sctx, false
	}
	return sctx, true
}

// tracing reports whether a send span is worth starting: when the caller's
// context carries a span, always (its trace must continue through the
// record's headers); otherwise only when the tracer records or samples.
//
// Starting a span on OpenTelemetry's global tracer with no SDK installed
// still allocates three objects, about a fifth of the produce path, so
// the tracer is probed instead when the client is made (DESIGN: only main
// installs SDK providers, before it makes clients). The probe span is
// never ended, hence never exported.
//
// Looking for a span in the context costs a tenth of the produce path,
// so the contexts that cannot hold one, Background and TODO, are known
// by comparison (which cannot panic: it compares the dynamic types first).
func (t *telemetry) tracing(ctx context.Context) bool {
	if t.active {
		return true
	}
	if ctx == context.Background() || ctx == context.TODO() {
		return false
	}
	return trace.SpanContextFromContext(ctx).IsValid()
}

func (t *telemetry) probe() {
	_, span := t.tracer.Start(context.Background(), "runnel.sdk.probe")
	t.active = span.SpanContext().IsValid() || span.IsRecording()
}

// endSend finishes the send span in ctx with the record's fate. The
// attributes known only now (and those no sampler needs) are set here, in
// one call: each call grows the span's attributes.
func endSend(ctx context.Context, clientID string, r *kgo.Record, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs, semconv.MessagingClientID(clientID), semconv.MessagingMessageBodySize(len(r.Value)))
	if r.Key != nil {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(r.Key)))
	}
	if r.Value == nil {
		attrs = append(attrs, semconv.MessagingKafkaMessageTombstone(true))
	}
	if err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(err)))
		span.SetAttributes(attrs...)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		attrs = append(attrs,
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
			semconv.MessagingKafkaOffset(int(r.Offset)),
		)
		span.SetAttributes(attrs...)
	}
	span.End()
}

// errorType is the error.type of a failed send or fetch: the Kafka
// error's name (kerr), else a name for the client's own failures.
func errorType(err error) string {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Message
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, kgo.ErrRecordRetries):
		return "retries_exhausted"
	case errors.Is(err, kgo.ErrMaxBuffered):
		return "buffer_full"
	case errors.Is(err, kgo.ErrClientClosed):
		return "client_closed"
	}
	return "_OTHER"
}

// producerContext returns the span context a record's headers carry, as
// a remote parent; c is a carrier to reuse.
func (t *telemetry) producerContext(c *headerCarrier, r *kgo.Record) trace.SpanContext {
	*c = headerCarrier{r: r}
	ctx := t.propagator.Extract(context.Background(), c)
	return trace.SpanContextFromContext(ctx)
}

// traceHeader holds a record's trace header when the record had no
// headers: in the message's state, so injecting it allocates nothing.
type traceHeader struct {
	hdr [1]kgo.RecordHeader
	val [64]byte // a traceparent is 55 bytes
	// carrier is the record's carrier, here so that handing it to the
	// propagator (an interface) allocates nothing either.
	carrier headerCarrier
}

// headerCarrier reads and writes trace context in a record's headers. It
// never writes into the headers slice the record came with, which
// belongs to the caller (and may be shared by many messages): Set makes
// a new one.
type headerCarrier struct {
	r  *kgo.Record
	th *traceHeader // may be nil
}

func (c *headerCarrier) Get(key string) string {
	for _, h := range c.r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c *headerCarrier) Set(key, value string) {
	hs := c.r.Headers
	if len(hs) == 0 && c.th != nil && len(value) <= len(c.th.val) {
		c.th.hdr[0] = kgo.RecordHeader{Key: key, Value: append(c.th.val[:0], value...)}
		c.r.Headers = c.th.hdr[:1:1]
		c.th = nil
		return
	}
	out := make([]kgo.RecordHeader, len(hs), len(hs)+1)
	copy(out, hs)
	for i := range out {
		if out[i].Key == key {
			out[i].Value = []byte(value)
			c.r.Headers = out
			return
		}
	}
	c.r.Headers = append(out, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

func (c *headerCarrier) Keys() []string {
	out := make([]string, len(c.r.Headers))
	for i, h := range c.r.Headers {
		out[i] = h.Key
	}
	return out
}
