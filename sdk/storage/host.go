package storage

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage/storagev1"
)

// DefaultTailCacheBytes is the tail cache each partition of a plugin
// process gets unless ProcessConfig says otherwise: enough for the batches
// consumers and followers that keep up ask for.
const DefaultTailCacheBytes = 8 << 20

// ProcessConfig configures StartProcess.
type ProcessConfig struct {
	// Path is the plugin binary.
	Path string
	// Name is the name the binary must answer Describe with; empty accepts
	// whatever it says.
	Name string
	// TailCacheBytes is each partition's tail cache (NewTailCache); zero
	// means DefaultTailCacheBytes, a negative value no cache.
	TailCacheBytes int
	// Backoff is the restart policy after a crash; zero means
	// plugin.DefaultBackoff.
	Backoff plugin.Backoff
	// Logger receives go-plugin's and the plugin's log lines; nil means
	// warnings and errors on stderr.
	Logger hclog.Logger
}

// StartProcess starts a storage plugin binary and returns it as a Backend.
// The process is supervised: when it dies, the calls in flight fail with
// ErrUnavailable, and the next call (or a background restart the failure
// triggers) starts it again after a backoff, reopens every open log, and
// proceeds. Close stops it.
func StartProcess(ctx context.Context, cfg ProcessConfig) (*PluginBackend, error) {
	b := &PluginBackend{logs: map[*remoteLog]struct{}{}, cacheBytes: cacheBytes(cfg.TailCacheBytes)}
	first := true // Init runs under the supervisor's lock, one start at a time
	name := cfg.Name
	if name == "" {
		name = strings.TrimPrefix(filepath.Base(cfg.Path), plugin.BinaryName(plugin.KindStorage, ""))
	}
	proc, err := plugin.Start(ctx, plugin.ProcessConfig[*client]{
		Kind: plugin.KindStorage, Name: name, Path: cfg.Path,
		Client:   func() *goplugin.ClientConfig { return clientConfig(cfg.Path) },
		Dispense: pluginKey,
		Init: func(ctx context.Context, c *client) error {
			d, err := c.describe(ctx)
			if err != nil {
				return fmt.Errorf("describe: %w", err)
			}
			if cfg.Name != "" && d.Name != cfg.Name {
				return fmt.Errorf("the binary says it is %q, not %q", d.Name, cfg.Name)
			}
			if first {
				// Later starts must not write b.info under readers' feet.
				b.info, first = d, false
			}
			b.reopenAll(ctx, c)
			return nil
		},
		Backoff: cfg.Backoff,
		Logger:  cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("storage plugin %s: %w", cfg.Path, err)
	}
	b.proc = proc
	b.conn = procConn{proc}
	return b, nil
}

func cacheBytes(n int) int {
	switch {
	case n == 0:
		return DefaultTailCacheBytes
	case n < 0:
		return 0
	}
	return n
}

// procConn runs calls on a supervised process.
type procConn struct{ p *plugin.Process[*client] }

func (p procConn) do(ctx context.Context, fn func(ctx context.Context, c *client) error) error {
	return p.p.Do(ctx, fn)
}

// FindPlugin resolves the argument of the broker's --storage-plugin: a
// path (anything with a path separator) is used as it is; a name NAME is
// the binary runnel-storage-NAME found by plugin discovery
// (RUNNEL_PLUGIN_PATH, then the plugins folder beside the running binary).
// It returns the binary and the name the plugin must answer Describe with
// (empty for a path).
func FindPlugin(nameOrPath string, search plugin.Search) (path, name string, err error) {
	if strings.ContainsRune(nameOrPath, os.PathSeparator) || strings.ContainsRune(nameOrPath, '/') {
		if _, err := os.Stat(nameOrPath); err != nil {
			return "", "", fmt.Errorf("storage plugin %s: %w", nameOrPath, err)
		}
		return nameOrPath, "", nil
	}
	search.Builtins = nil
	f, err := plugin.Find(plugin.KindStorage, nameOrPath, search)
	if err != nil {
		return "", "", err
	}
	return f.Path, f.Name, nil
}

// TestConn serves p's backend over a real gRPC connection on a local
// socket, with the same server and client settings a plugin process gets,
// and returns the host side: the whole protocol without starting a
// process. tailCacheBytes is as in ProcessConfig. The server stops when the
// test ends.
func TestConn(t testing.TB, p Plugin, tailCacheBytes int) *PluginBackend {
	t.Helper()
	be, err := p.New()
	if err != nil {
		t.Fatalf("making the backend: %v", err)
	}
	dir, err := os.MkdirTemp("", "rst")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	info := p.description()
	// The same instrumentation as plugin.ServeConfig and ClientConfig, so
	// trace context crosses this connection as it crosses a process's.
	prop := otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	srv := grpc.NewServer(append(serverOptions(), grpc.StatsHandler(otelgrpc.NewServerHandler(prop)),
		grpc.MaxRecvMsgSize(plugin.MaxMessageBytes), grpc.MaxSendMsgSize(plugin.MaxMessageBytes))...)
	gs := newGRPCServer(be, info)
	storagev1.RegisterStorageServer(srv, gs)
	go func() { _ = srv.Serve(ln) }()
	cc, err := grpc.NewClient("unix://"+ln.Addr().String(), append(dialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(prop)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(plugin.MaxMessageBytes), grpc.MaxCallSendMsgSize(plugin.MaxMessageBytes)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		srv.Stop()
		_ = gs.close()
	})
	return &PluginBackend{
		conn: fixedConn{&client{c: storagev1.NewStorageClient(cc)}}, info: info,
		logs: map[*remoteLog]struct{}{}, cacheBytes: cacheBytes(tailCacheBytes),
	}
}
