// Command sdkbench compares the SDK's producer with raw kgo, producing
// 100-byte records to franz-go's in-memory cluster (kfake) in the same
// process, and prints the SDK's throughput as a ratio of kgo's. The
// target is an overhead of at most 10% (a ratio of 0.90 or more).
package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/sdk"
)

const topic = "bench"

var value = make([]byte, 100)

// cluster starts a fresh in-memory cluster for one measurement: kfake
// keeps every record in memory, so a cluster reused across measurements
// would slow down whichever runs later.
func cluster(b *testing.B) []string {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c.ListenAddrs()
}

// rawKgo produces b.N records with kgo directly.
func rawKgo() func(b *testing.B) {
	return func(b *testing.B) {
		seeds := cluster(b)
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		ctx := context.Background()
		b.SetBytes(int64(len(value)))
		b.ResetTimer()
		for range b.N {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// withSDK produces b.N records through the SDK's typed producer.
func withSDK() func(b *testing.B) {
	return func(b *testing.B) {
		seeds := cluster(b)
		p, err := sdk.NewProducer(sdk.Bytes(), sdk.Bytes(), sdk.Brokers(seeds...), sdk.DefaultTopic(topic))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.SetBytes(int64(len(value)))
		b.ResetTimer()
		for range b.N {
			p.Send(ctx, sdk.Message[[]byte, []byte]{Value: value}, func(d sdk.Delivery[[]byte, []byte]) {
				if d.Err != nil {
					b.Error(d.Err)
				}
			})
		}
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func main() {
	rounds := flag.Int("rounds", 3, "measurements of each, alternating; the medians are compared")
	flag.Parse()
	var raw, wrapped []float64
	for i := range *rounds {
		// Alternate which goes first, so neither always runs on a warmer
		// (or more loaded) machine.
		if i%2 == 0 {
			raw = append(raw, rate(testing.Benchmark(rawKgo())))
			wrapped = append(wrapped, rate(testing.Benchmark(withSDK())))
		} else {
			wrapped = append(wrapped, rate(testing.Benchmark(withSDK())))
			raw = append(raw, rate(testing.Benchmark(rawKgo())))
		}
	}
	r, s := median(raw), median(wrapped)
	fmt.Printf("produce 100-byte records to kfake, median of %d:\n", *rounds)
	fmt.Printf("  raw kgo   %10.0f records/s\n", r)
	fmt.Printf("  sdk       %10.0f records/s\n", s)
	fmt.Printf("  sdk/kgo   %10.3f (target >= 0.90)\n", s/r)
}

func rate(r testing.BenchmarkResult) float64 {
	if r.T <= 0 {
		return 0
	}
	return float64(r.N) / r.T.Seconds()
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
