package compat

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// kafkaPythonScript exercises kafka-python 2.0: admin create, a producer
// with keys, a consumer from the earliest offset, admin delete. It pipelines
// ApiVersions v0 and Metadata v0 on its first connection, then uses
// Metadata v1 and Fetch v4.
const kafkaPythonScript = `
import json, sys
from kafka import KafkaAdminClient, KafkaProducer, KafkaConsumer
from kafka.admin import NewTopic
bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-admin")
admin.create_topics([NewTopic(name=topic, num_partitions=2, replication_factor=1)])
prod = KafkaProducer(bootstrap_servers=bootstrap, acks=1)
futs = [prod.send(topic, key=("k%d" % (i % 7)).encode(), value=("v%d" % i).encode()) for i in range(n)]
prod.flush()
for f in futs:
    f.get(timeout=10)
prod.close()
cons = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                     enable_auto_commit=False, group_id=None, consumer_timeout_ms=5000)
for m in cons:
    print(json.dumps({"p": m.partition, "o": m.offset, "k": m.key.decode(), "v": m.value.decode()}))
cons.close()
admin.delete_topics([topic])
print(json.dumps({"deleted": topic in admin.list_topics()}))
admin.close()
`

// confluentScript exercises confluent-kafka (librdkafka): admin create, a
// producer with delivery reports, a consumer without a group (assign),
// admin delete.
const confluentScript = `
import json, sys
from confluent_kafka import Producer, Consumer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
    f.result(10)
reports = []
def report(err, msg):
    reports.append({"err": str(err) if err else None, "p": msg.partition(), "o": msg.offset()})
p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "acks": "all"})
for i in range(n):
    p.produce(topic, key=("k%d" % (i % 7)).encode(), value=("v%d" % i).encode(), on_delivery=report)
    p.poll(0)
p.flush(10)
print(json.dumps({"reports": reports}))
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING), TopicPartition(topic, 1, OFFSET_BEGINNING)])
got = 0
while got < n:
    m = c.poll(10)
    if m is None:
        break
    if m.error():
        print(json.dumps({"error": str(m.error())}))
        break
    got += 1
    print(json.dumps({"p": m.partition(), "o": m.offset(), "k": m.key().decode(), "v": m.value().decode()}))
c.close()
md = admin.list_topics(timeout=10)
print(json.dumps({"listed": topic in md.topics}))
for f in admin.delete_topics([topic]).values():
    f.result(10)
print(json.dumps({"deleted": topic in admin.list_topics(timeout=10).topics}))
`

type pyLine struct {
	P       *int32           `json:"p"`
	O       int64            `json:"o"`
	K       string           `json:"k"`
	V       string           `json:"v"`
	Deleted *bool            `json:"deleted"`
	Listed  *bool            `json:"listed"`
	Error   string           `json:"error"`
	Reports []map[string]any `json:"reports"`
}

func runPython(t *testing.T, py, script string, args ...string) []pyLine {
	t.Helper()
	ctx := brokertest.Context(t, 90*time.Second)
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", script}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	var lines []pyLine
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var pl pyLine
		if err := json.Unmarshal([]byte(l), &pl); err != nil {
			t.Fatalf("python printed %q: %v", l, err)
		}
		if pl.Error != "" {
			t.Fatalf("python client error: %s", pl.Error)
		}
		lines = append(lines, pl)
	}
	return lines
}

// checkPyRecords checks the consumed records: all n, in produce order per
// partition, keys in their murmur2 partition when murmur is set.
func checkPyRecords(t *testing.T, lines []pyLine, n int, murmur bool) {
	t.Helper()
	next := map[int32]int64{}
	lastV := map[int32]int{}
	count := 0
	for _, l := range lines {
		if l.P == nil || l.K == "" {
			continue
		}
		count++
		if l.O != next[*l.P] {
			t.Fatalf("partition %d: offset %d, want %d", *l.P, l.O, next[*l.P])
		}
		next[*l.P]++
		var v int
		fmt.Sscanf(l.V, "v%d", &v)
		if prev, ok := lastV[*l.P]; ok && v <= prev {
			t.Fatalf("partition %d: v%d after v%d", *l.P, v, prev)
		}
		lastV[*l.P] = v
		if l.K != fmt.Sprintf("k%d", v%7) {
			t.Fatalf("record v%d has key %s", v, l.K)
		}
		if murmur && *l.P != partitionFor([]byte(l.K), 2) {
			t.Fatalf("key %s in partition %d, murmur2 says %d", l.K, *l.P, partitionFor([]byte(l.K), 2))
		}
	}
	if count != n {
		t.Fatalf("consumed %d records, produced %d", count, n)
	}
}

func TestKafkaPython(t *testing.T) {
	py := brokertest.Python(t, "kafka", "python3-kafka")
	c := startCluster(t, brokertest.BrokerOptions{})
	const n = 150
	lines := runPython(t, py, kafkaPythonScript, c.broker.Addr, uniqueTopic("kafka-python"), fmt.Sprint(n))
	// kafka-python's default partitioner is murmur2, like the Java client.
	checkPyRecords(t, lines, n, true)
	last := lines[len(lines)-1]
	if last.Deleted == nil || *last.Deleted {
		t.Fatalf("topic still listed after delete_topics: %+v", last)
	}
}

func TestConfluentKafka(t *testing.T) {
	py := brokertest.Python(t, "confluent_kafka", "python3-confluent-kafka")
	c := startCluster(t, brokertest.BrokerOptions{})
	const n = 150
	lines := runPython(t, py, confluentScript, c.broker.Addr, uniqueTopic("confluent"), fmt.Sprint(n))
	if len(lines[0].Reports) != n {
		t.Fatalf("%d delivery reports, want %d", len(lines[0].Reports), n)
	}
	for _, r := range lines[0].Reports {
		if r["err"] != nil {
			t.Fatalf("delivery report error: %v", r)
		}
	}
	checkPyRecords(t, lines[1:], n, true)
	var listed, deleted *bool
	for _, l := range lines {
		if l.Listed != nil {
			listed = l.Listed
		}
		if l.Deleted != nil {
			deleted = l.Deleted
		}
	}
	if listed == nil || !*listed || deleted == nil || *deleted {
		t.Fatalf("listed=%v deleted=%v", listed, deleted)
	}
}
