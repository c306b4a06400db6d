package compat

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestKillDuringLoad kills the broker with SIGKILL while an acks=1
// producer is busy, restarts it on the same data, and reads every record
// that was acknowledged before the kill.
func TestKillDuringLoad(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{
		"zookeeper.session.timeout.ms=4000", // the old registration expires quickly
		"log.segment.bytes=65536",           // several segments, so recovery crosses them
	}})
	ctx := brokertest.Context(t, 3*time.Minute)
	topic := uniqueTopic("restart")
	c.createTopic(t, ctx, topic, 3, nil)

	cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0), kgo.RecordDeliveryTimeout(5*time.Second))
	var mu sync.Mutex
	acked := map[string]int64{}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; loadCtx.Err() == nil; i++ {
			v := fmt.Sprintf("r%07d", i)
			cl.Produce(loadCtx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[string(r.Value)] = r.Offset
					mu.Unlock()
				}
			})
			if i%200 == 0 {
				time.Sleep(time.Millisecond) // keep the load steady, not unbounded
			}
		}
	}()
	// Kill once a good number of records were acknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.broker.Kill()
	stopLoad()
	wg.Wait()
	mu.Lock()
	snapshot := make(map[string]int64, len(acked))
	for k, v := range acked {
		snapshot[k] = v
	}
	mu.Unlock()
	if len(snapshot) == 0 {
		t.Fatal("no record was acknowledged before the kill")
	}
	t.Logf("%d records acknowledged before kill -9", len(snapshot))

	c.broker.Restart()
	cons := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	found := 0
	seen := map[string]bool{}
	idle := 0
	for found < len(snapshot) && idle < 25 {
		pctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
		fs := cons.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			idle++
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := snapshot[string(r.Value)]; ok && !seen[string(r.Value)] {
				seen[string(r.Value)] = true
				found++
			}
		})
	}
	if found != len(snapshot) {
		missing := 0
		for k := range snapshot {
			if !seen[k] {
				missing++
				if missing < 5 {
					t.Errorf("acknowledged record %s (offset %d) is gone", k, snapshot[k])
				}
			}
		}
		t.Fatalf("%d of %d acknowledged records missing after restart", missing, len(snapshot))
	}
}
