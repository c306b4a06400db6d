package replica

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

// kvBatch is BuildBatch of key=value pairs ("k=" for a tombstone),
// compressed with codec when it is not 0.
func kvBatch(t *testing.T, ts int64, codec int, kvs ...string) []byte {
	t.Helper()
	var recs []KeyValue
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		r := KeyValue{Key: []byte(k), Value: []byte(v)}
		if v == "" {
			r.Value = nil
		}
		recs = append(recs, r)
	}
	b := BuildBatch(ts, recs)
	if codec == 0 {
		return b
	}
	z, err := compress(codec, b[storage.BatchHeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	out := append(b[:storage.BatchHeaderSize:storage.BatchHeaderSize], z...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-storage.BatchLogOverhead))
	binary.BigEndian.PutUint16(out[21:], uint16(codec))
	if err := storage.UpdateCRC(out); err != nil {
		t.Fatal(err)
	}
	return out
}

type kept struct {
	offset int64
	key    string
	value  *string
}

// contents reads the partition's records from the start.
func contents(t *testing.T, p *Partition) []kept {
	t.Helper()
	var out []kept
	for off := p.LogStartOffset(); off < p.HighWatermark(); {
		r, err := p.Read(context.Background(), off, 1<<20, ToHighWatermark)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Batches) == 0 {
			break
		}
		it := storage.Batches(r.Batches, true)
		for it.Next() {
			err := EachRecord(it.Batch(), func(rec Record) error {
				if rec.Offset < off {
					return nil
				}
				k := kept{offset: rec.Offset, key: string(rec.Key)}
				if rec.Value != nil {
					v := string(rec.Value)
					k.value = &v
				}
				out = append(out, k)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		off = r.NextOffset
	}
	return out
}

func appendKV(t *testing.T, f *fixture, p *Partition, b []byte) int64 {
	t.Helper()
	info, err := ValidateProduce(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Append(context.Background(), b, info, -1, f.now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return res.BaseOffset
}

func render(ks []kept) string {
	s := ""
	for _, k := range ks {
		v := "<tombstone>"
		if k.value != nil {
			v = *k.value
		}
		s += fmt.Sprintf("%d:%s=%s ", k.offset, k.key, v)
	}
	return s
}

func TestCleanerKeepsTheLatestValueAtItsOffset(t *testing.T) {
	for _, backend := range []string{"file", "memory"} {
		t.Run(backend, func(t *testing.T) {
			f, p := newFixture(t, backend, map[string]string{"cleanup.policy": "compact", "segment.bytes": "400",
				"min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "60000"})
			f.now = time.Now()
			ts := f.now.UnixMilli()
			appendKV(t, f, p, kvBatch(t, ts, 0, "a=1", "b=1", "c=1"))        // 0-2
			appendKV(t, f, p, kvBatch(t, ts, 1, "a=2", "d=1", "b=2", "a=3")) // 3-6, gzip
			appendKV(t, f, p, kvBatch(t, ts, 0, "c=2"))                      // 7
			appendKV(t, f, p, kvBatch(t, ts, 4, "b=", "e=1"))                // 8-9, zstd; b deleted
			appendKV(t, f, p, kvBatch(t, ts, 3, "d=2", "f=1"))               // 10-11, lz4
			appendKV(t, f, p, kvBatch(t, ts, 2, "e=2", "a=4"))               // 12-13, snappy
			if err := p.Log().Roll(context.Background()); err != nil {
				t.Fatal(err)
			}
			appendKV(t, f, p, kvBatch(t, ts, 0, "a=5")) // 14, in the active segment: not cleaned
			before := len(p.Log().Segments())
			stats := f.m.CleanLogs(context.Background())
			if len(stats) != 1 || stats[0].CleanedTo != 14 || stats[0].BytesAfter >= stats[0].BytesBefore {
				t.Fatalf("stats %+v", stats)
			}
			got := render(contents(t, p))
			want := "7:c=2 8:b=<tombstone> 10:d=2 11:f=1 12:e=2 13:a=4 14:a=5 "
			if got != want {
				t.Fatalf("after cleaning:\n got %s\nwant %s", got, want)
			}
			if n := len(p.Log().Segments()); n != before {
				t.Fatalf("%d segments, had %d: compaction keeps segments", n, before)
			}
			// Nothing new: nothing to clean.
			if stats := f.m.CleanLogs(context.Background()); len(stats) != 0 {
				t.Fatalf("cleaned again without new records: %+v", stats)
			}
			// The checkpoint remembers how far the log is clean.
			if backend == "file" {
				data, err := os.ReadFile(filepath.Join(f.dir, CleanerCheckpointFile))
				if err != nil || string(data) != "0\n1\nt 0 14\n" {
					t.Fatalf("checkpoint %q %v", data, err)
				}
			}
			// Later, past delete.retention.ms, another cleaning drops the
			// tombstone (its segment was cleaned already).
			appendKV(t, f, p, kvBatch(t, ts, 0, "g=1"))
			if err := p.Log().Roll(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.now = f.now.Add(2 * time.Minute)
			f.m.CleanLogs(context.Background())
			got = render(contents(t, p))
			want = "7:c=2 10:d=2 11:f=1 12:e=2 14:a=5 15:g=1 "
			if got != want {
				t.Fatalf("after the second cleaning:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestCleanerWaitsForDirtRatioAndLag(t *testing.T) {
	f, p := newFixture(t, "memory", map[string]string{"cleanup.policy": "compact,delete", "segment.bytes": "200",
		"min.cleanable.dirty.ratio": "0.9", "min.compaction.lag.ms": "60000"})
	f.now = time.Now()
	for i := 0; i < 6; i++ {
		appendKV(t, f, p, kvBatch(t, f.now.UnixMilli(), 0, fmt.Sprintf("k=%d", i)))
	}
	if err := p.Log().Roll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if stats := f.m.CleanLogs(context.Background()); len(stats) != 0 {
		t.Fatalf("cleaned records younger than min.compaction.lag.ms: %+v", stats)
	}
	f.now = f.now.Add(time.Minute)
	if stats := f.m.CleanLogs(context.Background()); len(stats) != 1 {
		t.Fatalf("did not clean once the lag passed: %+v", stats)
	}
	if got := render(contents(t, p)); got != "5:k=5 " {
		t.Fatalf("after cleaning: %s", got)
	}
	// Now the log is clean; one more dirty record is below the 0.9 ratio.
	appendKV(t, f, p, kvBatch(t, f.now.UnixMilli(), 0, "k=6"))
	p.Log().Roll(context.Background())
	f.now = f.now.Add(time.Minute)
	if stats := f.m.CleanLogs(context.Background()); len(stats) != 0 {
		t.Fatalf("cleaned below min.cleanable.dirty.ratio: %+v", stats)
	}
}

func TestFilterBatchKeepsCodecOffsetsAndTimestamps(t *testing.T) {
	for codec := 0; codec <= 4; codec++ {
		b := kvBatch(t, 1000, codec, "a=1", "b=1", "c=1", "d=1")
		storage.SetBaseOffset(b, 100)
		out, err := filterBatch(b, func(r Record) bool { return r.Key[0] == 'b' || r.Key[0] == 'd' })
		if err != nil {
			t.Fatal(err)
		}
		h, err := storage.CheckBatch(out)
		if err != nil || h.BaseOffset != 100 || h.LastOffset() != 103 || h.RecordCount != 2 || h.Compression() != codec || h.Size() != int64(len(out)) {
			t.Fatalf("codec %d: %+v %v", codec, h, err)
		}
		var keys []string
		EachRecord(out, func(r Record) error { keys = append(keys, fmt.Sprintf("%d%s", r.Offset, r.Key)); return nil })
		if fmt.Sprint(keys) != "[101b 103d]" {
			t.Fatalf("codec %d: kept %v", codec, keys)
		}
		if all, _ := filterBatch(b, func(Record) bool { return true }); &all[0] != &b[0] {
			t.Fatalf("codec %d: a batch keeping everything was rewritten", codec)
		}
		if none, _ := filterBatch(b, func(Record) bool { return false }); none != nil {
			t.Fatalf("codec %d: a batch keeping nothing was kept", codec)
		}
	}
}
