// Command sdkbench compares the SDK's producer with raw kgo, producing
// 100-byte records to franz-go's in-memory cluster (kfake) in the same
// process, and prints the SDK's figures as ratios of kgo's. The target is
// an overhead of at most 10%: a throughput ratio of 0.90 or more.
//
// Three figures are measured per record: throughput (records/s), CPU time
// (user + system time of the whole process, kfake included, divided by
// the records) and heap allocations. Throughput swings with the load of a
// shared machine; CPU time per record and allocations much less, so they
// are the figures to compare between runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

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

// cpuTime is the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sample is one measurement.
type sample struct {
	rate      float64 // records/s
	cpu       float64 // ns of CPU time per record
	allocs    float64 // heap allocations per record
	allocSize float64 // bytes allocated per record
}

// measure runs one benchmark of produce, which sends b.N records and
// flushes. testing.Benchmark calls it with growing b.N; the CPU time of
// its last (reported) call is kept.
func measure(produce func(b *testing.B)) sample {
	var cpu time.Duration
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(value)))
		start := cpuTime()
		b.ResetTimer()
		produce(b)
		b.StopTimer()
		cpu = cpuTime() - start
	})
	if r.N == 0 || r.T <= 0 {
		fmt.Fprintln(os.Stderr, "sdkbench: a benchmark failed")
		os.Exit(1)
	}
	n := float64(r.N)
	return sample{
		rate:      n / r.T.Seconds(),
		cpu:       float64(cpu.Nanoseconds()) / n,
		allocs:    float64(r.MemAllocs) / n,
		allocSize: float64(r.MemBytes) / n,
	}
}

// rawKgo produces b.N records with kgo directly, with a promise for each
// as an application that wants delivery results has.
func rawKgo(b *testing.B) {
	seeds := cluster(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			b.Error(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		cl.Produce(ctx, &kgo.Record{Value: value}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// withSDK produces b.N records through the SDK's typed producer, made
// with opts.
func withSDK(opts ...sdk.ProducerOpt) func(b *testing.B) {
	return func(b *testing.B) {
		seeds := cluster(b)
		p, err := sdk.NewProducer(sdk.Bytes(), sdk.Bytes(), append([]sdk.ProducerOpt{sdk.Brokers(seeds...), sdk.DefaultTopic(topic)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		done := func(d sdk.Delivery[[]byte, []byte]) {
			if d.Err != nil {
				b.Error(d.Err)
			}
		}
		b.ResetTimer()
		for range b.N {
			p.Send(ctx, sdk.Message[[]byte, []byte]{Value: value}, done)
		}
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// target is one way of producing.
type target struct {
	name    string
	produce func(b *testing.B)
	samples []sample
}

func main() {
	rounds := flag.Int("rounds", 5, "measurements of each, in rotating order; the medians are compared")
	traced := flag.Bool("traced", true, "also measure the SDK with a tracing SDK that samples every record (spans are dropped, not exported), and with one that samples none")
	flag.Parse()

	targets := []*target{
		{name: "raw kgo", produce: rawKgo},
		{name: "sdk", produce: withSDK()},
	}
	if *traced {
		// Every record gets a recorded span and a traceparent header;
		// with no span processor the ended spans go nowhere.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		targets = append(targets, &target{name: "sdk, every record traced", produce: withSDK(sdk.TracerProvider(tp))})
		// Spans that are not sampled still carry their trace context in
		// the records' headers.
		unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		targets = append(targets, &target{name: "sdk, traced, not sampled", produce: withSDK(sdk.TracerProvider(unsampled))})
	}
	for i := range *rounds {
		// Rotate which goes first, so none always runs on a warmer (or
		// more loaded) machine.
		for j := range targets {
			t := targets[(i+j)%len(targets)]
			t.samples = append(t.samples, measure(t.produce))
		}
	}

	fmt.Printf("produce 100-byte records to kfake, median of %d rounds:\n", *rounds)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\trecords/s\tCPU ns/record\tallocs/record\tB/record\tthroughput vs kgo\tCPU vs kgo\t")
	raw := medians(targets[0].samples)
	for _, t := range targets {
		m := medians(t.samples)
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.2f\t%.0f\t%.3f\t%.3f\t\n", t.name, m.rate, m.cpu, m.allocs, m.allocSize, m.rate/raw.rate, m.cpu/raw.cpu)
	}
	w.Flush()
	fmt.Println("target: sdk throughput vs kgo >= 0.90 (at most 10% overhead)")
}

// medians takes the median of each figure separately.
func medians(ss []sample) sample {
	pick := func(f func(sample) float64) float64 {
		xs := make([]float64, len(ss))
		for i, s := range ss {
			xs[i] = f(s)
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	return sample{
		rate:      pick(func(s sample) float64 { return s.rate }),
		cpu:       pick(func(s sample) float64 { return s.cpu }),
		allocs:    pick(func(s sample) float64 { return s.allocs }),
		allocSize: pick(func(s sample) float64 { return s.allocSize }),
	}
}
