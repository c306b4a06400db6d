package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

// traceBackend records, on each Flush, the trace id its call carries, in
// the file "trace" of the partition's Config.Dir: how a test outside the
// plugin process sees what the plugin saw.
type traceBackend struct{}

func (traceBackend) Name() string { return "trace" }
func (traceBackend) Open(_ context.Context, _ storage.PartitionID, cfg storage.Config) (storage.Log, error) {
	return &traceLog{dir: cfg.Dir}, nil
}
func (traceBackend) Delete(context.Context, storage.PartitionID) error { return nil }
func (traceBackend) Close() error                                      { return nil }

type traceLog struct {
	countingLog
	dir string
}

func (l *traceLog) Flush(ctx context.Context) error {
	id := trace.SpanContextFromContext(ctx).TraceID()
	return os.WriteFile(filepath.Join(l.dir, "trace"), []byte(id.String()), 0o644)
}

var tracePlugin = storage.Plugin{
	Info: plugin.Description{Name: "trace", Version: "0"},
	New:  func() (storage.Backend, error) { return traceBackend{}, nil },
}

// The test binary doubles as the trace plugin.
func TestMain(m *testing.M) { conformance.Main(m, tracePlugin) }

// TestTraceContextCrossesTheBoundary checks that a call's trace context
// reaches the backend, over the in-process gRPC connection and in a plugin
// process, through OpenTelemetry's gRPC instrumentation on both sides.
func TestTraceContextCrossesTheBoundary(t *testing.T) {
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), parent)
	for name, b := range map[string]*storage.PluginBackend{
		"grpc":    storage.TestConn(t, tracePlugin, -1),
		"process": conformance.StartProcess(t, os.Args[0], -1),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := b.Open(ctx, storage.PartitionID{Topic: "t", Partition: 0}, storage.Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "trace"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != parent.TraceID().String() {
				t.Fatalf("the plugin saw trace %q, the caller's is %s", got, parent.TraceID())
			}
		})
	}
}
