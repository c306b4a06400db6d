package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestListOffsetsByTimestamp finds records by timestamp inside batches of
// every codec: the answer is the exact record, not its batch.
func TestListOffsetsByTimestamp(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{})
	ctx := brokertest.Context(t, time.Minute)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := uniqueTopic("ts-" + name)
			c.createTopic(t, ctx, topic, 1, nil)
			cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(50*time.Millisecond))
			// Ten records, one batch, timestamps 10 s apart.
			var results kgo.ProduceResults
			done := make(chan struct{})
			for i := 0; i < 10; i++ {
				r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * 10 * time.Second)}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					results = append(results, kgo.ProduceResult{Record: r, Err: err})
					if len(results) == 10 {
						close(done)
					}
				})
			}
			<-done
			if err := results.FirstErr(); err != nil {
				t.Fatal(err)
			}
			for _, q := range []struct {
				ts   time.Time
				want int64
			}{
				{base.Add(-time.Minute), 0},
				{base.Add(35 * time.Second), 4},
				{base.Add(90 * time.Second), 9},
				{base.Add(91 * time.Second), -1},
			} {
				req := kmsg.NewPtrListOffsetsRequest()
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = q.ts.UnixMilli()
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					t.Fatal(err)
				}
				p := resp.Topics[0].Partitions[0]
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					t.Fatal(err)
				}
				if p.Offset != q.want {
					t.Errorf("timestamp %s: offset %d, want %d", q.ts.Sub(base), p.Offset, q.want)
				}
				if q.want >= 0 && p.Timestamp != base.Add(time.Duration(q.want)*10*time.Second).UnixMilli() {
					t.Errorf("timestamp %s: record timestamp %d", q.ts.Sub(base), p.Timestamp)
				}
			}
		})
	}
}
