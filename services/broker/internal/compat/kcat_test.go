package compat

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestKcat drives librdkafka through kcat, as the seed deck's walkthrough
// does: keyed produce from stdin, consume to the end, metadata listing.
func TestKcat(t *testing.T) {
	kcat := brokertest.Kcat(t)
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{"num.partitions=3"}})
	ctx := brokertest.Context(t, time.Minute)
	topic := uniqueTopic("kcat")
	const partitions, n = 3, 200
	var in bytes.Buffer
	var want []record
	for i := 0; i < n; i++ {
		key, val := fmt.Sprintf("user-%d", i%17), fmt.Sprintf("event %d", i)
		fmt.Fprintf(&in, "%s:%s\n", key, val)
		want = append(want, record{key: key, value: val, partition: partitionFor([]byte(key), partitions)})
	}
	// librdkafka's default partitioner is consistent_random (crc32); the
	// Java client's murmur2 is murmur2_random.
	prod := exec.CommandContext(ctx, kcat, "-b", c.broker.Addr, "-P", "-t", topic, "-K:", "-X", "partitioner=murmur2_random")
	prod.Stdin = &in
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s\nbroker log:\n%s", err, out, c.broker.Log())
	}
	cons := exec.CommandContext(ctx, kcat, "-b", c.broker.Addr, "-C", "-t", topic, "-e", "-q", "-f", "%p|%o|%k|%s\n")
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != n {
		t.Fatalf("kcat read %d records, want %d:\n%s", len(lines), n, out)
	}
	byPart := map[string][]string{}
	for _, l := range lines {
		f := strings.SplitN(l, "|", 4)
		byPart[f[0]] = append(byPart[f[0]], f[1]+"|"+f[2]+"|"+f[3])
	}
	idx := map[int32]int{}
	for _, w := range want {
		p := fmt.Sprint(w.partition)
		i := idx[w.partition]
		if i >= len(byPart[p]) {
			t.Fatalf("partition %s has %d records; key %s should be there", p, len(byPart[p]), w.key)
		}
		if got, exp := byPart[p][i], fmt.Sprintf("%d|%s|%s", i, w.key, w.value); got != exp {
			t.Fatalf("partition %s record %d: %q, want %q", p, i, got, exp)
		}
		idx[w.partition]++
	}
	meta, err := exec.CommandContext(ctx, kcat, "-b", c.broker.Addr, "-L", "-t", topic).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, meta)
	}
	for _, s := range []string{"1 brokers:", "broker 1 at " + c.broker.Addr + " (controller)", fmt.Sprintf("topic \"%s\" with 3 partitions:", topic),
		"partition 0, leader 1, replicas: 1, isrs: 1"} {
		if !strings.Contains(string(meta), s) {
			t.Errorf("kcat -L output lacks %q:\n%s", s, meta)
		}
	}
}
