package compat

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// dropProxy forwards Kafka connections to a broker, but for chosen
// produce requests it forwards the request, waits for the broker's
// answer, throws the answer away and cuts the connection: the broker has
// written the batch, the producer never hears so, and retries.
type dropProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	produces int          // produce requests seen
	dropAt   map[int]bool // which ones (1-based) lose their answer
	dropped  int
}

func newDropProxy(t *testing.T, dropAt ...int) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, dropAt: map[int]bool{}}
	for _, n := range dropAt {
		p.dropAt[n] = true
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	return p
}

func (p *dropProxy) Addr() string { return p.ln.Addr().String() }

func (p *dropProxy) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// readFrame reads one size-prefixed Kafka frame.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 200<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	_, err := io.ReadFull(r, frame[4:])
	return frame, err
}

func (p *dropProxy) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	var once sync.Once
	cut := func() { once.Do(func() { client.Close(); server.Close() }) }
	defer cut()
	drop := make(chan int32, 8) // correlation ids whose answers are dropped
	go func() {
		defer cut()
		var doomed = map[int32]bool{}
		for {
			frame, err := readFrame(server)
			if err != nil {
				return
			}
			for len(drop) > 0 {
				doomed[<-drop] = true
			}
			if doomed[int32(binary.BigEndian.Uint32(frame[4:]))] {
				p.mu.Lock()
				p.dropped++
				p.mu.Unlock()
				return // the answer is lost with the connection
			}
			if _, err := client.Write(frame); err != nil {
				return
			}
		}
	}()
	for {
		frame, err := readFrame(client)
		if err != nil {
			return
		}
		if len(frame) >= 12 && binary.BigEndian.Uint16(frame[4:]) == 0 { // Produce
			p.mu.Lock()
			p.produces++
			if p.dropAt[p.produces] {
				drop <- int32(binary.BigEndian.Uint32(frame[8:]))
			}
			p.mu.Unlock()
		}
		if _, err := server.Write(frame); err != nil {
			return
		}
	}
}

// TestIdempotentProducerRetriesWithoutDuplicates sends franz-go's
// idempotent producer (acks=all) through a proxy that cuts the connection
// after the broker stored some produce requests but before their answers
// arrive. The producer retries them with the same sequence numbers; the
// broker recognises the retries and acknowledges them without writing them
// again, so every record is in the log exactly once.
func TestIdempotentProducerRetriesWithoutDuplicates(t *testing.T) {
	proxy := newDropProxy(t, 2, 5, 9, 14)
	c := startCluster(t, brokertest.BrokerOptions{Args: []string{"--advertised-listener", proxy.Addr()}})
	proxy.target = c.broker.Addr
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("idempotent")
	c.createTopic(t, ctx, topic, 3, nil)

	cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.Addr()), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(0), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const rounds, per = 20, 30
	for r := 0; r < rounds; r++ {
		var recs []*kgo.Record
		for i := 0; i < per; i++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("r%03d-%03d", r, i))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
	}
	if proxy.Dropped() < 4 {
		t.Fatalf("the proxy dropped %d answers; the test needs 4", proxy.Dropped())
	}
	checkExactlyOnce(t, ctx, c, topic, rounds*per)
}

// confluentIdempotent produces n records with librdkafka's idempotent
// producer and prints how many were delivered.
const confluentIdempotent = `
import json, sys
from confluent_kafka import Producer
bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
              "linger.ms": 5, "retry.backoff.ms": 50, "partitioner": "murmur2_random"})
ok, failed = 0, []
def report(err, msg):
    global ok
    if err:
        failed.append(str(err))
    else:
        ok += 1
for i in range(n):
    p.produce(topic, key=("k%d" % (i % 11)).encode(), value=("c%05d" % i).encode(), on_delivery=report)
    if i % 50 == 49:
        p.flush(30)
p.flush(30)
print(json.dumps({"p": 0, "delivered": ok, "failed": failed[:3]}))
`

// TestLibrdkafkaIdempotentProducerRetries is the same through
// confluent-kafka's idempotent producer (librdkafka).
func TestLibrdkafkaIdempotentProducerRetries(t *testing.T) {
	py := brokertest.Python(t, "confluent_kafka", "python3-confluent-kafka")
	proxy := newDropProxy(t, 3, 6, 10)
	c := startCluster(t, brokertest.BrokerOptions{Args: []string{"--advertised-listener", proxy.Addr()}})
	proxy.target = c.broker.Addr
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("idempotent-rdkafka")
	c.createTopic(t, ctx, topic, 3, nil)
	const n = 600
	out, err := exec.CommandContext(ctx, py, "-c", confluentIdempotent, proxy.Addr(), topic, fmt.Sprint(n)).CombinedOutput()
	if err != nil {
		t.Fatalf("producer: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf(`"delivered": %d, "failed": []`, n)) {
		t.Fatalf("producer reported %s", out)
	}
	if proxy.Dropped() < 3 {
		t.Fatalf("the proxy dropped %d answers; the test needs 3", proxy.Dropped())
	}
	checkExactlyOnce(t, ctx, c, topic, n)
}

// checkExactlyOnce reads the topic and checks it holds n distinct values,
// and nothing else.
func checkExactlyOnce(t *testing.T, ctx context.Context, c *cluster, topic string, n int) {
	t.Helper()
	got := consumeAll(t, ctx, c, topic, n)
	seen := map[string]bool{}
	for _, r := range got {
		if seen[string(r.Value)] {
			t.Fatalf("record %s is in the log twice", r.Value)
		}
		seen[string(r.Value)] = true
	}
	// Nothing beyond what was produced: the end offsets add up.
	end := 0
	offs, err := listEnds(ctx, c.client(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		end += int(o)
	}
	if end != n || len(seen) != n {
		t.Fatalf("log holds %d records (%d distinct), produced %d", end, len(seen), n)
	}
}

// listEnds returns the log end offset of each partition of topic.
func listEnds(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, ends.Error()
}
