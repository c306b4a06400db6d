package compat

import (
	"fmt"
	"hash"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestSaramaCodecs produces with sarama's sync producer (its default hash
// partitioner is not murmur2, so the murmur2-compatible one is set) under
// each codec and consumes with its partition consumer.
func TestSaramaCodecs(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{})
	ctx := brokertest.Context(t, 2*time.Minute)
	codecs := map[string]sarama.CompressionCodec{
		"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	}
	const partitions, n = 3, 300
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := uniqueTopic("sarama-" + name)
			c.createTopic(t, ctx, topic, partitions, nil)
			cfg := sarama.NewConfig()
			cfg.Version = sarama.V2_8_0_0
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForLocal
			cfg.Producer.Compression = codec
			cfg.Producer.Partitioner = sarama.NewCustomPartitioner(sarama.WithCustomHashFunction(newMurmur2))
			prod, err := sarama.NewSyncProducer([]string{c.broker.Addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			var want []record
			var msgs []*sarama.ProducerMessage
			for i := 0; i < n; i++ {
				key := fmt.Sprintf("key-%d", i%31)
				val := fmt.Sprintf("sarama-%s-%d", name, i)
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(val)})
				want = append(want, record{key: key, value: val, partition: partitionFor([]byte(key), partitions)})
			}
			// Send in groups so that batches hold several records.
			for i := 0; i < n; i += 50 {
				if err := prod.SendMessages(msgs[i : i+50]); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
			for i, m := range msgs {
				if m.Partition != want[i].partition {
					t.Fatalf("sarama put key %s in partition %d; murmur2 says %d", want[i].key, m.Partition, want[i].partition)
				}
			}
			cons, err := sarama.NewConsumer([]string{c.broker.Addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			got := map[int32][]*sarama.ConsumerMessage{}
			count := 0
			for p := int32(0); p < partitions; p++ {
				pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
				if err != nil {
					t.Fatal(err)
				}
				expect := 0
				for _, w := range want {
					if w.partition == p {
						expect++
					}
				}
				for len(got[p]) < expect {
					select {
					case m := <-pc.Messages():
						got[p] = append(got[p], m)
						count++
					case err := <-pc.Errors():
						t.Fatal(err)
					case <-ctx.Done():
						t.Fatalf("partition %d: %d of %d records", p, len(got[p]), expect)
					}
				}
				pc.Close()
			}
			idx := map[int32]int{}
			for _, w := range want {
				m := got[w.partition][idx[w.partition]]
				if string(m.Key) != w.key || string(m.Value) != w.value || m.Offset != int64(idx[w.partition]) {
					t.Fatalf("partition %d record %d: got %s=%s@%d, want %s=%s", w.partition, idx[w.partition], m.Key, m.Value, m.Offset, w.key, w.value)
				}
				idx[w.partition]++
			}
			if count != n {
				t.Fatalf("read %d of %d", count, n)
			}
		})
	}
}

// murmur2Hash feeds sarama's hash partitioner Kafka's murmur2 with the
// sign bit masked, so that its modulo equals the Java client's.
type murmur2Hash struct{ buf []byte }

func newMurmur2() hash.Hash32 { return &murmur2Hash{} }

func (h *murmur2Hash) Write(p []byte) (int, error) { h.buf = append(h.buf, p...); return len(p), nil }
func (h *murmur2Hash) Sum(b []byte) []byte {
	v := h.Sum32()
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
func (h *murmur2Hash) Reset()         { h.buf = h.buf[:0] }
func (h *murmur2Hash) Size() int      { return 4 }
func (h *murmur2Hash) BlockSize() int { return 4 }
func (h *murmur2Hash) Sum32() uint32  { return uint32(murmur2(h.buf) & 0x7fffffff) }
