package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMembers is the size of the measured consumer group.
const groupMembers = 3

// runGroups measures consumer groups on both targets with the same
// franz-go clients: the throughput of a 3-member group consuming a topic
// (from the moment all members are assigned until every record arrived), and
// how long a 3-member group takes to rebalance when its third member
// joins (from that member's start until all three hold their new
// assignments; eager range assignor, 100 ms heartbeats so that the broker,
// not the heartbeat interval, is measured).
func runGroups(ctx context.Context, targets []string, o options) error {
	const size = 100
	fmt.Printf("kbench groups: %d-member franz-go consumer group, %d partitions, %d-byte records, best of %d rounds\n",
		groupMembers, o.partitions, size, o.rounds)
	fmt.Printf("%-16s %-7s %12s %9s %9s %9s\n", "phase", "target", "records/s", "MB/s", "p50", "p99")
	names := []string{"runnel", "kfake"}
	var best [2]result
	var rebalance [2][]time.Duration
	for round := 0; round < o.rounds; round++ {
		for k := range targets {
			i := (k + round) % len(targets)
			topic := fmt.Sprintf("kbench-group-%d", time.Now().UnixNano())
			if err := createTopic(ctx, targets[i], topic, o.partitions); err != nil {
				return err
			}
			p, err := produce(ctx, targets[i], topic, size, o)
			if err != nil {
				return err
			}
			r, err := groupConsume(ctx, targets[i], topic, p.records, o)
			if err != nil {
				return fmt.Errorf("group consume on %s: %w", names[i], err)
			}
			if best[i].records == 0 || r.rate() > best[i].rate() {
				best[i] = r
			}
			d, err := groupRebalances(ctx, targets[i], topic, 5)
			if err != nil {
				return fmt.Errorf("rebalances on %s: %w", names[i], err)
			}
			rebalance[i] = append(rebalance[i], d...)
		}
	}
	for i, name := range names {
		fmt.Printf("%-16s %-7s %12.0f %9.1f %9s %9s\n", "group-consume", name, best[i].rate(), best[i].mbps(size), "-", "-")
	}
	fmt.Printf("%-16s %-7s %11.2fx %8.2fx\n", "group-consume", "ratio", best[0].rate()/best[1].rate(), best[0].mbps(size)/best[1].mbps(size))
	var p50 [2]time.Duration
	for i, name := range names {
		d := rebalance[i]
		slices.Sort(d)
		p50[i] = d[len(d)/2]
		fmt.Printf("%-16s %-7s %12s %9s %9s %9s\n", "rebalance-3", name, "-", "-", fmtDur(p50[i]), fmtDur(d[len(d)*99/100]))
	}
	fmt.Printf("%-16s %-7s %34.2fx\n", "rebalance-3", "ratio", float64(p50[0])/float64(p50[1]))
	return nil
}

// groupClient is a member of the benchmark group that counts records and
// reports when its assignment changes.
func groupClient(addr, group, topic string, consumed *atomic.Int64, assigned func()) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(50<<20),
		kgo.Balancers(kgo.RangeBalancer()), kgo.HeartbeatInterval(100*time.Millisecond), kgo.SessionTimeout(10*time.Second),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { assigned() }))
}

// groupConsume reads want records with a 3-member group. The clock runs
// from the moment all three members hold partitions (the group is formed:
// how long forming takes depends on group.initial.rebalance.delay.ms) to
// the last record; records read before that are not counted.
func groupConsume(ctx context.Context, addr, topic string, want int, o options) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.duration+60*time.Second)
	defer cancel()
	var consumed, base atomic.Int64
	var mu sync.Mutex
	assigned := map[int]bool{}
	var start time.Time
	group := fmt.Sprintf("kbench-consume-%d", time.Now().UnixNano())
	var wg sync.WaitGroup
	var clients []*kgo.Client
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for m := 0; m < groupMembers; m++ {
		cl, err := groupClient(addr, group, topic, &consumed, func() {
			mu.Lock()
			defer mu.Unlock()
			if assigned[m] = true; len(assigned) == groupMembers && start.IsZero() {
				start = time.Now()
				base.Store(consumed.Load())
			}
		})
		if err != nil {
			return result{}, err
		}
		clients = append(clients, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				if consumed.Add(int64(fs.NumRecords())) >= int64(want) {
					return
				}
			}
		}()
	}
	for consumed.Load() < int64(want) {
		if ctx.Err() != nil {
			wg.Wait()
			return result{}, fmt.Errorf("%d of %d records: %w", consumed.Load(), want, ctx.Err())
		}
		time.Sleep(time.Millisecond)
	}
	end := time.Now()
	cancel() // wakes the members still polling
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if start.IsZero() || int(consumed.Load()-base.Load()) < want/2 {
		return result{}, fmt.Errorf("the group formed only after %d of %d records were read; use more --records", base.Load(), want)
	}
	return result{records: int(consumed.Load() - base.Load()), elapsed: end.Sub(start)}, nil
}

// groupRebalances runs n rounds of: two members stable, a third joins;
// each round's time runs from the third member's start until all three
// hold their assignments again.
func groupRebalances(ctx context.Context, addr, topic string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for r := 0; r < n; r++ {
		group := fmt.Sprintf("kbench-rebalance-%d", time.Now().UnixNano())
		var mu sync.Mutex
		gen := map[int]int{} // member -> assignments received
		var clients []*kgo.Client
		closeAll := func() {
			for _, cl := range clients {
				cl.Close()
			}
		}
		var sink atomic.Int64
		join := func(m int) error {
			cl, err := groupClient(addr, group, topic, &sink, func() {
				mu.Lock()
				gen[m]++
				mu.Unlock()
			})
			if err != nil {
				return err
			}
			clients = append(clients, cl)
			go func() {
				for {
					fs := cl.PollFetches(ctx)
					if fs.IsClientClosed() || ctx.Err() != nil {
						return
					}
				}
			}()
			return nil
		}
		wait := func(what string, ok func() bool) error {
			deadline := time.Now().Add(60 * time.Second)
			for !ok() {
				if time.Now().After(deadline) {
					return fmt.Errorf("no %s after 60s", what)
				}
				time.Sleep(200 * time.Microsecond)
			}
			return nil
		}
		for m := 0; m < 2; m++ {
			if err := join(m); err != nil {
				closeAll()
				return nil, err
			}
		}
		if err := wait("stable 2-member group", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return gen[0] > 0 && gen[1] > 0
		}); err != nil {
			closeAll()
			return nil, err
		}
		time.Sleep(300 * time.Millisecond) // let the first rebalance settle
		mu.Lock()
		before := map[int]int{0: gen[0], 1: gen[1]}
		mu.Unlock()
		t0 := time.Now()
		if err := join(2); err != nil {
			closeAll()
			return nil, err
		}
		err := wait("3-member rebalance", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return gen[2] > 0 && gen[0] > before[0] && gen[1] > before[1]
		})
		d := time.Since(t0)
		closeAll()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
