package launch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// BinaryEnv names an environment variable that, when set, points at a
// prebuilt runnel-coordinator; CoordinatorBinary then uses it instead of
// building one.
const BinaryEnv = "RUNNEL_COORDINATOR_BIN"

// ErrNoModule means ModuleDir could not find the coordinator's sources.
var ErrNoModule = errors.New("launch: coordinator module not found")

// Coordinator starts Runnel's coordinator standalone on a free loopback
// port:
//
//	runnel-coordinator --listen 127.0.0.1:PORT --data-dir DIR --max-client-cnxns 0
//	    [--admin-listen 127.0.0.1:PORT] [--container-check-interval D]
//
// and waits until it answers ruok with imok.
func Coordinator(ctx context.Context, binPath string, opts Options) (*Cluster, error) {
	return coordinator(ctx, binPath, 1, opts)
}

// CoordinatorEnsemble starts n coordinators that replicate through raft,
// each with --id N --peers 1=127.0.0.1:P1,... (the raft addresses) added to
// the standalone flags, and waits until all are ready.
func CoordinatorEnsemble(ctx context.Context, binPath string, n int, opts Options) (*Cluster, error) {
	if n < 2 {
		return nil, fmt.Errorf("launch: a coordinator ensemble needs at least 2 members, got %d", n)
	}
	return coordinator(ctx, binPath, n, opts)
}

func coordinator(ctx context.Context, binPath string, n int, opts Options) (*Cluster, error) {
	if _, err := os.Stat(binPath); err != nil {
		return nil, fmt.Errorf("launch: coordinator binary: %w", err)
	}
	opts = opts.withDefaults()
	return startCluster(ctx, opts, "runnel-coordinator-", n, 3, func(dir string, ports [][]int) ([]*Member, error) {
		members := make([]*Member, n)
		peers := make([]string, n)
		for i := range members {
			id := i + 1
			m := &Member{
				ID:   id,
				Kind: KindCoordinator,
				Addr: loopback(ports[i][0]),
				Dir:  filepath.Join(dir, fmt.Sprintf("coordinator%d", id)),
			}
			if n > 1 {
				m.PeerAddr = loopback(ports[i][1])
				peers[i] = fmt.Sprintf("%d=%s", id, m.PeerAddr)
			}
			if opts.Admin {
				m.AdminAddr = loopback(ports[i][2])
			}
			members[i] = m
		}
		for _, m := range members {
			data := filepath.Join(m.Dir, "data")
			if err := os.MkdirAll(data, 0o755); err != nil {
				return nil, fmt.Errorf("launch: %w", err)
			}
			m.LogPath = filepath.Join(m.Dir, "server.log")
			// No per-address connection limit, as in the ZooKeeper
			// configuration: every client here comes from 127.0.0.1.
			m.argv = []string{binPath, "--listen", m.Addr, "--data-dir", data, "--max-client-cnxns", "0"}
			if m.AdminAddr != "" {
				m.argv = append(m.argv, "--admin-listen", m.AdminAddr)
			}
			if opts.ContainerCheckInterval > 0 {
				m.argv = append(m.argv, "--container-check-interval", opts.ContainerCheckInterval.String())
			}
			if n > 1 {
				m.argv = append(m.argv, "--id", fmt.Sprint(m.ID), "--peers", strings.Join(peers, ","))
			}
			m.argv = append(m.argv, opts.Args...)
			m.env = opts.Env
		}
		return members, nil
	})
}

type buildResult struct {
	once sync.Once
	path string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*buildResult{}
)

// Build compiles ./cmd/runnel-coordinator of the module in moduleDir and
// returns the binary's path. It builds once per module directory per
// process; later calls return the first result, error included.
//
// The binary lands in the user's cache directory, not a temporary one, so
// repeated test runs leave nothing behind; it is written under a unique
// name and renamed into place, so concurrent test processes never run a
// half-written file.
func Build(ctx context.Context, moduleDir string) (string, error) {
	abs, err := filepath.Abs(moduleDir)
	if err != nil {
		return "", fmt.Errorf("launch: build: %w", err)
	}
	buildsMu.Lock()
	r, ok := builds[abs]
	if !ok {
		r = &buildResult{}
		builds[abs] = r
	}
	buildsMu.Unlock()
	r.once.Do(func() { r.path, r.err = build(ctx, abs) })
	return r.path, r.err
}

func build(ctx context.Context, moduleDir string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(moduleDir))
	outDir := filepath.Join(cache, "runnel-launch", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("launch: build: %w", err)
	}
	tmp, err := os.CreateTemp(outDir, "runnel-coordinator-*.tmp")
	if err != nil {
		return "", fmt.Errorf("launch: build: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp.Name(), "./cmd/runnel-coordinator")
	cmd.Dir = moduleDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("launch: go build ./cmd/runnel-coordinator in %s: %w\n%s", moduleDir, err, out)
	}
	final := filepath.Join(outDir, "runnel-coordinator")
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("launch: build: %w", err)
	}
	return final, nil
}

// ModuleDir returns the directory of the coordinator module this package
// was compiled from, found through the location of its source file.
func ModuleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("%w: no caller information", ErrNoModule)
	}
	// file is <module>/internal/launch/coordinator.go.
	dir := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoModule, err)
	}
	return dir, nil
}

// CoordinatorBinary returns $RUNNEL_COORDINATOR_BIN when set, and otherwise
// builds the coordinator from ModuleDir with Build.
func CoordinatorBinary(ctx context.Context) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("launch: %s: %w", BinaryEnv, err)
		}
		return p, nil
	}
	dir, err := ModuleDir()
	if err != nil {
		return "", err
	}
	return Build(ctx, dir)
}
