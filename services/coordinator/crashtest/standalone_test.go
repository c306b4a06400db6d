package crashtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/internal/zktest"
)

// TestStandaloneKillUnderLoad creates znodes from 16 sessions, kills the
// server with SIGKILL in the middle, restarts it on the same data directory
// and checks that every create that was acknowledged is present.
func TestStandaloneKillUnderLoad(t *testing.T) {
	cluster := zktest.Coordinator(t)
	m := cluster.Members[0]
	setup := zktest.Connect(t, m.Addr)
	if _, err := setup.Create("/crash", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	setup.Close()

	const writers = 16
	var (
		mu    sync.Mutex
		acked []string
		total atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		conn, _, err := zk.Connect([]string{m.Addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithMaxConnBufferSize(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Add(1)
		go func(w int, conn *zk.Conn) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("/crash/w%02d-%06d", w, i)
				if _, err := conn.Create(p, []byte("payload"), 0, zk.WorldACL(zk.PermAll)); err != nil {
					// The server is gone: only acknowledged creates count.
					return
				}
				mu.Lock()
				acked = append(acked, p)
				mu.Unlock()
				total.Add(1)
			}
		}(w, conn)
	}
	// Let the load run until a few thousand creates are acknowledged.
	deadline := time.Now().Add(20 * time.Second)
	for total.Load() < 3000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()
	if len(want) == 0 {
		t.Fatal("no create was acknowledged before the kill")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Restart(ctx); err != nil {
		t.Fatalf("restart: %v\n%s", err, m.LogTail(40))
	}
	conn := zktest.Connect(t, m.Addr)
	kids, _, err := conn.Children("/crash")
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]bool, len(kids))
	for _, k := range kids {
		have["/crash/"+k] = true
	}
	missing := 0
	for _, p := range want {
		if !have[p] {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged create %s lost", p)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged creates lost", missing, len(want))
	}
	t.Logf("%d acknowledged creates, %d present after kill -9 and restart", len(want), len(kids))
}
