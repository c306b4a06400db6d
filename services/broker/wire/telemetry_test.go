package wire

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTelemetry checks a span per request named after its API and the
// request counter, latency histogram and byte counters by API.
func TestTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	s, err := New(Params{Config: Config{Listen: "127.0.0.1:0"}, Handler: &testHandler{release: make(chan struct{})},
		TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for i := int32(0); i < 3; i++ {
		writeReq(t, c, kmsg.NewPtrMetadataRequest(), i)
		readCorr(t, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(spans.Ended()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ended := spans.Ended()
	if len(ended) != 3 || ended[0].Name() != "Metadata" {
		t.Fatalf("%d spans, first %q", len(ended), ended[0].Name())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			found[m.Name] = true
			if m.Name == "runnel.broker.requests" {
				sum := m.Data.(metricdata.Sum[int64])
				for _, dp := range sum.DataPoints {
					if v, _ := dp.Attributes.Value(attribute.Key("kafka.api")); v.AsString() == "Metadata" && dp.Value != 3 {
						t.Fatalf("Metadata requests counted %d, want 3", dp.Value)
					}
				}
			}
		}
	}
	for _, name := range []string{"runnel.broker.requests", "runnel.broker.request.duration", "runnel.broker.bytes.in", "runnel.broker.bytes.out", "runnel.broker.connections"} {
		if !found[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}
