package zktest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/internal/launch"
)

// Timeouts used by the helpers. They bound waits that normally end in
// milliseconds; reaching one means the server is broken, not slow.
const (
	// SessionTimeout is the session timeout clients ask for.
	SessionTimeout = 10 * time.Second
	// ConnectTimeout bounds the wait for a session.
	ConnectTimeout = 20 * time.Second
)

// RequireZooKeeper returns the ZooKeeper installation, or skips the test
// when there is none; under CI=true it fails the test instead.
func RequireZooKeeper(t testing.TB) *launch.Installation {
	t.Helper()
	inst, err := launch.LocateZooKeeper("")
	if err != nil {
		if errors.Is(err, launch.ErrMissing) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return inst
}

func options(t testing.TB, opts []launch.Options) launch.Options {
	t.Helper()
	var o launch.Options
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		t.Fatalf("zktest: at most one launch.Options, got %d", len(opts))
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	return o
}

// adopt stops c when the test ends, and prints its logs first if the test
// failed.
func adopt(t testing.TB, c *launch.Cluster) *launch.Cluster {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs:\n%s", c.Logs())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop servers: %v", err)
		}
	})
	return c
}

// ZooKeeper starts a standalone Apache ZooKeeper for the test. Pass at
// most one launch.Options; its Dir defaults to t.TempDir().
func ZooKeeper(t testing.TB, opts ...launch.Options) *launch.Cluster {
	t.Helper()
	RequireZooKeeper(t)
	c, err := launch.ZooKeeper(context.Background(), options(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	return adopt(t, c)
}

// ZooKeeperEnsemble starts an n-member Apache ZooKeeper ensemble.
func ZooKeeperEnsemble(t testing.TB, n int, opts ...launch.Options) *launch.Cluster {
	t.Helper()
	RequireZooKeeper(t)
	c, err := launch.ZooKeeperEnsemble(context.Background(), n, options(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	return adopt(t, c)
}

// CoordinatorBinary returns Runnel's coordinator binary, built once per
// test process (or taken from $RUNNEL_COORDINATOR_BIN).
func CoordinatorBinary(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := launch.CoordinatorBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Coordinator starts Runnel's coordinator standalone for the test.
func Coordinator(t testing.TB, opts ...launch.Options) *launch.Cluster {
	t.Helper()
	bin := CoordinatorBinary(t)
	c, err := launch.Coordinator(context.Background(), bin, options(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	return adopt(t, c)
}

// CoordinatorEnsemble starts an n-member Runnel coordinator ensemble.
func CoordinatorEnsemble(t testing.TB, n int, opts ...launch.Options) *launch.Cluster {
	t.Helper()
	bin := CoordinatorBinary(t)
	c, err := launch.CoordinatorEnsemble(context.Background(), bin, n, options(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	return adopt(t, c)
}

// Server starts a standalone server of the given kind.
func Server(t testing.TB, kind launch.Kind, opts ...launch.Options) *launch.Cluster {
	t.Helper()
	switch kind {
	case launch.KindZooKeeper:
		return ZooKeeper(t, opts...)
	case launch.KindCoordinator:
		return Coordinator(t, opts...)
	}
	t.Fatalf("zktest: unknown server kind %v", kind)
	return nil
}

// Connect opens a go-zookeeper session to addrs, waits until it has a
// session, and closes it when the test ends.
func Connect(t testing.TB, addrs ...string) *zk.Conn {
	t.Helper()
	conn, _ := ConnectLog(t, addrs...)
	return conn
}

// ConnectLog is Connect that also returns the session's EventLog.
func ConnectLog(t testing.TB, addrs ...string) (*zk.Conn, *EventLog) {
	t.Helper()
	log := &EventLog{}
	logger := &testLogger{t: t}
	// Registered first, so it runs after the connection is closed.
	t.Cleanup(logger.stop)
	conn, events, err := zk.Connect(addrs, SessionTimeout,
		zk.WithLogInfo(false), zk.WithLogger(logger), zk.WithEventCallback(log.record))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	if err := waitSession(events); err != nil {
		t.Fatalf("zktest: connect to %v: %v", addrs, err)
	}
	return conn, log
}

func waitSession(events <-chan zk.Event) error {
	deadline := time.NewTimer(ConnectTimeout)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return errors.New("connection closed")
			}
			switch ev.State {
			case zk.StateHasSession:
				return nil
			case zk.StateAuthFailed, zk.StateExpired:
				return fmt.Errorf("session state %v", ev.State)
			}
		case <-deadline.C:
			return fmt.Errorf("no session within %v", ConnectTimeout)
		}
	}
}

// testLogger sends go-zookeeper's log to the test log until the test ends;
// the client's goroutines may still log while it shuts down, and logging
// to a finished test panics.
type testLogger struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *testLogger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("zk client: "+format, args...)
	}
}

func (l *testLogger) stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}
