package clustertest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestNetworkPartition cuts a partition's leader off the network (each
// broker runs in a network namespace of its own, linked to the test's
// bridge, where the coordinator listens). A producer beside the cut-off
// leader, in its namespace, writes with acks=all: the leader appends but
// can never acknowledge, since no follower can fetch. Its coordinator
// session expires, and the controller elects a new leader from the ISR,
// which the rest of the cluster goes on writing to. When the network heals,
// the old leader learns of the new epoch, truncates the suffix only it
// has, and catches up: every acknowledged record is there, once, and none
// of the unacknowledged ones.
func TestNetworkPartition(t *testing.T) {
	eachCoordinator(t, func(t *testing.T, coord string) {
		kcat := brokertest.Kcat(t)
		lab := brokertest.NewLab(t)
		c := brokertest.StartCluster(t, brokertest.ClusterOptions{Coordinator: coord, Lab: lab})
		ctx := brokertest.Context(t, 3*time.Minute)
		const topic = "split"
		c.CreateTopic(ctx, topic, 1, 3, map[string]*string{"min.insync.replicas": ptr("2")})
		l := startLoader(t, c, topic, 1)
		l.waitProgress(300, 30*time.Second)
		old := leaderOf(t, c, topic, 0)
		host := c.Hosts[old-1]
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("log of broker %d (the old leader):\n%s", old, tail(c.Broker(old).Log()))
			}
		})

		host.Cut()
		cutAt := time.Now()
		// A producer on the cut-off side: the leader takes its record but
		// cannot get it onto the ISR.
		argv := host.Command(kcat, "-P", "-b", c.Broker(old).Addr, "-t", topic, "-p", "0",
			"-X", "acks=all", "-X", "request.timeout.ms=4000", "-X", "message.timeout.ms=6000", "-X", "enable.idempotence=false")
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = strings.NewReader("unacknowledged-1\nunacknowledged-2\n")
		out, err := cmd.CombinedOutput()
		if err == nil && !strings.Contains(string(out), "failed") {
			t.Fatalf("the cut-off leader acknowledged an acks=all write: %s", out)
		}
		t.Logf("producer beside the cut-off leader: %v: %s", err, strings.TrimSpace(string(out)))

		// Ask a broker on the connected side: the cut-off one still
		// believes it leads.
		other := old%3 + 1
		td := c.WaitForFrom(other, 40*time.Second, "a new leader", func(td kadm.TopicDetail) bool {
			l := brokertest.Leader(td, 0)
			return l > 0 && l != old
		}, topic)
		leader := brokertest.Leader(td, 0)
		t.Logf("new leader %d after %s: %s", leader, time.Since(cutAt).Round(time.Millisecond), brokertest.DescribePartitions(td))
		l.waitProgress(300, 60*time.Second)

		host.Heal()
		c.WaitForFrom(leader, 60*time.Second, "the old leader back in the ISR", func(td kadm.TopicDetail) bool {
			return slices.Contains(td.Partitions[0].ISR, old) && len(td.Partitions[0].ISR) == 3
		}, topic)
		if log := c.Broker(old).Log(); !strings.Contains(log, "truncating divergent log suffix") {
			t.Errorf("the old leader did not truncate its divergent suffix:\n%s", tail(log))
		}
		l.stop()
		if errs := l.errs(); len(errs) > 0 {
			t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
		}
		got := consumeAll(t, c, topic)
		checkNothingLost(t, got, l)
		sameLogs(t, c, topic+"-0", leader, old)
	})
}

func tail(s string) string {
	if len(s) > 12000 {
		return s[len(s)-12000:]
	}
	return s
}
