// Command consumer-group runs members of one consumer group in this
// process, each reading the partitions the group gives it, committing what
// it processed, until the group has read --count records.
//
//	go run ./consumer-group --bootstrap-server 127.0.0.1:9092 --topic orders --group billing --members 2 --count 10
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-io/runnel/sdk"
)

func main() {
	bootstrap := flag.String("bootstrap-server", "127.0.0.1:9092", "broker address")
	topic := flag.String("topic", "orders", "topic to read")
	group := flag.String("group", "billing", "consumer group")
	members := flag.Int("members", 2, "consumers to run in the group")
	count := flag.Int64("count", 10, "stop once the group has read this many records")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var (
		read atomic.Int64
		mu   sync.Mutex
		owns = map[string][]int32{}
		wg   sync.WaitGroup
		errs = make(chan error, *members)
	)
	for m := range *members {
		name := fmt.Sprintf("member-%d", m)
		c, err := sdk.NewConsumer(sdk.String(), sdk.JSON[json.RawMessage](),
			sdk.Brokers(*bootstrap), sdk.Topics(*topic), sdk.Group(*group),
			sdk.ClientID(name), sdk.FromBeginning(), sdk.ManualCommit(),
			sdk.OnAssigned(func(_ context.Context, a map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				owns[name] = append(owns[name], a[*topic]...)
				fmt.Printf("%s assigned partitions %v\n", name, a[*topic])
			}),
			sdk.OnRevoked(func(_ context.Context, r map[string][]int32) {
				fmt.Printf("%s revoked partitions %v\n", name, r[*topic])
			}),
		)
		if err != nil {
			fmt.Fprintln(os.Stderr, "consumer-group:", err)
			os.Exit(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close(context.Background())
			for read.Load() < *count && ctx.Err() == nil {
				pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				recs, err := c.Poll(pctx)
				pcancel()
				if err != nil && pctx.Err() == nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
				for _, r := range recs {
					if r.Err != nil {
						errs <- r.Err
						return
					}
					// Process inside a span that joins the producer's trace.
					_ = c.Process(ctx, r, func(context.Context) error {
						fmt.Printf("%s read %s/%d@%d key=%s value=%s\n", name, r.Topic, r.Partition, r.Offset, r.Key, r.Value)
						return nil
					})
				}
				if len(recs) > 0 {
					if err := c.Commit(ctx, recs...); err != nil {
						errs <- fmt.Errorf("%s: %w", name, err)
						return
					}
					read.Add(int64(len(recs)))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "consumer-group:", err)
		os.Exit(1)
	}
	if read.Load() < *count {
		fmt.Fprintf(os.Stderr, "consumer-group: read %d of %d records before the timeout\n", read.Load(), *count)
		os.Exit(1)
	}
	names := make([]string, 0, len(owns))
	for n := range owns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("%s owned %v\n", n, owns[n])
	}
	fmt.Printf("group %s read %d records\n", *group, read.Load())
}
