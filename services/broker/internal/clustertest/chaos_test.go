package clustertest

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestKillLeadersUnderLoad produces with acks=all to a topic of
// replication factor 3 and min.insync.replicas=2 while it kills each
// partition's leader in turn with kill -9 and restarts it once a new
// leader has taken over. Afterwards every acknowledged record can be
// consumed, once and in order within its partition, with no gaps. A
// consumer reading all along, through every leader change (franz-go
// checks its position against each new leader's epochs), saw exactly the
// same records.
func TestKillLeadersUnderLoad(t *testing.T) {
	eachCoordinator(t, func(t *testing.T, coord string) {
		c := brokertest.StartCluster(t, brokertest.ClusterOptions{Coordinator: coord})
		ctx := brokertest.Context(t, 5*time.Minute)
		const topic, partitions = "chaos", 3
		c.CreateTopic(ctx, topic, partitions, 3, map[string]*string{"min.insync.replicas": ptr("2")})
		l := startLoader(t, c, topic, partitions)
		live := startTailer(t, c, topic, partitions)
		l.waitProgress(200, 30*time.Second)
		for p := int32(0); p < partitions; p++ {
			old := leaderOf(t, c, topic, p)
			t.Logf("killing broker %d, leader of %s-%d", old, topic, p)
			c.Broker(old).Kill()
			c.WaitFor(30*time.Second, "a new leader", func(td kadm.TopicDetail) bool {
				l := brokertest.Leader(td, p)
				return l > 0 && l != old && !slices.Contains(td.Partitions[p].ISR, old)
			}, topic)
			l.waitProgress(200, 30*time.Second) // writes go on with two replicas
			c.Broker(old).Restart()
			fullISR(t, c, topic, 3)
			l.waitProgress(100, 30*time.Second)
		}
		l.stop()
		if errs := l.errs(); len(errs) > 0 {
			t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
		}
		got := consumeAll(t, c, topic)
		checkNothingLost(t, got, l)
		live.matches(t, got)
	})
}
