package simple_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"

	simple "example.com/runnel-storage-simple"
)

// The test binary doubles as the plugin: when a host starts it (as the
// process tests below do, with os.Args[0]), it serves the backend.
func TestMain(m *testing.M) { conformance.Main(m, simple.Plugin) }

// Linked in: the contract itself, fastest to debug.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Backend { return simple.New() })
}

// Over a real gRPC connection in this process: the protocol, with the
// race detector seeing both sides.
func TestConformanceGRPC(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Backend { return storage.TestConn(t, simple.Plugin, -1) })
}

// As a plugin process, killed with SIGKILL under load too. Add
// conformance.Persistent() once your backend keeps its data across
// processes: the suite then also checks that nothing acknowledged is lost.
func TestConformanceProcess(t *testing.T) {
	conformance.RunProcess(t, os.Args[0])
}

// As the broker loads it: the binary runnel-storage-simple found by name
// on the plugin path.
func TestLoadsByName(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, plugin.BinaryName(plugin.KindStorage, "simple"))
	build := exec.Command("go", "build", "-o", bin, "./cmd/runnel-storage-simple")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building the plugin: %v", err)
	}
	path, name, err := storage.FindPlugin("simple", plugin.Search{Path: []string{dir}, Executable: "/nonexistent/runnel-broker"})
	if err != nil || path != bin || name != "simple" {
		t.Fatalf("FindPlugin: %s %s %v", path, name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := storage.StartProcess(ctx, storage.ProcessConfig{Path: path, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != "simple" || b.Info().Version != simple.Version {
		t.Fatalf("the plugin describes itself as %+v", b.Info())
	}
	d, err := plugin.Describe(ctx, bin)
	if err != nil || d.Name != "simple" || d.Kind != plugin.KindStorage {
		t.Fatalf("%s describe: %+v %v", bin, d, err)
	}
	l, err := b.Open(ctx, storage.PartitionID{Topic: "t", Partition: 0}, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, conformance.Batch(0, time.Now().UnixMilli(), []byte("hello"))); err != nil || l.EndOffset() != 1 {
		t.Fatalf("Append: %v (end %d)", err, l.EndOffset())
	}
}
