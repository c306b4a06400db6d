package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

// countingLog is a minimal log that counts the reads reaching it. Its Read
// returns one batch at a time (the contract allows stopping early).
type countingLog struct {
	batches    [][]byte
	start, end int64
	reads      atomic.Int64
	closed     bool
}

func (l *countingLog) Append(_ context.Context, b []byte) (storage.AppendInfo, error) {
	if l.closed {
		return storage.AppendInfo{}, storage.ErrClosed
	}
	info := storage.AppendInfo{FirstOffset: -1}
	it := storage.Batches(b, true)
	next := l.end
	var got [][]byte
	for it.Next() {
		h := it.Header()
		if h.BaseOffset < next {
			return storage.AppendInfo{}, storage.ErrNotContiguous
		}
		if info.FirstOffset < 0 {
			info.FirstOffset = h.BaseOffset
		}
		info.LastOffset = h.LastOffset()
		next = h.LastOffset() + 1
		got = append(got, bytes.Clone(it.Batch()))
	}
	if it.Err() != nil || len(got) == 0 {
		return storage.AppendInfo{}, fmt.Errorf("%w: %v", storage.ErrInvalidBatch, it.Err())
	}
	l.batches = append(l.batches, got...)
	l.end = next
	return info, nil
}

func (l *countingLog) Read(_ context.Context, offset int64, _ int32, maxOffset int64) (storage.ReadResult, error) {
	l.reads.Add(1)
	res := storage.ReadResult{NextOffset: offset, StartOffset: l.start, EndOffset: l.end}
	if l.closed {
		return res, storage.ErrClosed
	}
	if offset < l.start || offset > l.end {
		return res, storage.ErrOffsetOutOfRange
	}
	for _, b := range l.batches {
		h, _ := storage.ParseBatchHeader(b)
		if h.LastOffset() >= offset {
			if h.BaseOffset >= maxOffset {
				return res, nil
			}
			res.Batches, res.NextOffset = b, h.LastOffset()+1
			return res, nil
		}
	}
	return res, nil
}

func (l *countingLog) StartOffset() int64 { return l.start }
func (l *countingLog) EndOffset() int64   { return l.end }
func (l *countingLog) OffsetForTimestamp(context.Context, int64) (int64, int64, error) {
	return -1, -1, nil
}

func (l *countingLog) Truncate(_ context.Context, offset int64) error {
	for i, b := range l.batches {
		if h, _ := storage.ParseBatchHeader(b); h.LastOffset() >= offset {
			l.batches = l.batches[:i]
			break
		}
	}
	l.end = min(l.end, offset)
	l.start = min(l.start, offset)
	return nil
}

func (l *countingLog) DeleteBefore(_ context.Context, offset int64) error {
	if offset > l.end {
		return storage.ErrOffsetOutOfRange
	}
	for len(l.batches) > 0 {
		if h, _ := storage.ParseBatchHeader(l.batches[0]); h.LastOffset() >= offset {
			break
		}
		l.batches = l.batches[1:]
	}
	l.start = max(l.start, offset)
	return nil
}

func (l *countingLog) Segments() []storage.SegmentInfo { return nil }
func (l *countingLog) Roll(context.Context) error      { return nil }
func (l *countingLog) Flush(context.Context) error     { return nil }
func (l *countingLog) Close() error                    { l.closed = true; return nil }

var bg = context.Background()

func appendN(t *testing.T, l storage.Log, n, size int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		base := l.EndOffset()
		b := conformance.Batch(base, 1_700_000_000_000+base, conformance.Value(base, size), conformance.Value(base+1, size))
		if _, err := l.Append(bg, b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestTailCacheAnswersTheTail(t *testing.T) {
	inner := &countingLog{}
	c := storage.NewTailCache(inner, 64<<10)
	bs := appendN(t, c, 100, 100) // about 23 KiB: all cached
	for i := range bs {
		r, err := c.Read(bg, int64(2*i+1), 1, math.MaxInt64)
		if err != nil || !bytes.Equal(r.Batches, bs[i]) || r.NextOffset != int64(2*i+2) || r.EndOffset != 200 {
			t.Fatalf("Read(%d): %d bytes next %d, %v", 2*i+1, len(r.Batches), r.NextOffset, err)
		}
	}
	// Several batches per read, up to maxBytes, and nothing past maxOffset.
	r, err := c.Read(bg, 10, int32(3*len(bs[0])), 14)
	if err != nil || !bytes.Equal(r.Batches, bytes.Join(bs[5:7], nil)) || r.NextOffset != 14 {
		t.Fatalf("Read(10, 3 batches, maxOffset 14): %d bytes, next %d, %v", len(r.Batches), r.NextOffset, err)
	}
	if r, err := c.Read(bg, 200, 100, math.MaxInt64); err != nil || len(r.Batches) != 0 || r.NextOffset != 200 {
		t.Fatalf("Read(end): %+v %v", r, err)
	}
	if n := inner.reads.Load(); n != 0 {
		t.Fatalf("%d reads reached the log; the tail should be answered from the cache", n)
	}
	// Out of range goes to the log, for its error.
	if _, err := c.Read(bg, 201, 100, math.MaxInt64); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("Read past the end: %v", err)
	}
}

func TestTailCacheEvictsAndKeepsReturnedBytes(t *testing.T) {
	inner := &countingLog{}
	c := storage.NewTailCache(inner, 64<<10) // 16 KiB arenas
	bs := appendN(t, c, 10, 1000)
	held, err := c.Read(bg, 0, 1, math.MaxInt64)
	if err != nil || !bytes.Equal(held.Batches, bs[0]) {
		t.Fatalf("Read(0): %v", err)
	}
	keep := bytes.Clone(held.Batches)
	bs = append(bs, appendN(t, c, 200, 1000)...) // about 400 KiB: the first arenas go
	if !bytes.Equal(held.Batches, keep) {
		t.Fatal("bytes returned by an earlier read changed")
	}
	if r, err := c.Read(bg, 0, 1, math.MaxInt64); err != nil || !bytes.Equal(r.Batches, bs[0]) || inner.reads.Load() != 1 {
		t.Fatalf("an evicted offset must be read from the log (reads %d, %v)", inner.reads.Load(), err)
	}
	last := int64(len(bs)-1) * 2
	if r, err := c.Read(bg, last, 1, math.MaxInt64); err != nil || !bytes.Equal(r.Batches, bs[len(bs)-1]) || inner.reads.Load() != 1 {
		t.Fatalf("the newest batch must be cached (reads %d, %v)", inner.reads.Load(), err)
	}
	// A read stops at an arena's end, as a backend's stops at a segment's.
	r, err := c.Read(bg, last-60, math.MaxInt32, math.MaxInt64)
	if err != nil || len(r.Batches) == 0 || len(r.Batches) > 64<<10 {
		t.Fatalf("large read: %d bytes, %v", len(r.Batches), err)
	}
}

func TestTailCacheTruncateAndDeleteBefore(t *testing.T) {
	inner := &countingLog{}
	c := storage.NewTailCache(inner, 1<<20)
	bs := appendN(t, c, 10, 10) // batch i: offsets 2i, 2i+1
	if err := c.Truncate(bg, 13); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Read(bg, 12, 1<<20, math.MaxInt64); err != nil || len(r.Batches) != 0 || r.NextOffset != 12 {
		t.Fatalf("Read(12) after Truncate(13): %d bytes, %v", len(r.Batches), err)
	}
	if _, err := c.Read(bg, 14, 1, math.MaxInt64); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("Read past the truncated end: %v", err)
	}
	more := appendN(t, c, 2, 10)
	r, err := c.Read(bg, 10, 1<<20, math.MaxInt64)
	if err != nil || !bytes.HasPrefix(r.Batches, bs[5]) || bytes.Contains(r.Batches, bs[6]) {
		t.Fatalf("Read(10) after truncate and append: %v", err)
	}
	if r, err := c.Read(bg, 13, 1<<20, math.MaxInt64); err != nil || !bytes.Equal(r.Batches, bytes.Join(more, nil)) {
		t.Fatalf("the new appends after a truncation: %d bytes, %v", len(r.Batches), err)
	}
	if err := c.DeleteBefore(bg, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(bg, 3, 1, math.MaxInt64); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("Read below the new start: %v", err)
	}
	if r, err := c.Read(bg, 5, 1, math.MaxInt64); err != nil || !bytes.Equal(r.Batches, bs[2]) || r.StartOffset != 5 {
		t.Fatalf("Read(start) must return the batch holding it: %v", err)
	}
	if n := inner.reads.Load(); n != 2 {
		t.Fatalf("%d reads reached the log, want only the two out-of-range ones", n)
	}
}

func TestTailCacheStepsAsideWhenTheLogChangesBehindIt(t *testing.T) {
	inner := &countingLog{}
	c := storage.NewTailCache(inner, 1<<20)
	appendN(t, c, 5, 10)
	// An append that did not go through the cache.
	b := conformance.Batch(10, 1, []byte("behind"))
	if _, err := inner.Append(bg, b); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Read(bg, 2, 1, math.MaxInt64); err != nil || len(r.Batches) == 0 || inner.reads.Load() != 1 {
		t.Fatalf("a cache that missed an append must not answer (reads %d, %v)", inner.reads.Load(), err)
	}
	// The next append through it starts it afresh.
	appendN(t, c, 1, 10)
	if r, err := c.Read(bg, 11, 1, math.MaxInt64); err != nil || len(r.Batches) == 0 || inner.reads.Load() != 1 {
		t.Fatalf("the fresh cache must answer (reads %d, %v)", inner.reads.Load(), err)
	}
	if _, err := c.Read(bg, 10, 1, math.MaxInt64); err != nil || inner.reads.Load() != 2 {
		t.Fatalf("below the fresh start the log answers (reads %d, %v)", inner.reads.Load(), err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(bg, 11, 1, math.MaxInt64); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}
