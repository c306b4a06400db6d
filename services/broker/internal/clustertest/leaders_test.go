package clustertest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestControlledShutdownAndPreferredLeaders stops a broker that leads
// partitions with SIGTERM under an acks=all load: it hands its leaderships
// to other in-sync replicas before it exits (controlled shutdown), so the
// load sees no error. Restarted, it catches up, and a preferred-leader
// election (ElectLeaders) gives every partition back to its preferred
// replica.
func TestControlledShutdownAndPreferredLeaders(t *testing.T) {
	eachCoordinator(t, func(t *testing.T, coord string) {
		c := brokertest.StartCluster(t, brokertest.ClusterOptions{Coordinator: coord,
			Settings: []string{"auto.leader.rebalance.enable=false"}})
		ctx := brokertest.Context(t, 3*time.Minute)
		const topic, partitions = "handover", 3
		c.CreateTopic(ctx, topic, partitions, 3, map[string]*string{"min.insync.replicas": ptr("2")})
		l := startLoader(t, c, topic, partitions)
		l.waitProgress(200, 30*time.Second)

		const stopped = int32(2)
		c.Broker(stopped).Stop()
		if log := c.Broker(stopped).Log(); !strings.Contains(log, "controlled shutdown: leaderships moved") {
			t.Fatalf("broker %d stopped without handing over its leaderships:\n%s", stopped, log)
		}
		td := c.WaitFor(10*time.Second, "no partition led by the stopped broker", func(td kadm.TopicDetail) bool {
			for _, p := range td.Partitions {
				if p.Leader == stopped || slices.Contains(p.ISR, stopped) || p.Leader < 0 {
					return false
				}
			}
			return true
		}, topic)
		t.Logf("after the controlled shutdown: %s", brokertest.DescribePartitions(td))
		l.waitProgress(200, 30*time.Second)

		c.Broker(stopped).Restart()
		fullISR(t, c, topic, 3)
		res, err := c.Admin().ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, parts := range res {
			for _, r := range parts {
				if r.Err != nil {
					t.Fatalf("preferred election of %s-%d: %v", r.Topic, r.Partition, r.Err)
				}
			}
		}
		c.WaitFor(10*time.Second, "every partition led by its preferred replica", func(td kadm.TopicDetail) bool {
			for _, p := range td.Partitions {
				if p.Leader != p.Replicas[0] {
					return false
				}
			}
			return true
		}, topic)
		l.stop()
		if errs := l.errs(); len(errs) > 0 {
			t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
		}
		checkNothingLost(t, consumeAll(t, c, topic), l)
	})
}

// TestReassignment moves a partition from brokers [1 2] to [3 2] online
// (AlterPartitionReassignments) while it is written to: broker 3 catches
// up, joins the ISR, broker 1 leaves the assignment and deletes its copy,
// the leadership moves off broker 1, and nothing acknowledged is lost.
func TestReassignment(t *testing.T) {
	eachCoordinator(t, func(t *testing.T, coord string) {
		c := brokertest.StartCluster(t, brokertest.ClusterOptions{Coordinator: coord})
		ctx := brokertest.Context(t, 3*time.Minute)
		const topic = "moving"
		adm := c.Admin()
		createAssigned(t, c, topic, [][]int32{{1, 2}})
		fullISR(t, c, topic, 2)
		l := startLoader(t, c, topic, 1)
		l.waitProgress(500, 30*time.Second)

		req := kadm.AlterPartitionAssignmentsReq{}
		req.Assign(topic, 0, []int32{3, 2})
		ares, err := adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		ares.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
			if r.Err != nil {
				t.Fatalf("reassign %s-%d: %v", r.Topic, r.Partition, r.Err)
			}
		})
		if got := reassignments(t, c); len(got) != 1 || !slices.Equal(got[0].AddingReplicas, []int32{3}) || !slices.Equal(got[0].RemovingReplicas, []int32{1}) {
			// It may have completed already on a fast machine.
			if len(got) != 0 {
				t.Fatalf("reassignments under way: %+v, want %s-0 adding [3] removing [1]", got, topic)
			}
		}
		deadline := time.Now().Add(60 * time.Second)
		for len(reassignments(t, c)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("reassignment still ongoing: %+v", reassignments(t, c))
			}
			time.Sleep(100 * time.Millisecond)
		}
		td := c.WaitFor(20*time.Second, "the new assignment", func(td kadm.TopicDetail) bool {
			p := td.Partitions[0]
			return slices.Equal(p.Replicas, []int32{3, 2}) && p.Leader != 1 && len(p.ISR) == 2
		}, topic)
		t.Logf("after the reassignment: %s", brokertest.DescribePartitions(td))
		l.waitProgress(200, 30*time.Second)
		l.stop()
		if errs := l.errs(); len(errs) > 0 {
			t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
		}
		checkNothingLost(t, consumeAll(t, c, topic), l)
		waitNoDir(t, filepath.Join(c.Broker(1).Dir, topic+"-0"))
	})
}
