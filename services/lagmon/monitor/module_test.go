package monitor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/fx"

	"github.com/runnel-io/runnel/internal/telemetry"
	"github.com/runnel-io/runnel/services/lagmon/config"
)

func TestFlagsLoad(t *testing.T) {
	f := Flags{ClusterName: "dev", BootstrapServer: "127.0.0.1:9092, 127.0.0.1:9093", OffsetRefresh: time.Second, Intervals: 4}
	cfg, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Clusters["dev"]
	if len(c.Servers) != 2 || c.Servers[1] != "127.0.0.1:9093" || c.OffsetRefresh.Duration != time.Second || cfg.Storage.Intervals != 4 || c.OffsetsSource != config.SourceAuto {
		t.Fatalf("cluster %+v, storage %+v", c, cfg.Storage)
	}
	if cfg, err = (&Flags{ClusterName: "ev", NATSURL: "nats://127.0.0.1:4222"}).Load(); err != nil || cfg.Clusters["ev"].OffsetsSource != config.SourceNone {
		t.Fatalf("nats only: %v %v", cfg, err)
	}
	if _, err := (&Flags{}).Load(); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("no cluster: %v", err)
	}
	// A file plus a flag cluster: both are monitored.
	p := filepath.Join(t.TempDir(), "lagmon.toml")
	if err := os.WriteFile(p, []byte("[cluster.prod]\nservers=[\"10.0.0.1:9092\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = (&Flags{ConfigFile: p, ClusterName: "local", BootstrapServer: "127.0.0.1:9092"}).Load()
	if err != nil || len(cfg.Clusters) != 2 {
		t.Fatalf("file + flags: %v %v", cfg, err)
	}
	if _, err := (&Flags{ConfigFile: p + ".missing"}).Load(); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestModule runs lagmon the way runnel-lagmon does: the fx module over the
// service's telemetry, against a kfake cluster.
func TestModule(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	f := Flags{Listen: "127.0.0.1:0", ClusterName: "local", BootstrapServer: fake.ListenAddrs()[0], OffsetRefresh: 100 * time.Millisecond}
	var m *Monitor
	app := fx.New(fx.NopLogger, fx.Supply(slog.New(slog.NewTextHandler(io.Discard, nil))), telemetry.Module("lagmon-test"), Module(&f), fx.Populate(&m))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Stop(ctx)
	base := "http://" + m.Addr()
	for !m.Ready() {
		if ctx.Err() != nil {
			t.Fatal("never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for path, want := range map[string]string{
		"/burrow/admin":         "GOOD",
		"/v3/kafka":             `"clusters":["local"]`,
		"/v3/kafka/local/topic": `"orders"`,
		"/metrics":              "go_goroutines",
		"/dashboard/":           "<svg",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %.200s", path, resp.StatusCode, b)
		}
	}
}
