package wire

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// instrumentation is the scope name of the broker's wire telemetry.
const instrumentation = "github.com/runnel-io/runnel/services/broker/wire"

// maxKey bounds the API keys with precomputed attributes; kmsg knows fewer.
const maxKey = 128

// telemetry holds the instruments of the connection loop. Attribute sets are
// built once per API key, so recording allocates nothing per request.
type telemetry struct {
	tracer      trace.Tracer
	requests    metric.Int64Counter
	duration    metric.Float64Histogram
	bytesIn     metric.Int64Counter
	bytesOut    metric.Int64Counter
	connections metric.Int64UpDownCounter

	byKey    [maxKey]metric.MeasurementOption
	spanOpts [maxKey][]trace.SpanStartOption
	names    [maxKey]string
	none     metric.MeasurementOption
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	m := mp.Meter(instrumentation)
	t := &telemetry{tracer: tp.Tracer(instrumentation)}
	var err error
	if t.requests, err = m.Int64Counter("runnel.broker.requests", metric.WithDescription("Kafka requests served, by API"), metric.WithUnit("{request}")); err != nil {
		return nil, fmt.Errorf("wire: metrics: %w", err)
	}
	if t.duration, err = m.Float64Histogram("runnel.broker.request.duration", metric.WithDescription("time from reading a request to queueing its response, by API"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, fmt.Errorf("wire: metrics: %w", err)
	}
	if t.bytesIn, err = m.Int64Counter("runnel.broker.bytes.in", metric.WithDescription("request bytes received, by API"), metric.WithUnit("By")); err != nil {
		return nil, fmt.Errorf("wire: metrics: %w", err)
	}
	if t.bytesOut, err = m.Int64Counter("runnel.broker.bytes.out", metric.WithDescription("response bytes sent, by API"), metric.WithUnit("By")); err != nil {
		return nil, fmt.Errorf("wire: metrics: %w", err)
	}
	if t.connections, err = m.Int64UpDownCounter("runnel.broker.connections", metric.WithDescription("open client connections"), metric.WithUnit("{connection}")); err != nil {
		return nil, fmt.Errorf("wire: metrics: %w", err)
	}
	for k := range maxKey {
		name := kmsg.NameForKey(int16(k))
		t.names[k] = name
		attrs := []attribute.KeyValue{
			attribute.String("messaging.system", "kafka"),
			attribute.String("kafka.api", name),
			attribute.Int("kafka.api_key", k),
		}
		t.byKey[k] = metric.WithAttributeSet(attribute.NewSet(attrs...))
		t.spanOpts[k] = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...)}
	}
	t.none = metric.WithAttributeSet(attribute.NewSet(attribute.String("messaging.system", "kafka")))
	return t, nil
}

func keyIndex(k int16) int {
	if k < 0 || int(k) >= maxKey {
		return maxKey - 1
	}
	return int(k)
}

// start opens the request's span, named after its API ("Produce",
// "Fetch", ...): the server side of the clients' messaging spans.
func (t *telemetry) start(ctx context.Context, h Header) (context.Context, trace.Span) {
	k := keyIndex(h.Key)
	return t.tracer.Start(ctx, t.names[k], t.spanOpts[k]...)
}

func (t *telemetry) finish(r *Request, out int) {
	k := keyIndex(r.Key)
	ctx := context.Background()
	t.requests.Add(ctx, 1, t.byKey[k])
	t.duration.Record(ctx, time.Since(r.Received).Seconds(), t.byKey[k])
	t.bytesIn.Add(ctx, int64(r.size), t.byKey[k])
	if out > 0 {
		t.bytesOut.Add(ctx, int64(out), t.byKey[k])
	}
	if r.Span != nil {
		if r.err != nil {
			r.Span.RecordError(r.err)
		}
		r.Span.End()
	}
}

func (t *telemetry) connOpened(ctx context.Context) { t.connections.Add(ctx, 1, t.none) }
func (t *telemetry) connClosed(ctx context.Context) { t.connections.Add(ctx, -1, t.none) }
