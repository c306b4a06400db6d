package conformance

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
)

// Compaction runs the tests of the optional storage.Compactor interface,
// for backends whose logs implement it:
//
//	func TestCompaction(t *testing.T) {
//		conformance.Compaction(t, func(t *testing.T) storage.Backend { return mybackend.New() })
//	}
func Compaction(t *testing.T, newBackend NewBackendFunc, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &suite{newBackend: newBackend, opts: o}
	t.Run("Rewrite", s.testCompactRewrite)
	t.Run("Refusals", s.testCompactRefusals)
	t.Run("Concurrent", s.testCompactConcurrent)
}

// compactor opens a log with segments of about three 3-record batches
// and returns it as a Compactor, with the batches appended (30 of them,
// offsets 0-89) and the active segment rolled.
func (s *suite) compactor(t *testing.T, b storage.Backend) (storage.Log, storage.Compactor, storage.Config, [][]byte) {
	t.Helper()
	cfg := config(t)
	cfg.SegmentBytes = 3 * 240
	cfg.IndexIntervalBytes = 100
	l := open(t, b, cfg)
	c, ok := l.(storage.Compactor)
	if !ok {
		t.Fatalf("%T does not implement storage.Compactor", l)
	}
	batches := appendBatches(t, l, 30, 3, 40)
	if err := l.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	return l, c, cfg, batches
}

// lastRecordOf rebuilds a 3-record batch of appendBatches as a batch of
// its last record only, at that record's offset.
func lastRecordOf(batch []byte) []byte {
	h, _ := storage.ParseBatchHeader(batch)
	last := h.LastOffset()
	return BuildBatch(BatchSpec{BaseOffset: last, BaseTimestamp: baseTs + last, Values: [][]byte{Value(last, 40)}})
}

func (s *suite) testCompactRewrite(t *testing.T) {
	b := s.backend(t)
	l, c, cfg, batches := s.compactor(t, b)
	segs := l.Segments()
	if len(segs) < 4 {
		t.Fatalf("%d segments; the test needs several", len(segs))
	}
	first, second := segs[0], segs[1]
	// First segment: drop its second batch, keep only the last record of
	// its first, keep the rest as they are.
	res, err := c.Compact(ctx, first.BaseOffset, func(batch []byte) ([]byte, error) {
		h, _ := storage.ParseBatchHeader(batch)
		switch h.BaseOffset {
		case 0:
			return lastRecordOf(batch), nil
		case 3:
			return nil, nil
		}
		return batch, nil
	})
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if res.BatchesBefore < 3 || res.BatchesAfter != res.BatchesBefore-1 || res.BytesAfter >= res.BytesBefore {
		t.Fatalf("CompactResult %+v", res)
	}
	// Second segment: nothing stays.
	if _, err := c.Compact(ctx, second.BaseOffset, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatalf("Compact to empty: %v", err)
	}
	var want [][]byte
	for _, bt := range batches {
		h, _ := storage.ParseBatchHeader(bt)
		switch {
		case h.BaseOffset == 0:
			want = append(want, lastRecordOf(bt))
		case h.BaseOffset == 3:
		case h.BaseOffset >= second.BaseOffset && h.BaseOffset < second.NextOffset:
		default:
			want = append(want, bt)
		}
	}
	check := func(l storage.Log, when string) {
		t.Helper()
		checkOffsets(t, l, 0, 90)
		if got := readAll(t, l, 0); !bytes.Equal(got, concat(want)) {
			t.Fatalf("%s: read back %d bytes, want %d (the kept batches)", when, len(got), len(concat(want)))
		}
		// A read inside a dropped range starts at the next kept batch.
		for _, c := range []struct{ at, first int64 }{{0, 2}, {1, 2}, {3, 6}, {5, 6}, {second.BaseOffset, second.NextOffset}} {
			r, err := l.Read(ctx, c.at, 1, math.MaxInt64)
			if err != nil || len(r.Batches) == 0 {
				t.Fatalf("%s: Read(%d): %+v %v", when, c.at, r, err)
			}
			if h := headers(t, r.Batches)[0]; h.BaseOffset != c.first {
				t.Fatalf("%s: Read(%d) starts at %d, want %d", when, c.at, h.BaseOffset, c.first)
			}
		}
		after := l.Segments()
		if len(after) != len(segs)+0 && len(after) != len(segs)+1 {
			t.Fatalf("%s: %d segments, had %d", when, len(after), len(segs))
		}
		if after[0].BaseOffset != first.BaseOffset || after[1].BaseOffset != second.BaseOffset || after[1].SizeBytes != 0 ||
			after[0].SizeBytes >= first.SizeBytes || when == "after compaction" && !after[0].LastModified.Equal(first.LastModified) {
			t.Fatalf("%s: segments %+v, before %+v", when, after[:2], segs[:2])
		}
		// Timestamp lookups still find the kept records.
		if off, _, err := l.OffsetForTimestamp(ctx, baseTs+4); err != nil || off != 6 {
			t.Fatalf("%s: OffsetForTimestamp(+4) = %d, %v; want 6 (3-5 were dropped)", when, off, err)
		}
	}
	check(l, "after compaction")
	// Appends go on after it.
	want = append(want, appendBatches(t, l, 2, 3, 40)...)
	checkOffsets(t, l, 0, 96)
	want = want[:len(want)-2]
	if !s.opts.persistent {
		return
	}
	_ = l.Close()
	_ = b.Close()
	b2 := s.backend(t)
	l2, err := b2.Open(ctx, tp, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if err := l2.Truncate(ctx, 90); err != nil {
		t.Fatal(err)
	}
	check(l2, "after reopening")
}

func (s *suite) testCompactRefusals(t *testing.T) {
	l, c, _, batches := s.compactor(t, s.backend(t))
	segs := l.Segments()
	active := segs[len(segs)-1]
	wantErr(t, "Compact of the active segment", errOf(c.Compact(ctx, active.BaseOffset, keepAll)), storage.ErrSegmentChanged)
	wantErr(t, "Compact of no segment", errOf(c.Compact(ctx, 1, keepAll)), storage.ErrSegmentChanged)
	boom := errors.New("boom")
	if _, err := c.Compact(ctx, 0, func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("keep's error: %v", err)
	}
	// A batch from keep outside the original's offsets, or not a batch.
	outside := func(batch []byte) ([]byte, error) {
		h, _ := storage.ParseBatchHeader(batch)
		return Batch(h.LastOffset()+1, baseTs, []byte("x")), nil
	}
	wantErr(t, "a kept batch past the original", errOf(c.Compact(ctx, 0, outside)), storage.ErrInvalidBatch)
	garbage := func(batch []byte) ([]byte, error) { return batch[:len(batch)-1], nil }
	wantErr(t, "a torn kept batch", errOf(c.Compact(ctx, 0, garbage)), storage.ErrInvalidBatch)
	// None of that changed anything.
	if got := readAll(t, l, 0); !bytes.Equal(got, concat(batches)) {
		t.Fatal("a refused Compact changed the log")
	}
	// A segment that DeleteBefore removed is gone for Compact too.
	if err := l.DeleteBefore(ctx, segs[1].BaseOffset); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Compact of a deleted segment", errOf(c.Compact(ctx, 0, keepAll)), storage.ErrSegmentChanged)
}

func keepAll(b []byte) ([]byte, error) { return b, nil }

func errOf(_ storage.CompactResult, err error) error { return err }

// testCompactConcurrent compacts every sealed segment while a writer
// appends and readers read the whole log: appends never fail, and every
// read sees whole, ordered batches.
func (s *suite) testCompactConcurrent(t *testing.T) {
	l, c, _, _ := s.compactor(t, s.backend(t))
	segs := l.Segments()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			base := l.EndOffset()
			if _, err := l.Append(ctx, Batch(base, baseTs+base, Value(base, 40))); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			off, prev := int64(0), int64(-1)
			for off < l.EndOffset() {
				r, err := l.Read(ctx, off, 4096, math.MaxInt64)
				if err != nil {
					errs <- err
					return
				}
				if len(r.Batches) == 0 {
					break
				}
				it := storage.Batches(r.Batches, true)
				for it.Next() {
					if h := it.Header(); h.BaseOffset <= prev {
						errs <- errors.New("batches out of order")
						return
					} else {
						prev = h.LastOffset()
					}
				}
				if it.Err() != nil {
					errs <- it.Err()
					return
				}
				off = r.NextOffset
			}
		}
	}()
	for _, sg := range segs[:len(segs)-1] {
		_, err := c.Compact(ctx, sg.BaseOffset, func(batch []byte) ([]byte, error) {
			if h, _ := storage.ParseBatchHeader(batch); h.BaseOffset%2 == 0 {
				return nil, nil
			}
			return batch, nil
		})
		if err != nil {
			t.Fatalf("Compact %d: %v", sg.BaseOffset, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l.EndOffset() != 140 {
		t.Fatalf("EndOffset %d after 50 concurrent appends, want 140", l.EndOffset())
	}
}
