package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestInProcessBroker runs a broker inside the test process (so that the
// race detector sees every handler, the wire loop and the metadata
// watches) against Runnel's coordinator, with concurrent producers, a
// long-polling consumer, topic administration and a clean stop.
func TestInProcessBroker(t *testing.T) {
	coord := brokertest.Coordinator(t)
	for _, storage := range []string{"file", "memory"} {
		t.Run(storage, func(t *testing.T) {
			ctx := brokertest.Context(t, 2*time.Minute)
			b, err := New(Params{
				Config: Config{ID: 1, Listen: "127.0.0.1:0", DataDir: t.TempDir(), Coordinator: coord.Addr + "/" + storage,
					Storage: storage, Settings: []string{"num.partitions=4;log.retention.check.interval.ms=100"}},
				Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer b.Stop(context.Background())
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto"),
				kgo.ConsumeTopics("auto"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			const producers, each = 4, 500
			var wg sync.WaitGroup
			errs := make(chan error, producers)
			for p := 0; p < producers; p++ {
				wg.Add(1)
				go func(p int) {
					defer wg.Done()
					for i := 0; i < each; i++ {
						r := &kgo.Record{Key: []byte(fmt.Sprint(p)), Value: []byte(fmt.Sprintf("%d-%d", p, i))}
						if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
							errs <- err
							return
						}
					}
				}(p)
			}
			got := map[string]int{}
			total := 0
			for total < producers*each {
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatal(err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					var p, i int
					fmt.Sscanf(string(r.Value), "%d-%d", &p, &i)
					if got[string(r.Key)] != i {
						t.Fatalf("producer %d: record %d after %d", p, i, got[string(r.Key)])
					}
					got[string(r.Key)]++
					total++
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			adm := kadm.NewClient(cl)
			if _, err := adm.CreateTopic(ctx, 2, 1, nil, "admin"); err != nil {
				t.Fatal(err)
			}
			if _, err := adm.CreatePartitions(ctx, 2, "admin"); err != nil {
				t.Fatal(err)
			}
			cfgs, err := adm.DescribeTopicConfigs(ctx, "admin")
			if err != nil || len(cfgs) != 1 || len(cfgs[0].Configs) == 0 {
				t.Fatalf("describe configs: %v %v", cfgs, err)
			}
			if _, err := adm.DeleteTopics(ctx, "admin"); err != nil {
				t.Fatal(err)
			}
			td, err := adm.ListTopics(ctx)
			if err != nil || td.Has("admin") || !td.Has("auto") || len(td["auto"].Partitions) != 4 {
				t.Fatalf("topics after deletion: %v %v", td.Names(), err)
			}
		})
	}
}
