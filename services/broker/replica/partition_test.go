package replica

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/plugins/storage/memory"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/config"
	"github.com/runnel-io/runnel/services/broker/metadata"
)

type fixture struct {
	m   *Manager
	dir string
	now time.Time
}

// newFixture hosts one partition "t-0", led by broker 1 at leader epoch
// 3, with the given topic settings.
func newFixture(t *testing.T, backend string, settings map[string]string) (*fixture, *Partition) {
	t.Helper()
	dir := t.TempDir()
	var b storage.Backend = memory.New()
	if backend == "file" {
		b = file.New(dir)
	}
	bc, err := config.NewBroker(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, now: time.UnixMilli(1_700_000_000_000)}
	f.m = NewManager(Params{BrokerID: 1, DataDir: dir, Backend: b, Broker: bc, Now: func() time.Time { return f.now }})
	t.Cleanup(func() { f.m.Close(); b.Close() })
	f.sync(t, settings, 3)
	p := f.m.Partition("t", 0)
	if p == nil {
		t.Fatal("partition not hosted after Sync")
	}
	return f, p
}

func (f *fixture) sync(t *testing.T, settings map[string]string, epoch int32) {
	t.Helper()
	topics := []*metadata.Topic{{Name: "t", Config: settings, Partitions: []metadata.Partition{
		{Topic: "t", ID: 0, Replicas: []int32{1}, Leader: 1, LeaderEpoch: epoch, ISR: []int32{1}},
	}}}
	if err := f.m.Sync(context.Background(), topics); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAssignsOffsetsAndEpoch(t *testing.T) {
	for _, backend := range []string{"memory", "file"} {
		t.Run(backend, func(t *testing.T) {
			f, p := newFixture(t, backend, nil)
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				b := testBatch(4, 1000, []byte("v"))
				info, err := ValidateProduce(b, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				res, err := p.Append(ctx, b, info, 1, f.now.UnixMilli())
				if err != nil {
					t.Fatal(err)
				}
				if res.BaseOffset != int64(i*4) || res.LogAppendTime != -1 {
					t.Fatalf("append %d: %+v", i, res)
				}
			}
			if p.HighWatermark() != 12 || p.LogEndOffset() != 12 {
				t.Fatalf("HW %d LEO %d, want 12", p.HighWatermark(), p.LogEndOffset())
			}
			r, err := p.Read(ctx, 5, 1<<20, ToHighWatermark)
			if err != nil {
				t.Fatal(err)
			}
			h, err := storage.CheckBatch(r.Batches)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset != 4 || h.PartitionLeaderEpoch != 3 {
				t.Fatalf("stored batch: base %d epoch %d", h.BaseOffset, h.PartitionLeaderEpoch)
			}
			if _, err := p.Read(ctx, 13, 100, ToHighWatermark); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read past the end: %v", err)
			}
			if r, err := p.Read(ctx, 12, 100, ToHighWatermark); err != nil || len(r.Batches) != 0 {
				t.Fatalf("read at the end: %v, %d bytes", err, len(r.Batches))
			}
			if e := p.EpochForOffset(7); e != 3 {
				t.Fatalf("epoch of offset 7: %d", e)
			}
			// A new leader epoch starts at the log end offset.
			f.sync(t, nil, 5)
			if e, end := p.EndOffsetForEpoch(4); e != 3 || end != 12 {
				t.Fatalf("end offset for epoch 4: epoch %d offset %d, want 3, 12", e, end)
			}
			data, err := os.ReadFile(filepath.Join(f.dir, "t-0", LeaderEpochFile))
			if err != nil {
				t.Fatal(err)
			}
			if want := "0\n2\n3 0\n5 12\n"; string(data) != want {
				t.Fatalf("leader-epoch-checkpoint %q, want %q", data, want)
			}
			if err := f.m.CheckpointHighWatermarks(); err != nil {
				t.Fatal(err)
			}
			hw, _ := os.ReadFile(filepath.Join(f.dir, HighWatermarkFile))
			if want := "0\n1\nt 0 12\n"; string(hw) != want {
				t.Fatalf("replication-offset-checkpoint %q, want %q", hw, want)
			}
		})
	}
}

func TestLogAppendTime(t *testing.T) {
	f, p := newFixture(t, "memory", map[string]string{"message.timestamp.type": "LogAppendTime"})
	b := testBatch(2, 5, []byte("x"))
	info, _ := ValidateProduce(b, 1<<20)
	res, err := p.Append(context.Background(), b, info, -1, f.now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if res.LogAppendTime != f.now.UnixMilli() {
		t.Fatalf("log append time %d", res.LogAppendTime)
	}
	r, _ := p.Read(context.Background(), 0, 1<<20, ToHighWatermark)
	h, err := storage.CheckBatch(r.Batches) // the CRC was recomputed
	if err != nil {
		t.Fatal(err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != f.now.UnixMilli() {
		t.Fatalf("stored header %+v", h)
	}
}

func TestAcksAllNeedsMinISR(t *testing.T) {
	f, p := newFixture(t, "memory", map[string]string{"min.insync.replicas": "2"})
	b := testBatch(1, 5, []byte("x"))
	info, _ := ValidateProduce(b, 1<<20)
	if _, err := p.Append(context.Background(), b, info, -1, f.now.UnixMilli()); !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with ISR 1 < min.insync.replicas 2: %v", err)
	}
	if _, err := p.Append(context.Background(), b, info, 1, f.now.UnixMilli()); err != nil {
		t.Fatalf("acks=1 ignores min.insync.replicas: %v", err)
	}
}

func TestIdempotentRetryIsNotWrittenTwice(t *testing.T) {
	f, p := newFixture(t, "memory", nil)
	info := BatchInfo{Records: 2, ProducerID: 7, ProducerEpoch: 0, BaseSequence: 0, LastDelta: 1}
	for i := 0; i < 2; i++ {
		res, err := p.Append(context.Background(), testBatch(2, 5, []byte("x")), info, -1, f.now.UnixMilli())
		if err != nil || res.BaseOffset != 0 {
			t.Fatalf("attempt %d: %+v %v", i, res, err)
		}
	}
	if p.LogEndOffset() != 2 {
		t.Fatalf("log end offset %d after a retried batch", p.LogEndOffset())
	}
}

// fill appends n single-record batches of about 250 bytes.
func fill(t *testing.T, f *fixture, p *Partition, n int, ts int64) {
	t.Helper()
	for i := 0; i < n; i++ {
		b := testBatch(1, ts, bytes.Repeat([]byte("r"), 180))
		info, _ := ValidateProduce(b, 1<<20)
		if _, err := p.Append(context.Background(), b, info, 1, f.now.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetentionBySize(t *testing.T) {
	for _, backend := range []string{"memory", "file"} {
		t.Run(backend, func(t *testing.T) {
			f, p := newFixture(t, backend, map[string]string{"segment.bytes": "1000", "retention.bytes": "1500"})
			fill(t, f, p, 20, f.now.UnixMilli())
			before := p.Log().Segments()
			if len(before) < 4 {
				t.Fatalf("%d segments; segment.bytes should have rolled more", len(before))
			}
			f.m.EnforceRetention(context.Background())
			after := p.Log().Segments()
			var total int64
			for _, s := range after {
				total += s.SizeBytes
			}
			if total-after[0].SizeBytes >= 1500 {
				t.Fatalf("%d bytes in %d segments remain; retention.bytes is 1500", total, len(after))
			}
			if p.LogStartOffset() != after[0].BaseOffset || p.LogStartOffset() == 0 {
				t.Fatalf("log start %d, first segment %d", p.LogStartOffset(), after[0].BaseOffset)
			}
			if p.LogEndOffset() != 20 || !after[len(after)-1].Active {
				t.Fatal("the active segment must stay")
			}
		})
	}
}

func TestRetentionByTime(t *testing.T) {
	f, p := newFixture(t, "memory", map[string]string{"segment.bytes": "1000", "retention.ms": "60000"})
	old := f.now.Add(-2 * time.Minute).UnixMilli()
	fill(t, f, p, 8, old)
	fill(t, f, p, 8, f.now.UnixMilli())
	f.m.EnforceRetention(context.Background())
	start := p.LogStartOffset()
	if start == 0 || start > 8 {
		t.Fatalf("log start %d: want the old segments gone, the new ones kept", start)
	}
	// Even expired, the active segment stays.
	f.now = f.now.Add(time.Hour)
	f.m.EnforceRetention(context.Background())
	segs := p.Log().Segments()
	if len(segs) == 0 || !segs[len(segs)-1].Active {
		t.Fatalf("segments after expiry: %+v", segs)
	}
}

func TestDeleteRecordsPartition(t *testing.T) {
	f, p := newFixture(t, "memory", nil)
	fill(t, f, p, 10, f.now.UnixMilli())
	if _, err := p.DeleteRecords(context.Background(), 11); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the high watermark: %v", err)
	}
	low, err := p.DeleteRecords(context.Background(), 4)
	if err != nil || low != 4 {
		t.Fatalf("DeleteRecords(4) = %d, %v", low, err)
	}
	if _, err := p.Read(context.Background(), 3, 100, ToHighWatermark); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v", err)
	}
	if low, err = p.DeleteRecords(context.Background(), -1); err != nil || low != 10 {
		t.Fatalf("DeleteRecords(-1) = %d, %v", low, err)
	}
}

func TestSyncRemovesDeletedTopic(t *testing.T) {
	f, p := newFixture(t, "file", nil)
	fill(t, f, p, 3, f.now.UnixMilli())
	if err := f.m.Sync(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if f.m.Partition("t", 0) != nil {
		t.Fatal("partition still hosted after its topic left the metadata")
	}
	if _, err := p.Append(context.Background(), testBatch(1, 1, nil), BatchInfo{ProducerID: -1}, 1, 0); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append to a deleted partition: %v", err)
	}
}

func TestStorageSettingsChangeReopensTheLog(t *testing.T) {
	for _, backend := range []string{"memory", "file"} {
		t.Run(backend, func(t *testing.T) {
			f, p := newFixture(t, backend, nil)
			fill(t, f, p, 5, f.now.UnixMilli())
			if n := len(p.Log().Segments()); n != 1 {
				t.Fatalf("%d segments with the default segment.bytes", n)
			}
			f.sync(t, map[string]string{"segment.bytes": "600"}, 3)
			fill(t, f, p, 10, f.now.UnixMilli())
			if n := len(p.Log().Segments()); n < 3 {
				t.Fatalf("%d segments after segment.bytes=600", n)
			}
			if p.LogEndOffset() != 15 || p.HighWatermark() != 15 {
				t.Fatalf("LEO %d HW %d after the reopen", p.LogEndOffset(), p.HighWatermark())
			}
			r, err := p.Read(context.Background(), 0, 1<<20, ToHighWatermark)
			if err != nil || len(r.Batches) == 0 {
				t.Fatalf("reading the records written before the reopen: %v", err)
			}
		})
	}
}
