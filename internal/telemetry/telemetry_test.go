package telemetry

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func TestMetricsServed(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	p, err := New(context.Background(), "runnel-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	c, err := p.MeterProvider.Meter("test").Int64Counter("runnel.test.things", metric.WithDescription("things"))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"runnel_test_things_total", `service_name="runnel-test"`, "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if _, ok := p.TracerProvider.(*sdktrace.TracerProvider); !ok {
		t.Fatalf("tracer provider %T, want the SDK's", p.TracerProvider)
	}
}

func TestOTLPChosenByEnvironment(t *testing.T) {
	for _, proto := range []string{"", "grpc", "http/protobuf"} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
		exp, err := traceExporter(context.Background())
		if err != nil || exp == nil {
			t.Fatalf("protocol %q: exporter %v, err %v", proto, exp, err)
		}
		_ = exp.Shutdown(context.Background())
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	if _, err := traceExporter(context.Background()); err == nil || !strings.Contains(err.Error(), "grpc or http/protobuf") {
		t.Fatalf("unknown protocol: %v", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	if exp, err := traceExporter(context.Background()); exp != nil || err != nil {
		t.Fatalf("no endpoint: %v %v", exp, err)
	}
}

func TestDisabled(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	p, err := New(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.TracerProvider.(tracenoop.TracerProvider); !ok {
		t.Fatalf("tracer provider %T, want no-op", p.TracerProvider)
	}
}

// TestSamplingFollowsExport: spans are sampled only when they are exported.
func TestSamplingFollowsExport(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	for endpoint, sampled := range map[string]bool{"": false, "http://127.0.0.1:1": true} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
		p, err := New(context.Background(), "runnel-test")
		if err != nil {
			t.Fatal(err)
		}
		_, span := p.TracerProvider.Tracer("t").Start(context.Background(), "s")
		if got := span.SpanContext().IsSampled(); got != sampled || span.IsRecording() != sampled {
			t.Errorf("endpoint %q: sampled %v recording %v, want %v", endpoint, got, span.IsRecording(), sampled)
		}
		span.End()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = p.Shutdown(ctx)
		cancel()
	}
}
