package conformance

import (
	"math"
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
)

// benchBatch is a 16 KiB batch of 100-byte records, the shape of a busy
// producer's batch (franz-go's default batch size is 1 MiB, librdkafka's
// batch.size 1 MB; 16 KiB is the Java client's batch.size default).
func benchBatch() []byte {
	const target = 16 << 10
	var vals [][]byte
	for size := storage.BatchHeaderSize; ; {
		rec := 100 + 8 // value plus the record's varint framing, roughly
		if size+rec > target {
			break
		}
		vals = append(vals, Value(int64(len(vals)), 100))
		size += rec
	}
	return Batch(0, baseTs, vals...)
}

// BenchmarkAppend measures appending 16 KiB batches of 100-byte records.
// Old segments are deleted as it goes (as retention would), so the
// benchmark's footprint stays bounded whatever b.N is.
func BenchmarkAppend(b *testing.B, newBackend func(b *testing.B) storage.Backend) {
	be := newBackend(b)
	defer func() { _ = be.Close() }()
	cfg := storage.Config{Dir: b.TempDir(), SegmentBytes: 64 << 20, FileDeleteDelayMs: -1}
	l, err := be.Open(ctx, tp, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	batch := benchBatch()
	h, _ := storage.ParseBatchHeader(batch)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = storage.SetBaseOffset(batch, l.EndOffset())
		if _, err := l.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if i%8192 == 8191 {
			if err := l.DeleteBefore(ctx, l.EndOffset()-int64(h.RecordCount)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*float64(h.RecordCount)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRead measures reading 1 MiB at a time from a 64 MiB log of 16 KiB
// batches, cycling through it: the consumer path without sendfile.
func BenchmarkRead(b *testing.B, newBackend func(b *testing.B) storage.Backend) {
	be := newBackend(b)
	defer func() { _ = be.Close() }()
	cfg := storage.Config{Dir: b.TempDir(), SegmentBytes: 16 << 20, FileDeleteDelayMs: -1}
	l, err := be.Open(ctx, tp, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	batch := benchBatch()
	for written := 0; written < 64<<20; written += len(batch) {
		_ = storage.SetBaseOffset(batch, l.EndOffset())
		if _, err := l.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	const maxBytes = 1 << 20
	first, err := l.Read(ctx, 0, maxBytes, math.MaxInt64)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(first.Batches)))
	b.ReportAllocs()
	b.ResetTimer()
	off := int64(0)
	for i := 0; i < b.N; i++ {
		r, err := l.Read(ctx, off, maxBytes, math.MaxInt64)
		if err != nil {
			b.Fatal(err)
		}
		off = r.NextOffset
		if off >= l.EndOffset() {
			off = 0
		}
	}
}
