package ensembletest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/internal/launch"
	"github.com/runnel-io/runnel/services/coordinator/internal/zktest"
)

var acl = zk.WorldACL(zk.PermAll)

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// waitFor polls cond every 20ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writer creates /crash/wNN-IIIIII in a loop on one session. A create whose
// fate is unknown (the connection dropped) is retried under the same name
// once the client has reconnected: NodeExists then means the first attempt
// committed.
type writer struct {
	id   int
	conn *zk.Conn
	sid  int64

	mu        sync.Mutex
	acked     []string
	afterKill int
}

func (w *writer) run(stop <-chan struct{}, killed *atomic.Bool, total *atomic.Int64) {
	for i := 0; ; {
		select {
		case <-stop:
			return
		default:
		}
		p := fmt.Sprintf("/crash/w%02d-%06d", w.id, i)
		_, err := w.conn.Create(p, []byte("payload"), 0, acl)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			// The member this session was on died or lost its leader;
			// the client moves on by itself.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.acked = append(w.acked, p)
		if killed.Load() {
			w.afterKill++
		}
		w.mu.Unlock()
		total.Add(1)
		i++
	}
}

// TestKillLeaderUnderLoad runs three coordinator processes, creates znodes
// from several sessions spread over them, kills the leader with SIGKILL in
// the middle, and checks that the sessions carry on through the survivors
// and that every acknowledged create is on every member, including the
// killed one once it is restarted.
func TestKillLeaderUnderLoad(t *testing.T) {
	cluster := zktest.CoordinatorEnsemble(t, 3)
	ctx := context.Background()
	var leader *launch.Member
	waitFor(t, 30*time.Second, "a leader", func() bool {
		l, err := cluster.Leader(ctx)
		leader = l
		return err == nil
	})

	setup := zktest.Connect(t, cluster.Addrs()...)
	waitFor(t, 20*time.Second, "create /crash", func() bool {
		_, err := setup.Create("/crash", nil, 0, acl)
		return err == nil || errors.Is(err, zk.ErrNodeExists)
	})

	const writers = 8
	var (
		ws     []*writer
		total  atomic.Int64
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	stop := make(chan struct{})
	for i := range writers {
		conn, _, err := zk.Connect(cluster.Addrs(), zktest.SessionTimeout, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		waitFor(t, zktest.ConnectTimeout, fmt.Sprintf("session of writer %d", i), func() bool {
			return conn.State() == zk.StateHasSession
		})
		ws = append(ws, &writer{id: i, conn: conn, sid: conn.SessionID()})
	}
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(stop, &killed, &total)
		}()
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	waitFor(t, 60*time.Second, "1000 acknowledged creates", func() bool { return total.Load() >= 1000 })
	before := total.Load()
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	t.Logf("killed leader %d after %d acknowledged creates", leader.ID, before)

	// Every session goes on writing through the survivors.
	waitFor(t, 60*time.Second, "every session to write after the kill", func() bool {
		for _, w := range ws {
			w.mu.Lock()
			n := w.afterKill
			w.mu.Unlock()
			if n < 20 {
				return false
			}
		}
		return true
	})
	stopLoad()
	var want []string
	for _, w := range ws {
		if got := w.conn.SessionID(); got != w.sid {
			t.Errorf("writer %d: session changed from 0x%x to 0x%x", w.id, w.sid, got)
		}
		want = append(want, w.acked...)
	}
	t.Logf("%d creates acknowledged in all, %d after the kill", len(want), int64(len(want))-before)

	check := func(m *launch.Member) {
		t.Helper()
		conn := zktest.Connect(t, m.Addr)
		if _, err := conn.Sync("/crash"); err != nil {
			t.Fatalf("member %d: sync: %v", m.ID, err)
		}
		kids, _, err := conn.Children("/crash")
		if err != nil {
			t.Fatalf("member %d: children: %v", m.ID, err)
		}
		have := make(map[string]bool, len(kids))
		for _, k := range kids {
			have["/crash/"+k] = true
		}
		missing := 0
		for _, p := range want {
			if !have[p] {
				if missing++; missing <= 5 {
					t.Errorf("member %d: acknowledged create %s is missing", m.ID, p)
				}
			}
		}
		if missing > 0 {
			t.Fatalf("member %d: %d of %d acknowledged creates missing", m.ID, missing, len(want))
		}
		conn.Close()
	}
	for _, m := range cluster.Members {
		if m != leader {
			check(m)
		}
	}

	// The killed member comes back from its own raft log and snapshots,
	// then catches up from the new leader.
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := leader.Start(rctx); err != nil {
		t.Fatalf("restart member %d: %v", leader.ID, err)
	}
	check(leader)
}
