package monitor

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/runnel-io/runnel/services/lagmon/config"
)

// TestHTTPSpans: an API request gets a server span named after its route;
// the Prometheus scrape and the health endpoints get none.
func TestHTTPSpans(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	cfg, err := config.Parse("[cluster.local]\nservers = [\"" + fake.ListenAddrs()[0] + "\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	m, err := New(cfg, Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Stop(ctx)
	}()
	for _, path := range []string{"/metrics", "/burrow/admin", "/burrow/admin/ready", "/v3/kafka/local/consumer/billing/lag", "/v3/kafka"} {
		resp, err := http.Get("http://" + m.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	want := []string{"GET /v3/kafka", "GET /v3/kafka/{cluster}/consumer/{group}/lag"}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("spans %q, want %q", names, want)
	}
}
