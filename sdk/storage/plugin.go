package storage

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage/storagev1"
)

// ProtocolVersion is the newest storage plugin protocol this package
// speaks; OldestProtocol the oldest. Both are 1 until storagev2 exists:
// go-plugin then negotiates the newest version both sides list in their
// VersionedPlugins.
const (
	ProtocolVersion = 1
	OldestProtocol  = 1
)

// pluginKey names the storage backend in go-plugin's plugin set.
const pluginKey = "storage"

// Capabilities a storage plugin may declare in its Description.
const (
	// CapPersistent means the data outlives the plugin process (the file
	// backend): after a crash the host reopens the partitions and finds
	// every acknowledged batch. Without it (memory) a restart starts empty.
	CapPersistent = "persistent"
)

// Plugin is a storage backend implementation: what it says about itself
// and how to make one. The same value is served as a plugin process
// (Serve) or linked into a host (call New directly).
type Plugin struct {
	Info plugin.Description
	// New makes the backend; a plugin process calls it once.
	New func() (Backend, error)
	// Shutdown, when set, runs in a plugin process after the backend is
	// closed and before the process exits: where a binary flushes its
	// telemetry.
	Shutdown func(context.Context) error
}

// shutdownTimeout bounds Plugin.Shutdown.
const shutdownTimeout = 5 * time.Second

func (p Plugin) description() plugin.Description {
	d := p.Info
	d.Kind = plugin.KindStorage
	if len(d.Protocols) == 0 {
		for v := OldestProtocol; v <= ProtocolVersion; v++ {
			d.Protocols = append(d.Protocols, v)
		}
	}
	return d
}

// grpcPlugin is the go-plugin adapter: on the plugin side it registers the
// gRPC server around the backend; on the host side it returns a client.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	server *grpcServer
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	storagev1.RegisterStorageServer(s, p.server)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &client{c: storagev1.NewStorageClient(cc)}, nil
}

// pluginSets are the versioned plugin sets: with a server on the plugin
// side, with nil on the host side.
func pluginSets(s *grpcServer) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		1: {pluginKey: &grpcPlugin{server: s}},
	}
}

// Flow-control windows of the plugin connection. gRPC's defaults (64 KiB,
// grown by its bandwidth estimator) throttle megabyte-sized batches on a
// fresh connection; a local socket has no reason to hold back.
const (
	windowBytes     = 16 << 20
	connWindowBytes = 64 << 20
	socketBufBytes  = 1 << 20
)

func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(windowBytes),
		grpc.WithInitialConnWindowSize(connWindowBytes),
		grpc.WithReadBufferSize(socketBufBytes),
		grpc.WithWriteBufferSize(socketBufBytes),
	}
}

func serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(windowBytes),
		grpc.InitialConnWindowSize(connWindowBytes),
		grpc.ReadBufferSize(socketBufBytes),
		grpc.WriteBufferSize(socketBufBytes),
	}
}

// clientConfig is the go-plugin configuration a host starts the binary at
// path with: Runnel's shared plugin configuration (handshake, versions,
// OpenTelemetry) plus this protocol's flow-control settings.
func clientConfig(path string) *goplugin.ClientConfig {
	cc := plugin.ClientConfig(plugin.KindStorage, OldestProtocol, path, pluginSets(nil))
	cc.GRPCDialOptions = append(cc.GRPCDialOptions, dialOptions()...)
	return cc
}

// Serve runs a storage plugin binary: it answers `describe`, explains
// itself when started by hand, and otherwise makes the backend and serves
// it to the host that started the process until the host stops it. It
// never returns. A plugin's main is one line:
//
//	func main() { storage.Serve(storage.Plugin{Info: ..., New: ...}) }
//
// The backend is closed (its logs flushed) before the process exits: when
// the host shuts the plugin down, on SIGTERM, and when the host process
// disappears without a word (the plugin is then reparented), so that no
// plugin outlives its broker holding partition files open.
func Serve(p Plugin) {
	info := p.description()
	if code, done := plugin.Preamble(info, os.Args, os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	b, err := p.New()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", plugin.BinaryName(plugin.KindStorage, info.Name), err)
		os.Exit(1)
	}
	srv := newGRPCServer(b, info)
	stopProfile := profile()
	stop := func(code int) {
		_ = srv.close()
		stopProfile()
		if p.Shutdown != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			_ = p.Shutdown(ctx)
			cancel()
		}
		os.Exit(code)
	}
	go watchParent(os.Getppid(), func() { stop(1) })
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		stop(0)
	}()
	cfg := plugin.ServeConfig(plugin.KindStorage, OldestProtocol, pluginSets(srv))
	base := cfg.GRPCServer
	cfg.GRPCServer = func(opts []grpc.ServerOption) *grpc.Server {
		return base(append(opts, serverOptions()...))
	}
	goplugin.Serve(cfg)
	stop(0)
}

// ProfileEnv names the environment variable that makes a plugin process
// write a CPU profile of its whole life to the file it names, with the
// process id appended (a restarted plugin writes a new one). The host's
// environment reaches the plugin, so a benchmark of the broker can profile
// both sides of the process boundary.
const ProfileEnv = "RUNNEL_PLUGIN_CPUPROFILE"

func profile() (stop func()) {
	path := os.Getenv(ProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ProfileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ProfileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// watchParent calls gone once the process's parent is no longer ppid: the
// host died (even by kill -9) and the plugin was reparented.
func watchParent(ppid int, gone func()) {
	for {
		time.Sleep(500 * time.Millisecond)
		if os.Getppid() != ppid {
			gone()
			return
		}
	}
}
