package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestFranzGoCodecs produces keyed records with franz-go's defaults
// (idempotent, acks=all, murmur2 partitioning) under each compression codec
// and reads them back: every record equal, in order per partition, keyed
// records in the murmur2 partition.
func TestFranzGoCodecs(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{})
	ctx := brokertest.Context(t, 2*time.Minute)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	const partitions, n = 3, 600
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := uniqueTopic("franz-" + name)
			c.createTopic(t, ctx, topic, partitions, nil)
			// The Java client's default partitioner: murmur2 for keyed
			// records.
			cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec),
				kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
			var want []record
			for i := 0; i < n; i++ {
				key := fmt.Sprintf("key-%d", i%97)
				val := fmt.Sprintf("value-%d-%s", i, name)
				r := &kgo.Record{Key: []byte(key), Value: []byte(val), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(val)}}}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("produce %d: %v", i, err)
				}
				if wantP := partitionFor(r.Key, partitions); r.Partition != wantP {
					t.Fatalf("key %q went to partition %d; murmur2 says %d", key, r.Partition, wantP)
				}
				want = append(want, record{key: key, value: val, partition: r.Partition})
			}
			got := consumeAll(t, ctx, c, topic, n)
			checkOrder(t, want, got)
			for _, g := range got {
				if len(g.Headers) != 1 || string(g.Headers[0].Value) != string(g.Value) {
					t.Fatalf("record %d/%d lost its header: %+v", g.Partition, g.Offset, g.Headers)
				}
			}
		})
	}
}

// TestFranzGoAsyncBatches produces many records asynchronously, so that
// batches of many records (and pipelined produce requests) reach the
// broker, then consumes them.
func TestFranzGoAsyncBatches(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{})
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("franz-async")
	c.createTopic(t, ctx, topic, 4, nil)
	cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	const n = 20000
	want := make([]record, n)
	errs := make(chan error, 1)
	for i := 0; i < n; i++ {
		i := i
		key := fmt.Sprintf("k%d", i%1000)
		cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte(fmt.Sprint(i))}, func(r *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
			want[i] = record{key: key, value: fmt.Sprint(i), partition: r.Partition}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	// Within a partition, franz-go keeps the produce order, so the
	// expected order is the order of i.
	checkOrder(t, want, consumeAll(t, ctx, c, topic, n))
}
