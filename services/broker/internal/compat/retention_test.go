package compat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

func strp(s string) *string { return &s }

// listOffset asks for the earliest (-2) or latest (-1) offset.
func listOffset(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, ts int64) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	return p.Offset
}

// fetchAt sends one Fetch at offset and returns the partition's error.
func fetchAt(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, offset int64) error {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

// produceBatches writes n records one batch each (synchronously), with
// timestamp ts (zero: now).
func produceBatches(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, n int, ts time.Time) {
	t.Helper()
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 200))), Timestamp: ts}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func segmentFiles(t *testing.T, dir, topic string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, topic+"-0", "*.log"))
	return m
}

// TestRetentionBySize: retention.bytes deletes whole old segments; a
// consumer positioned at a deleted offset gets OFFSET_OUT_OF_RANGE and
// resets by its own policy.
func TestRetentionBySize(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{"log.retention.check.interval.ms=200"}})
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("retain-size")
	c.createTopic(t, ctx, topic, 1, map[string]*string{"segment.bytes": strp("2048"), "retention.bytes": strp("4096")})
	cl := c.client(t, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceBatches(t, ctx, cl, topic, 60, time.Time{})
	var start int64
	defer func() {
		if t.Failed() {
			t.Log(c.broker.Log())
		}
	}()
	waitFor(t, 10*time.Second, "size-based deletion", func() bool {
		start = listOffset(t, ctx, cl, topic, -2)
		return start > 0
	})
	end := listOffset(t, ctx, cl, topic, -1)
	if end != 60 {
		t.Fatalf("log end offset %d, want 60", end)
	}
	segs := segmentFiles(t, c.broker.Dir, topic)
	if len(segs) == 0 || len(segs) > 4 {
		t.Fatalf("%d segment files remain: %v", len(segs), segs)
	}
	// Whole segments: the new log start is a segment's base offset.
	base := filepath.Base(segs[0])
	if want := fmt.Sprintf("%020d.log", start); base != want {
		t.Fatalf("first segment %s, log start offset %d", base, start)
	}
	if err := fetchAt(t, ctx, cl, topic, 0); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch at a deleted offset: %v, want OFFSET_OUT_OF_RANGE", err)
	}
	// A consumer positioned at the deleted offset 0 resets to the earliest
	// offset and reads on from the log start.
	cons := c.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := cons.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) == 0 || recs[0].Offset < start {
		t.Fatalf("after the reset the consumer read from %v, log start is %d", recs, start)
	}
}

// TestRetentionByTime: segments whose newest record is older than
// retention.ms go, the active segment stays.
func TestRetentionByTime(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{"log.retention.check.interval.ms=200"}})
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("retain-time")
	c.createTopic(t, ctx, topic, 1, map[string]*string{"segment.bytes": strp("2048"), "retention.ms": strp("3600000")})
	cl := c.client(t, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceBatches(t, ctx, cl, topic, 30, time.Now().Add(-2*time.Hour)) // expired on arrival
	produceBatches(t, ctx, cl, topic, 5, time.Time{})                   // fresh
	var start int64
	waitFor(t, 10*time.Second, "time-based deletion", func() bool {
		start = listOffset(t, ctx, cl, topic, -2)
		return start >= 20
	})
	if start > 30 {
		t.Fatalf("log start offset %d: fresh records were deleted", start)
	}
	// The log's end stays, and the fresh records are readable.
	if end := listOffset(t, ctx, cl, topic, -1); end != 35 {
		t.Fatalf("log end offset %d, want 35", end)
	}
	if _, err := os.Stat(filepath.Join(c.broker.Dir, topic+"-0", "leader-epoch-checkpoint")); err != nil {
		t.Fatalf("leader-epoch-checkpoint: %v", err)
	}
}

// TestDeleteRecords moves the log start offset with DeleteRecords.
func TestDeleteRecords(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{})
	ctx := brokertest.Context(t, time.Minute)
	topic := uniqueTopic("delete-records")
	c.createTopic(t, ctx, topic, 1, map[string]*string{"segment.bytes": strp("2048")})
	cl := c.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceBatches(t, ctx, cl, topic, 30, time.Time{})
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Offset = 17
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.LowWatermark != 17 {
		t.Fatalf("DeleteRecords: error %d, low watermark %d; want 0, 17", p.ErrorCode, p.LowWatermark)
	}
	if got := listOffset(t, ctx, cl, topic, -2); got != 17 {
		t.Fatalf("earliest offset %d after DeleteRecords(17)", got)
	}
	if err := fetchAt(t, ctx, cl, topic, 16); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch below the new log start: %v", err)
	}
	rp.Offset = 31 // beyond the high watermark
	req.Topics[0].Partitions[0] = rp
	resp, err = req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("DeleteRecords past the high watermark: error %d", code)
	}
}
