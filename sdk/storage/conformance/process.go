package conformance

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage"
)

// Main is a plugin's TestMain. Started by a host (RunProcess with the test
// binary's own path, os.Args[0]), the test binary serves p as a plugin
// process; otherwise it runs the tests. That way a backend's tests run the
// suite against it as a real process without building a binary first:
//
//	func TestMain(m *testing.M) { conformance.Main(m, myPlugin) }
//
//	func TestConformanceProcess(t *testing.T) {
//		conformance.RunProcess(t, os.Args[0], conformance.Persistent())
//	}
func Main(m *testing.M, p storage.Plugin) {
	if os.Getenv(plugin.MagicCookieKey) != "" {
		storage.Serve(p)
	}
	os.Exit(m.Run())
}

// RunProcess runs the whole suite against the storage plugin binary at
// path, each Backend the suite asks for being a new process (with no tail
// cache, so every call crosses the boundary), and then the crash tests: a
// process killed (SIGKILL) between calls and during appends is restarted,
// its logs reopened, and (with Persistent) every acknowledged batch is
// still there.
func RunProcess(t *testing.T, path string, opts ...Option) {
	newBackend := func(t *testing.T) storage.Backend {
		return StartProcess(t, path, -1)
	}
	Run(t, newBackend, opts...)
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &suite{newBackend: newBackend, opts: o}
	t.Run("KillBetweenCalls", func(t *testing.T) { s.testKillBetweenCalls(t, path) })
	t.Run("KillDuringAppends", func(t *testing.T) { s.testKillDuringAppends(t, path) })
}

// StartProcess starts the plugin at path for a test, with a short restart
// backoff, and closes it when the test ends. tailCacheBytes is as in
// storage.ProcessConfig (0: the default cache, -1: none).
func StartProcess(t testing.TB, path string, tailCacheBytes int) *storage.PluginBackend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := storage.StartProcess(ctx, storage.ProcessConfig{
		Path: path, TailCacheBytes: tailCacheBytes,
		Backoff: plugin.Backoff{Initial: 20 * time.Millisecond, Max: time.Second},
	})
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// The crash tests run with the default tail cache, as the broker does, so
// that a restart is seen to invalidate it.

func (s *suite) testKillBetweenCalls(t *testing.T, path string) {
	b := StartProcess(t, path, 0)
	cfg := config(t)
	l := open(t, b, cfg)
	bs := appendBatches(t, l, 20, 3, 50)
	crash(t, b)
	deadline := time.Now().Add(10 * time.Second)
	for b.Pid() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the killed plugin process did not exit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The next call finds the process gone, starts it again and reopens
	// the log before going on. (Reads of the tail are answered by the
	// cache without a call, so the first call here is a Flush.)
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush after the plugin was killed: %v", err)
	}
	r, err := l.Read(ctx, 0, math.MaxInt32, math.MaxInt64)
	if err != nil {
		t.Fatalf("Read after the plugin restarted: %v", err)
	}
	if b.Starts() != 2 {
		t.Fatalf("the plugin was started %d times, want 2", b.Starts())
	}
	if !s.opts.persistent {
		checkOffsets(t, l, 0, 0)
		appendBatches(t, l, 2, 1, 10)
		return
	}
	checkOffsets(t, l, 0, 60)
	if got := readAll(t, l, 0); !bytes.Equal(got, concat(bs)) || !bytes.HasPrefix(concat(bs), r.Batches) || len(r.Batches) == 0 {
		t.Fatal("content differs after the plugin restarted")
	}
	more := appendBatches(t, l, 5, 3, 50)
	if got := readAll(t, l, 0); !bytes.Equal(got, concat(append(bs, more...))) {
		t.Fatal("appends after the restart did not continue the log")
	}
}

func (s *suite) testKillDuringAppends(t *testing.T, path string) {
	b := StartProcess(t, path, 0)
	cfg := config(t)
	l := open(t, b, cfg)
	var (
		mu       sync.Mutex
		acked    = map[int64][]byte{} // base offset -> batch, for acknowledged appends
		failures int
	)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			base := l.EndOffset()
			batch := Batch(base, baseTs+base, Value(base, 200), Value(base+1, 200))
			_, err := l.Append(ctx, batch)
			switch {
			case err == nil:
				mu.Lock()
				acked[base] = batch
				mu.Unlock()
			case errors.Is(err, storage.ErrClosed):
				// The plugin died during the call: retriable.
				mu.Lock()
				failures++
				mu.Unlock()
			default:
				done <- err
				return
			}
		}
	}()
	waitAcked := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d appends acknowledged, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitAcked(200)
	crash(t, b)
	waitAcked(400)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("Append failed with a non-retriable error: %v", err)
	}
	if b.Starts() < 2 {
		t.Fatalf("the plugin was started %d times, want a restart", b.Starts())
	}
	t.Logf("%d appends acknowledged, %d failed retriably around the kill", len(acked), failures)
	if !s.opts.persistent {
		return
	}
	// Every acknowledged batch is in the log, byte for byte, at its offset.
	mu.Lock()
	defer mu.Unlock()
	for base, want := range acked {
		r, err := l.Read(ctx, base, 1, math.MaxInt64)
		if err != nil {
			t.Fatalf("Read(%d): %v", base, err)
		}
		if !bytes.HasPrefix(r.Batches, want) {
			t.Fatalf("acknowledged batch at %d is missing after the restart (%d failed appends)", base, failures)
		}
	}
}

// crash kills the plugin process with SIGKILL, as the kernel's OOM killer
// or a segfault would: no shutdown, no flush.
func crash(t *testing.T, b *storage.PluginBackend) {
	t.Helper()
	pid := b.Pid()
	if pid == 0 {
		t.Fatal("no plugin process is running")
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
}
