package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestGroupsSurviveTheirCoordinator runs a consumer group on a cluster
// whose __consumer_offsets is replicated three times and was created
// through a broker that is not the controller. The group commits; its
// coordinator's broker is killed; another broker, which has the offsets
// partition's records, becomes the coordinator and serves the committed
// offsets, and the group resumes from them.
func TestGroupsSurviveTheirCoordinator(t *testing.T) {
	eachCoordinator(t, func(t *testing.T, coord string) {
		c := brokertest.StartCluster(t, brokertest.ClusterOptions{Coordinator: coord,
			Settings: []string{"offsets.topic.replication.factor=3", "offsets.topic.num.partitions=6"}})
		ctx := brokertest.Context(t, 3*time.Minute)
		const topic, group = "work", "workers"
		c.CreateTopic(ctx, topic, 2, 3, nil)

		// FindCoordinator through a broker that is not the controller
		// creates __consumer_offsets there.
		md, err := c.Admin().BrokerMetadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		other := md.Controller%3 + 1
		direct, err := kgo.NewClient(kgo.SeedBrokers(c.Broker(other).Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer direct.Close()
		c.WaitFor(30*time.Second, "the offsets topic created through a non-controller", func(kadm.TopicDetail) bool {
			_, err := findCoordinator(ctx, direct.SeedBrokers()[0], group)
			return err == nil
		}, topic)
		fullISR(t, c, "__consumer_offsets", 3)

		prod := c.Client()
		for i := 0; i < 100; i++ {
			prod.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("job")}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		consume := func(n int) {
			t.Helper()
			cl := c.Client(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond))
			defer cl.Close()
			got := 0
			for got < n {
				fs := cl.PollRecords(ctx, n-got)
				if ctx.Err() != nil {
					t.Fatalf("consumed %d of %d", got, n)
				}
				got += fs.NumRecords()
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					t.Fatalf("commit: %v", err)
				}
			}
		}
		consume(60)
		committed := func() int64 {
			t.Helper()
			offs, err := c.Admin().FetchOffsets(ctx, group)
			if err != nil {
				t.Fatalf("fetch offsets: %v", err)
			}
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
			return sum
		}
		before := committed()
		if before < 60 {
			t.Fatalf("committed %d records' worth, want at least 60", before)
		}

		owner, err := findCoordinator(ctx, direct.SeedBrokers()[0], group)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("killing broker %d, the group's coordinator", owner)
		c.Broker(owner).Kill()
		deadline := time.Now().Add(60 * time.Second)
		survivor := owner%3 + 1
		direct2, err := kgo.NewClient(kgo.SeedBrokers(c.Broker(survivor).Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer direct2.Close()
		for {
			id, err := findCoordinator(ctx, direct2.SeedBrokers()[0], group)
			if err == nil && id != owner {
				t.Logf("broker %d coordinates the group now", id)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no new coordinator: %d %v", id, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if after := committed(); after != before {
			t.Fatalf("the new coordinator serves %d committed, the old one %d", after, before)
		}
		consume(40) // the rest: the group resumes where it committed
		if got := committed(); got != 100 {
			t.Fatalf("committed %d after consuming the rest, want 100", got)
		}
	})
}

// findCoordinator asks one broker for a group's coordinator (FindCoordinator
// v4 batches its keys).
func findCoordinator(ctx context.Context, b *kgo.Broker, group string) (int32, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorKeys = []string{group}
	resp, err := b.Request(ctx, req)
	if err != nil {
		return -1, err
	}
	r := resp.(*kmsg.FindCoordinatorResponse)
	if len(r.Coordinators) > 0 {
		if err := kerr.ErrorForCode(r.Coordinators[0].ErrorCode); err != nil {
			return -1, err
		}
		return r.Coordinators[0].NodeID, nil
	}
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return -1, err
	}
	return r.NodeID, nil
}
