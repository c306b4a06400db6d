package sdk_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/sdk"
)

// The SDK's produce path against raw kgo, both to kfake in this process;
// `make bench` prints their ratio (internal/cmd/sdkbench). Each reports
// cpu-ns/op, the process's user and system time per record (kfake's
// included), which a loaded machine disturbs less than ns/op.

// cpuTime is the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchCluster(b *testing.B) []string {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c.ListenAddrs()
}

func BenchmarkProduceRawKgo(b *testing.B) {
	seeds := benchCluster(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	value := make([]byte, 100)
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	// A promise, as an application that wants delivery results has.
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			b.Error(err)
		}
	}
	start := cpuTime()
	for range b.N {
		cl.Produce(ctx, &kgo.Record{Value: value}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkProduceSDK(b *testing.B) {
	seeds := benchCluster(b)
	p, err := sdk.NewProducer(sdk.Bytes(), sdk.Bytes(), sdk.Brokers(seeds...), sdk.DefaultTopic("bench"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	value := make([]byte, 100)
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	done := func(d sdk.Delivery[[]byte, []byte]) {
		if d.Err != nil {
			b.Error(d.Err)
		}
	}
	start := cpuTime()
	for range b.N {
		p.Send(ctx, sdk.Message[[]byte, []byte]{Value: value}, done)
	}
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
