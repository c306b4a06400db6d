package clustertest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestFollowerLeavesAndRejoinsISR stops a follower two ways. Paused
// (SIGSTOP) with a coordinator session that outlives the pause, it falls
// behind and its leader takes it out of the ISR after
// replica.lag.time.max.ms; resumed, it catches up and the leader takes it
// back. Killed, the controller takes it out of the ISR when its session
// expires; restarted, it catches up, rejoins, and its log is byte for byte
// the leader's. Writes with acks=all go on meanwhile, since two replicas
// remain.
func TestFollowerLeavesAndRejoinsISR(t *testing.T) {
	eachCoordinator(t, func(t *testing.T, coord string) {
		c := brokertest.StartCluster(t, brokertest.ClusterOptions{Coordinator: coord,
			Settings: []string{"zookeeper.session.timeout.ms=20000", "replica.lag.time.max.ms=2000"}})
		ctx := brokertest.Context(t, 3*time.Minute)
		const topic = "isr"
		c.CreateTopic(ctx, topic, 1, 3, map[string]*string{"min.insync.replicas": ptr("2")})
		l := startLoader(t, c, topic, 1)
		l.waitProgress(100, 30*time.Second)
		leader := leaderOf(t, c, topic, 0)
		follower := int32(1)
		for follower == leader {
			follower++
		}

		c.Broker(follower).Pause()
		c.WaitFor(20*time.Second, "the paused follower out of the ISR", func(td kadm.TopicDetail) bool {
			return len(td.Partitions[0].ISR) == 2 && !slices.Contains(td.Partitions[0].ISR, follower)
		}, topic)
		l.waitProgress(100, 30*time.Second)
		c.Broker(follower).Resume()
		fullISR(t, c, topic, 3)
		// The leader logs its ISR change once the coordinator took it,
		// which other brokers may report first.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			log := c.Broker(leader).Log()
			if strings.Contains(log, "ISR shrank") && strings.Contains(log, "ISR expanded") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the leader's log shows no ISR shrink and expansion:\n%s", log)
			}
		}

		c.Broker(follower).Kill()
		l.waitProgress(100, 60*time.Second)
		c.WaitFor(40*time.Second, "the killed follower out of the ISR", func(td kadm.TopicDetail) bool {
			return !slices.Contains(td.Partitions[0].ISR, follower)
		}, topic)
		c.Broker(follower).Restart()
		fullISR(t, c, topic, 3)
		l.stop()
		if errs := l.errs(); len(errs) > 0 {
			t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
		}
		checkNothingLost(t, consumeAll(t, c, topic), l)
		// Followers store the leader's batches as they are.
		fullISR(t, c, topic, 3)
		sameLogs(t, c, topic+"-0", leader, follower)
	})
}

// sameLogs checks that two brokers hold the same segment files of a
// partition, waiting a little for the follower's last fetch.
func sameLogs(t *testing.T, c *brokertest.Cluster, dir string, a, b int32) {
	t.Helper()
	read := func(id int32) []byte {
		files, _ := filepath.Glob(filepath.Join(c.Broker(id).Dir, dir, "*.log"))
		slices.Sort(files)
		var all []byte
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, data...)
		}
		return all
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		la, lb := read(a), read(b)
		if len(la) > 0 && bytes.Equal(la, lb) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: broker %d holds %d bytes of segments, broker %d %d bytes, or they differ", dir, a, len(la), b, len(lb))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAcksAllNeedsTheISR checks what a producer with acks=all gets from
// a partition whose ISR is smaller than min.insync.replicas
// (NOT_ENOUGH_REPLICAS), what acks=1 gets meanwhile (success), and what a
// client gets from a broker that does not lead a partition
// (NOT_LEADER_OR_FOLLOWER, after which franz-go refreshes its metadata and
// carries on).
func TestAcksAllNeedsTheISR(t *testing.T) {
	eachCoordinator(t, func(t *testing.T, coord string) {
		c := brokertest.StartCluster(t, brokertest.ClusterOptions{Coordinator: coord})
		ctx := brokertest.Context(t, 2*time.Minute)
		const topic = "minisr"
		c.CreateTopic(ctx, topic, 1, 3, map[string]*string{"min.insync.replicas": ptr("2")})
		leader := leaderOf(t, c, topic, 0)

		// A produce sent straight to a follower.
		follower := leader%3 + 1
		if code := produceDirect(t, ctx, c.Broker(follower).Addr, topic, -1); code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("produce to follower %d: error code %d, want NOT_LEADER_OR_FOLLOWER", follower, code)
		}

		// Both followers go: the ISR is the leader alone.
		for id := int32(1); id <= 3; id++ {
			if id != leader {
				c.Broker(id).Kill()
			}
		}
		c.WaitFor(40*time.Second, "an ISR of the leader alone", func(td kadm.TopicDetail) bool {
			return slices.Equal(td.Partitions[0].ISR, []int32{leader})
		}, topic)
		if code := produceDirect(t, ctx, c.Broker(leader).Addr, topic, -1); code != kerr.NotEnoughReplicas.Code {
			t.Fatalf("acks=all with ISR [%d]: error code %d, want NOT_ENOUGH_REPLICAS", leader, code)
		}
		if code := produceDirect(t, ctx, c.Broker(leader).Addr, topic, 1); code != 0 {
			t.Fatalf("acks=1 with ISR [%d]: error code %d, want success", leader, code)
		}
		// The followers return, catch up and rejoin; acks=all works again.
		for id := int32(1); id <= 3; id++ {
			if id != leader {
				c.Broker(id).Restart()
			}
		}
		fullISR(t, c, topic, 3)
		cl := c.Client()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("back")}).FirstErr(); err != nil {
			t.Fatalf("acks=all after the ISR grew back: %v", err)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatal(ctx.Err())
		}
	})
}
