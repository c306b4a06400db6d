package api

import (
	"context"
	"encoding/binary"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/services/broker/replica"
	"github.com/runnel-io/runnel/services/broker/wire"
)

// appendInstrumentation is the scope of the per-partition append spans.
const appendInstrumentation = "github.com/runnel-io/runnel/services/broker/api"

// recordPropagator reads the W3C trace context that producers (the SDK,
// OpenTelemetry's Kafka instrumentations) write into record headers.
var recordPropagator = propagation.TraceContext{}

// batchDecompressor opens compressed batches to read their first record's
// headers; only sampled requests pay for it.
var batchDecompressor = kgo.DefaultDecompressor()

// startAppend starts the span of one partition's append ("append T"). Its
// parent is the producer's send span, whose trace context the batch's
// first record carries, so one trace runs from the producer through the
// broker and its storage call to the consumers; it links to the Produce
// request's span, which sits in a trace of its own. Without trace context
// in the batch it is a child of the request's span. Requests whose span is
// not sampled get no span and no header parsing.
func startAppend(ctx context.Context, r *wire.Request, topic string, partition int32, records []byte) (context.Context, trace.Span) {
	if r.Span == nil || !r.Span.SpanContext().IsSampled() {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.destination.name", topic),
		attribute.String("messaging.destination.partition.id", strconv.Itoa(int(partition))),
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	parent, count := batchTraceContext(records)
	if count > 0 {
		attrs = append(attrs, attribute.Int("messaging.batch.message_count", count))
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: r.Span.SpanContext()}))
	}
	opts = append(opts, trace.WithAttributes(attrs...))
	return r.Span.TracerProvider().Tracer(appendInstrumentation).Start(ctx, "append "+topic, opts...)
}

// endAppend records the append's outcome on its span.
func endAppend(span trace.Span, baseOffset int64, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.Int64("messaging.kafka.offset", baseOffset))
	}
	span.End()
}

// startReplicate starts the span of an acks=all produce's wait for the ISR
// ("replicate T"), a child of the partition's append span (ctx), when the
// request is sampled.
func startReplicate(ctx context.Context, r *wire.Request, p *replica.Partition, res replica.AppendResult) trace.Span {
	if r.Span == nil || !r.Span.SpanContext().IsSampled() {
		return nil
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = trace.ContextWithSpan(ctx, r.Span)
	}
	st := p.State()
	_, span := r.Span.TracerProvider().Tracer(appendInstrumentation).Start(ctx, "replicate "+p.ID().Topic,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(
			attribute.String("messaging.destination.name", p.ID().Topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(int(p.ID().Partition))),
			attribute.Int64("runnel.replica.last_offset", res.LastOffset),
			attribute.Int("runnel.replica.isr_size", len(st.ISR)),
		))
	return span
}

// endReplicate records the wait's outcome.
func endReplicate(span trace.Span, p *replica.Partition, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int64("runnel.replica.high_watermark", p.HighWatermark()))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// batchTraceContext returns the trace context in the headers of the first
// record of a v2 batch (decompressing it if need be) and the batch's record
// count. A batch that does not parse has none: ValidateProduce reports it.
func batchTraceContext(batch []byte) (trace.SpanContext, int) {
	var b kmsg.RecordBatch
	if err := b.ReadFrom(batch); err != nil || b.Magic != 2 || b.NumRecords < 1 {
		return trace.SpanContext{}, 0
	}
	recs := b.Records
	if codec := kgo.CompressionCodecType(b.Attributes & 0x07); codec != kgo.CodecNone {
		var err error
		if recs, err = batchDecompressor.Decompress(recs, codec); err != nil {
			return trace.SpanContext{}, int(b.NumRecords)
		}
	}
	length, n := binary.Varint(recs)
	if n <= 0 || length < 0 || length > int64(len(recs)-n) {
		return trace.SpanContext{}, int(b.NumRecords)
	}
	var rec kmsg.Record
	if err := rec.ReadFrom(recs[:n+int(length)]); err != nil {
		return trace.SpanContext{}, int(b.NumRecords)
	}
	ctx := recordPropagator.Extract(context.Background(), headerCarrier(rec.Headers))
	return trace.SpanContextFromContext(ctx), int(b.NumRecords)
}

// headerCarrier reads trace context from record headers.
type headerCarrier []kmsg.Header

func (h headerCarrier) Get(key string) string {
	for _, x := range h {
		if x.Key == key {
			return string(x.Value)
		}
	}
	return ""
}

func (h headerCarrier) Set(string, string) {}

func (h headerCarrier) Keys() []string {
	out := make([]string, len(h))
	for i, x := range h {
		out[i] = x.Key
	}
	return out
}
