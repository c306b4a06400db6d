package compat

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// readTopic reads a one-partition topic from its start to its end and
// returns offset -> record.
func readTopic(t *testing.T, ctx context.Context, c *cluster, topic string) map[int64]*kgo.Record {
	t.Helper()
	ends, err := listEnds(ctx, c.client(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]*kgo.Record{}
	cl := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	for {
		var last int64 = -1
		for off := range out {
			last = max(last, off)
		}
		if last+1 >= ends[0] {
			return out
		}
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out[r.Offset] = r })
	}
}

// TestCompaction writes updates and a tombstone to a compacted topic:
// once the cleaner ran, each key's latest value is all that remains, at
// the offset it was written at, and the tombstone goes after
// delete.retention.ms. kcat (librdkafka) reads the compacted log too.
func TestCompaction(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{"log.cleaner.backoff.ms=200"}})
	ctx := brokertest.Context(t, 3*time.Minute)
	topic := uniqueTopic("compacted")
	str := func(s string) *string { return &s }
	// A backend linked into the broker, even when the suite runs the
	// default storage as a plugin process (which cannot compact): a plugin
	// takes its backend's name, so then the other built-in.
	backend := "file"
	if os.Getenv(brokertest.StoragePluginEnv) == "file" {
		backend = "memory"
	}
	c.createTopic(t, ctx, topic, 1, map[string]*string{
		"cleanup.policy": str("compact"), "segment.bytes": str("1024"), "min.cleanable.dirty.ratio": str("0.01"),
		"delete.retention.ms": str("0"), "runnel.storage.backend": str(backend),
	})
	cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	latest := map[string]int64{}
	values := map[string]string{}
	put := func(key string, value []byte) {
		r := &kgo.Record{Key: []byte(key), Value: value}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", key, err)
		}
		latest[key], values[key] = r.Offset, string(value)
	}
	for round := 0; round < 20; round++ {
		for k := 0; k < 8; k++ {
			put(fmt.Sprintf("k%d", k), []byte(fmt.Sprintf("k%d-round%02d-%s", k, round, strings.Repeat("x", 40))))
		}
	}
	put("k0", nil) // delete k0
	// Filler rolls the segment holding the last updates, so that the
	// cleaner may clean all of them.
	for i := 0; i < 30; i++ {
		put(fmt.Sprintf("filler%d", i), []byte(strings.Repeat("f", 100)))
	}

	check := func(recs map[int64]*kgo.Record, wantTombstone bool) bool {
		perKey := map[string]int{}
		for _, r := range recs {
			if strings.HasPrefix(string(r.Key), "k") {
				perKey[string(r.Key)]++
			}
		}
		for k := 0; k < 8; k++ {
			key := fmt.Sprintf("k%d", k)
			want := 1
			if key == "k0" && !wantTombstone {
				want = 0
			}
			if perKey[key] != want {
				return false
			}
			if want == 0 {
				continue
			}
			r := recs[latest[key]]
			if r == nil || string(r.Key) != key {
				t.Fatalf("%s's latest record is not at offset %d", key, latest[key])
			}
			if key == "k0" {
				if r.Value != nil {
					t.Fatalf("k0's tombstone has value %q", r.Value)
				}
			} else if string(r.Value) != values[key] {
				t.Fatalf("%s at %d = %q, want %q", key, latest[key], r.Value, values[key])
			}
		}
		return true
	}
	var recs map[int64]*kgo.Record
	waitFor(t, time.Minute, "the cleaner to leave one record per key", func() bool {
		recs = readTopic(t, ctx, c, topic)
		return check(recs, true)
	})
	t.Logf("%d records left of %d written", len(recs), 20*8+31)

	// kcat sees the same: the offsets have gaps, the values are the latest.
	if kcat := brokertest.Kcat(t); kcat != "" {
		out, err := exec.CommandContext(ctx, kcat, "-b", c.broker.Addr, "-C", "-t", topic, "-e", "-q", "-f", "%o %k %S\n").Output()
		if err != nil {
			t.Fatalf("kcat: %v", err)
		}
		for _, key := range []string{"k3", "k7", "k0"} {
			size := len(values[key])
			if key == "k0" {
				size = -1
			}
			if line := fmt.Sprintf("%d %s %d\n", latest[key], key, size); !strings.Contains(string(out), line) {
				t.Fatalf("kcat output lacks %q:\n%s", line, out)
			}
		}
	}

	// The tombstone goes once its segment is clean and delete.retention.ms
	// (0 here) passed: at the next cleaning, which new records start.
	for i := 30; i < 60; i++ {
		put(fmt.Sprintf("filler%d", i), []byte(strings.Repeat("f", 100)))
	}
	waitFor(t, time.Minute, "the tombstone to go", func() bool { return check(readTopic(t, ctx, c, topic), false) })
}

// TestOffsetsTopicIsCompacted commits one group's offset many times with
// small __consumer_offsets segments: the cleaner compacts the internal
// topic too, and after a restart the group still has its latest offset.
func TestOffsetsTopicIsCompacted(t *testing.T) {
	// Under RUNNEL_TEST_STORAGE_PLUGIN the internal topic lives in a
	// plugin process, which cannot compact: then only the offsets are
	// checked.
	compacts := os.Getenv(brokertest.StoragePluginEnv) == ""
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{"log.cleaner.backoff.ms=200", "offsets.topic.segment.bytes=2048",
		"offsets.topic.num.partitions=3", "zookeeper.session.timeout.ms=4000"}})
	ctx := brokertest.Context(t, 3*time.Minute)
	topic := uniqueTopic("committed")
	c.createTopic(t, ctx, topic, 1, nil)
	adm := kadm.NewClient(c.client(t))
	for i := 1; i <= 300; i++ {
		o := kadm.Offsets{}
		o.Add(kadm.Offset{Topic: topic, Partition: 0, At: int64(i), LeaderEpoch: -1})
		if r, err := adm.CommitOffsets(ctx, "busy", o); err != nil || r.Error() != nil {
			t.Fatalf("commit %d: %v %v", i, err, r.Error())
		}
	}
	p := group.PartitionFor("busy", 3)
	count := func() int {
		cl := c.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{group.Topic: {p: kgo.NewOffset().AtStart()}}),
			kgo.FetchMaxWait(100*time.Millisecond))
		ends, err := listEnds(ctx, c.client(t), group.Topic)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			fs := cl.PollFetches(pctx)
			done := pctx.Err() != nil
			cancel()
			last := int64(-1)
			fs.EachRecord(func(r *kgo.Record) { n++; last = r.Offset })
			if done || last+1 >= ends[p] {
				return n
			}
		}
	}
	if compacts {
		waitFor(t, time.Minute, "__consumer_offsets to be compacted", func() bool { n := count(); t.Logf("%d records", n); return n < 100 })
	}
	c.broker.Stop()
	c.broker.Restart()
	waitFor(t, 30*time.Second, "the group's offset after the restart", func() bool {
		offs, err := kadm.NewClient(c.client(t)).FetchOffsets(ctx, "busy")
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(topic, 0)
		return ok && o.At == 300
	})
}
