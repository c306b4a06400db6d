package compat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// cluster is a coordinator and one broker.
type cluster struct {
	coord  *brokertest.Process
	broker *brokertest.Process
}

func startCluster(t *testing.T, o brokertest.BrokerOptions) *cluster {
	t.Helper()
	coord := brokertest.Coordinator(t)
	return &cluster{coord: coord, broker: brokertest.StartBroker(t, coord.Addr, o)}
}

func (c *cluster) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.broker.Addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (c *cluster) createTopic(t *testing.T, ctx context.Context, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(c.client(t))
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
}

// murmur2 is Kafka's murmur2 hash (the Java client's Utils.murmur2), and
// partitionFor is where the Java client puts a keyed record:
// toPositive(murmur2(key)) % partitions.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	n := length / 4
	for i := 0; i < n; i++ {
		k := uint32(data[i*4]) | uint32(data[i*4+1])<<8 | uint32(data[i*4+2])<<16 | uint32(data[i*4+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func partitionFor(key []byte, partitions int32) int32 {
	return (murmur2(key) & 0x7fffffff) % partitions
}

func TestMurmur2KnownValues(t *testing.T) {
	// Values from the Java client's UtilsTest.testMurmur2.
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range cases {
		if got := murmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// record is what a test wrote and expects back.
type record struct {
	key, value string
	partition  int32
}

// consumeAll reads topic from the start until n records arrived.
func consumeAll(t *testing.T, ctx context.Context, c *cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s after %d of %d records: %v", topic, len(out), n, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// checkOrder verifies that got holds exactly want, in order within each
// partition.
func checkOrder(t *testing.T, want []record, got []*kgo.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, wrote %d", len(got), len(want))
	}
	byPart := map[int32][]record{}
	for _, w := range want {
		byPart[w.partition] = append(byPart[w.partition], w)
	}
	next := map[int32]int{}
	lastOffset := map[int32]int64{}
	for _, g := range got {
		i := next[g.Partition]
		exp := byPart[g.Partition]
		if i >= len(exp) {
			t.Fatalf("partition %d: more records than written", g.Partition)
		}
		if string(g.Key) != exp[i].key || string(g.Value) != exp[i].value {
			t.Fatalf("partition %d record %d: got %q=%q, want %q=%q", g.Partition, i, g.Key, g.Value, exp[i].key, exp[i].value)
		}
		if prev, ok := lastOffset[g.Partition]; ok && g.Offset != prev+1 {
			t.Fatalf("partition %d: offset %d follows %d", g.Partition, g.Offset, prev)
		}
		lastOffset[g.Partition] = g.Offset
		next[g.Partition] = i + 1
	}
}

func uniqueTopic(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}
