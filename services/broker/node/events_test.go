package node

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/sdk/events"
	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestPublishesOffsetEvents runs a broker with --nats-url against a real
// NATS server and checks, with a NATS subscriber decoding through
// sdk/events, what a franz-go producer and group consumer make it
// publish: the log ends of the partitions it leads, the group's
// membership and its commits, ordered by their place in
// __consumer_offsets.
func TestPublishesOffsetEvents(t *testing.T) {
	srv := brokertest.NATS(t, 0)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	logEnds := map[int32]int64{}
	var commits []events.Commit
	var members []events.Members
	var bad []string
	if _, err := nc.Subscribe("runnel.it.>", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		switch m.Subject {
		case "runnel.it.offsets.log_end":
			v, err := events.DecodeLogEnd(m.Data)
			if err != nil {
				bad = append(bad, err.Error())
			}
			for _, p := range v.Partitions {
				if p.Topic == group.Topic {
					bad = append(bad, "published the internal topic")
				}
				if p.Topic == "orders" {
					if p.PartitionCount != 2 {
						bad = append(bad, "orders has 2 partitions")
					}
					logEnds[p.Partition] = p.Offset
				}
			}
		case "runnel.it.offsets.commit":
			v, err := events.DecodeCommit(m.Data)
			if err != nil {
				bad = append(bad, err.Error())
			}
			commits = append(commits, v)
		case "runnel.it.groups.members":
			v, err := events.DecodeMembers(m.Data)
			if err != nil {
				bad = append(bad, err.Error())
			}
			members = append(members, v)
		default:
			bad = append(bad, "unexpected subject "+m.Subject)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	coord := brokertest.Coordinator(t)
	ctx := brokertest.Context(t, 2*time.Minute)
	b, err := New(Params{
		Config: Config{ID: 1, Listen: "127.0.0.1:0", DataDir: t.TempDir(), Coordinator: coord.Addr + "/events", Storage: "memory",
			Settings: []string{"offsets.topic.num.partitions=3;group.initial.rebalance.delay.ms=0"},
			NATSURL:  srv.ClientURL(), NATSSubjectPrefix: "runnel", ClusterName: "it", NATSInterval: 50 * time.Millisecond},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ClientID("node-test"), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for got := 0; got < 10; {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	consumer.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"orders": {0: {Epoch: -1, Offset: 3}}}, nil)

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(commits) >= 2 && logEnds[0] == 5 && logEnds[1] == 5 && len(members) > 0
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("events after 30s: log ends %v, commits %+v, members %+v", logEnds, commits, members)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("bad events: %v", bad)
	}
	first, second := commits[0], commits[1]
	if first.Group != "billing" || first.Order == nil || len(first.Offsets) != 2 || first.Offsets[0].Offset+first.Offsets[1].Offset != 10 {
		t.Errorf("first commit %+v", first)
	}
	if second.Order == nil || *second.Order <= *first.Order || len(second.Offsets) != 1 || second.Offsets[0].Offset != 3 {
		t.Errorf("second commit %+v (first at order %d)", second, *first.Order)
	}
	last := members[len(members)-1]
	if last.Group != "billing" || last.Generation < 1 || len(last.Members) != 1 || last.Members[0].ClientID != "node-test" ||
		last.Members[0].ClientHost == "" || len(last.Members[0].Assignments["orders"]) != 2 {
		t.Errorf("members %+v", members)
	}
}
