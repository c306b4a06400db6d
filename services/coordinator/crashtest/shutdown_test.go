package crashtest

import (
	"context"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/internal/launch"
	"github.com/runnel-io/runnel/services/coordinator/internal/zktest"
)

// sessionTimeout is what the clients of these tests ask for: long enough
// that an ephemeral node gone before it passes was removed by a closed
// session, not by an expired one.
const sessionTimeout = 30 * time.Second

// connectOnly opens a session to exactly addr, with sessionTimeout.
func connectOnly(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect([]string{addr}, sessionTimeout, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-deadline:
			t.Fatalf("no session with %s", addr)
		}
	}
}

// TestGracefulStopClosesSessions stops the member a client is connected to
// with SIGTERM, and a client of another member sees the first client's
// ephemeral node deleted at once, well inside the session timeout.
func TestGracefulStopClosesSessions(t *testing.T) {
	cluster := zktest.CoordinatorEnsemble(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader, err := cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The stopped member is a follower: the ensemble keeps its leader, so
	// what is measured is the session closing, not an election.
	var stopped, watcher *launch.Member
	for _, m := range cluster.Members {
		switch {
		case m == leader:
		case stopped == nil:
			stopped = m
		default:
			watcher = m
		}
	}
	owner := connectOnly(t, stopped.Addr)
	if _, err := owner.Create("/registration", []byte("broker-1"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	obs := connectOnly(t, watcher.Addr)
	if _, err := obs.Sync("/registration"); err != nil {
		t.Fatal(err)
	}
	ok, _, ch, err := obs.ExistsW("/registration")
	if err != nil || !ok {
		t.Fatalf("the ephemeral node is not visible on member %d: %v %v", watcher.ID, ok, err)
	}
	start := time.Now()
	if err := stopped.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		if ev.Type != zk.EventNodeDeleted {
			t.Fatalf("watch fired with %v, want NodeDeleted", ev.Type)
		}
		t.Logf("ephemeral node deleted %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(sessionTimeout / 2):
		t.Fatalf("the ephemeral node of a session on the stopped member is still there %v after SIGTERM\n%s", sessionTimeout/2, cluster.Logs())
	}
}

// TestStandaloneGracefulStopClosesSessions stops a standalone coordinator
// with SIGTERM while a client holds an ephemeral node, restarts it, and the
// node is gone right away: the session was closed, not left to expire
// after the restart.
func TestStandaloneGracefulStopClosesSessions(t *testing.T) {
	cluster := zktest.Coordinator(t)
	m := cluster.Members[0]
	holder := connectOnly(t, m.Addr)
	if _, err := holder.Create("/lock", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Create("/kept", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Restart(ctx); err != nil {
		t.Fatalf("restart: %v\n%s", err, m.LogTail(4000))
	}
	obs := connectOnly(t, m.Addr)
	if ok, _, err := obs.Exists("/lock"); err != nil || ok {
		t.Fatalf("after a graceful stop and restart /lock exists=%v (err %v): the stopped server left its session open", ok, err)
	}
	if ok, _, err := obs.Exists("/kept"); err != nil || !ok {
		t.Fatalf("persistent /kept exists=%v (err %v) after the restart", ok, err)
	}
}

// TestKeepSessionsOnStop checks the opt-out: with --keep-sessions-on-stop a
// restarted standalone still has the session, and its ephemeral node.
func TestKeepSessionsOnStop(t *testing.T) {
	cluster := zktest.Coordinator(t, launch.Options{Args: []string{"--keep-sessions-on-stop"}})
	m := cluster.Members[0]
	holder := connectOnly(t, m.Addr)
	if _, err := holder.Create("/lock", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Restart(ctx); err != nil {
		t.Fatalf("restart: %v\n%s", err, m.LogTail(4000))
	}
	obs := connectOnly(t, m.Addr)
	if ok, _, err := obs.Exists("/lock"); err != nil || !ok {
		t.Fatalf("with --keep-sessions-on-stop /lock exists=%v (err %v) right after the restart", ok, err)
	}
}
