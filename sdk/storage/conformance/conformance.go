// Package conformance is the test suite every storage backend runs against
// itself, so that the broker can rely on the same behaviour from all of
// them: ordering, offsets, reads at every boundary, byte and offset limits,
// validation, truncation, DeleteBefore, segments and rolling, timestamp
// lookup, reopening, concurrency and large batches. A backend's test file
// needs one line:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t *testing.T) storage.Backend { return mybackend.New() })
//	}
//
// Backends that keep data across process restarts pass Persistent(), and
// the suite then also reopens their logs through a fresh Backend. The
// suite keeps each test's data under its own t.TempDir(), passed as
// Config.Dir. Benchmarks with the same shape for every backend are in
// bench.go; batch builders (on franz-go's kmsg) in batch.go.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

// Option adjusts the suite to a backend's capabilities.
type Option func(*options)

type options struct {
	persistent bool
}

// Persistent declares that the backend keeps data across Backend instances
// (a process restart): the reopen tests then also close the Backend and
// open the data again through a new one.
func Persistent() Option { return func(o *options) { o.persistent = true } }

// NewBackendFunc returns a fresh Backend; the suite closes it.
type NewBackendFunc func(t *testing.T) storage.Backend

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, newBackend NewBackendFunc, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &suite{newBackend: newBackend, opts: o}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"AppendAndRead", s.testAppendAndRead},
		{"ReadEveryOffset", s.testReadEveryOffset},
		{"MaxBytes", s.testMaxBytes},
		{"MaxOffset", s.testMaxOffset},
		{"AppendRejects", s.testAppendRejects},
		{"OffsetGaps", s.testOffsetGaps},
		{"Truncate", s.testTruncate},
		{"TruncateAcrossSegments", s.testTruncateAcrossSegments},
		{"DeleteBefore", s.testDeleteBefore},
		{"SegmentsAndRoll", s.testSegmentsAndRoll},
		{"SegmentMs", s.testSegmentMs},
		{"OffsetForTimestamp", s.testOffsetForTimestamp},
		{"OffsetForTimestampIndexed", s.testOffsetForTimestampIndexed},
		{"Reopen", s.testReopen},
		{"Concurrency", s.testConcurrency},
		{"LargeBatches", s.testLargeBatches},
		{"Context", s.testContext},
		{"BackendLifecycle", s.testBackendLifecycle},
		{"FileReader", s.testFileReader},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	newBackend NewBackendFunc
	opts       options
}

// baseTs is the timestamp of the suite's first records (2023-11-14).
const baseTs = int64(1_700_000_000_000)

var (
	tp  = storage.PartitionID{Topic: "conformance", Partition: 0}
	ctx = context.Background()
)

func (s *suite) backend(t *testing.T) storage.Backend {
	t.Helper()
	b := s.newBackend(t)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// config is the suite's default: a private directory, a fixed clock, and
// immediate file deletion so tests see what they did.
func config(t *testing.T) storage.Config {
	now := time.Unix(1_700_000_000, 0)
	return storage.Config{
		Dir:               t.TempDir(),
		FileDeleteDelayMs: -1,
		Now:               func() time.Time { return now },
	}
}

func open(t *testing.T, b storage.Backend, cfg storage.Config) storage.Log {
	t.Helper()
	l, err := b.Open(ctx, tp, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// appendBatches appends n batches of recs records of size bytes each,
// contiguous from EndOffset, record seq numbers continuing from the
// offsets, one record timestamp baseTs+offset. It returns the batches.
func appendBatches(t *testing.T, l storage.Log, n, recs, size int) [][]byte {
	t.Helper()
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		base := l.EndOffset()
		vals := make([][]byte, recs)
		for r := range vals {
			vals[r] = Value(base+int64(r), size)
		}
		b := BuildBatch(BatchSpec{BaseOffset: base, BaseTimestamp: baseTs + base, Values: vals, Timestamps: seqTimestamps(base, recs)})
		info, err := l.Append(ctx, b)
		if err != nil {
			t.Fatalf("Append batch at %d: %v", base, err)
		}
		if info.FirstOffset != base || info.LastOffset != base+int64(recs)-1 || info.Batches != 1 ||
			info.Records != int64(recs) || info.Bytes != int64(len(b)) || info.MaxTimestamp != baseTs+base+int64(recs)-1 ||
			info.OffsetOfMaxTimestamp != info.LastOffset || info.LogStartOffset != l.StartOffset() {
			t.Fatalf("AppendInfo %+v for batch at %d with %d records", info, base, recs)
		}
		if l.EndOffset() != base+int64(recs) {
			t.Fatalf("EndOffset %d after batch %d..%d", l.EndOffset(), base, base+int64(recs)-1)
		}
		out = append(out, b)
	}
	return out
}

func seqTimestamps(base int64, n int) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = baseTs + base + int64(i)
	}
	return ts
}

// readAll reads from offset to EndOffset and returns the concatenated batches.
func readAll(t *testing.T, l storage.Log, from int64) []byte {
	t.Helper()
	var out []byte
	off := from
	for off < l.EndOffset() {
		r, err := l.Read(ctx, off, 1<<20, math.MaxInt64)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(r.Batches) == 0 {
			break
		}
		if r.NextOffset <= off {
			t.Fatalf("Read(%d) made no progress: NextOffset %d", off, r.NextOffset)
		}
		out = append(out, r.Batches...)
		off = r.NextOffset
	}
	return out
}

func concat(bs [][]byte) []byte { return bytes.Join(bs, nil) }

// headers returns the base offsets of the batches in b, failing on bad bytes.
func headers(t *testing.T, b []byte) []storage.BatchHeader {
	t.Helper()
	var hs []storage.BatchHeader
	it := storage.Batches(b, true)
	for it.Next() {
		hs = append(hs, it.Header())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("read bytes are not whole valid batches: %v", err)
	}
	return hs
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func checkOffsets(t *testing.T, l storage.Log, start, end int64) {
	t.Helper()
	if l.StartOffset() != start || l.EndOffset() != end {
		t.Fatalf("offsets [%d, %d), want [%d, %d)", l.StartOffset(), l.EndOffset(), start, end)
	}
}

func (s *suite) testAppendAndRead(t *testing.T) {
	l := open(t, s.backend(t), config(t))
	checkOffsets(t, l, 0, 0)
	if r, err := l.Read(ctx, 0, 1<<20, math.MaxInt64); err != nil || len(r.Batches) != 0 || r.NextOffset != 0 {
		t.Fatalf("empty log Read(0): %+v, %v", r, err)
	}
	var want [][]byte
	for i := 1; i <= 30; i++ {
		want = append(want, appendBatches(t, l, 1, i%5+1, 10*i)...)
	}
	// Several batches in one Append.
	base := l.EndOffset()
	multi := [][]byte{Batch(base, baseTs, Value(1, 5)), Batch(base+1, baseTs+9, Value(2, 5), Value(3, 5)), Batch(base+3, baseTs+4, Value(4, 5))}
	info, err := l.Append(ctx, concat(multi))
	if err != nil {
		t.Fatalf("multi-batch Append: %v", err)
	}
	if info.FirstOffset != base || info.LastOffset != base+3 || info.Batches != 3 || info.Records != 4 ||
		info.MaxTimestamp != baseTs+9 || info.OffsetOfMaxTimestamp != base+2 {
		t.Fatalf("multi-batch AppendInfo %+v", info)
	}
	want = append(want, multi...)
	checkOffsets(t, l, 0, base+4)
	got := readAll(t, l, 0)
	if !bytes.Equal(got, concat(want)) {
		t.Fatalf("read back %d bytes differing from the %d appended", len(got), len(concat(want)))
	}
	// The appender may reuse its buffer: stored bytes must not change.
	buf := Batch(l.EndOffset(), baseTs, []byte("keep"))
	keep := bytes.Clone(buf)
	if _, err := l.Append(ctx, buf); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 0
	}
	r, err := l.Read(ctx, l.EndOffset()-1, 1<<20, math.MaxInt64)
	if err != nil || !bytes.Equal(r.Batches, keep) {
		t.Fatalf("stored batch changed after the caller reused its buffer (err %v)", err)
	}
}

func (s *suite) testReadEveryOffset(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 1024
	l := open(t, s.backend(t), cfg)
	batches := appendBatches(t, l, 40, 3, 40)
	end := l.EndOffset()
	for off := int64(0); off < end; off++ {
		for _, maxBytes := range []int32{0, 1, 1 << 20} {
			r, err := l.Read(ctx, off, maxBytes, math.MaxInt64)
			if err != nil {
				t.Fatalf("Read(%d, %d): %v", off, maxBytes, err)
			}
			hs := headers(t, r.Batches)
			if len(hs) == 0 || hs[0].BaseOffset > off || hs[0].LastOffset() < off {
				t.Fatalf("Read(%d) did not start with the batch holding it: %+v", off, hs)
			}
			if maxBytes <= 1 && len(hs) != 1 {
				t.Fatalf("Read(%d, maxBytes %d) returned %d batches, want 1", off, maxBytes, len(hs))
			}
			if !bytes.Equal(r.Batches[:hs[0].Size()], batches[off/3]) {
				t.Fatalf("Read(%d) returned different bytes", off)
			}
			last := hs[len(hs)-1]
			if r.NextOffset != last.LastOffset()+1 || r.EndOffset != end || r.StartOffset != 0 {
				t.Fatalf("Read(%d): next %d start %d end %d, last batch ends at %d", off, r.NextOffset, r.StartOffset, r.EndOffset, last.LastOffset())
			}
		}
	}
	r, err := l.Read(ctx, end, 1<<20, math.MaxInt64)
	if err != nil || len(r.Batches) != 0 || r.NextOffset != end {
		t.Fatalf("Read(EndOffset): %d bytes, next %d, err %v", len(r.Batches), r.NextOffset, err)
	}
	for _, off := range []int64{end + 1, end + 1000, -1, math.MinInt64} {
		_, err := l.Read(ctx, off, 1<<20, math.MaxInt64)
		wantErr(t, "Read out of range", err, storage.ErrOffsetOutOfRange)
	}
}

func (s *suite) testMaxBytes(t *testing.T) {
	l := open(t, s.backend(t), config(t))
	bs := appendBatches(t, l, 6, 2, 100)
	sz := int32(len(bs[0]))
	cases := []struct {
		maxBytes int32
		batches  int
	}{
		{-1, 1}, {0, 1}, {1, 1}, {sz - 1, 1}, {sz, 1}, {2*sz - 1, 1}, {2 * sz, 2}, {3*sz + 5, 3}, {1 << 30, 6},
	}
	for _, c := range cases {
		r, err := l.Read(ctx, 0, c.maxBytes, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Batches, concat(bs[:c.batches])) {
			t.Fatalf("maxBytes %d: got %d batches, want %d", c.maxBytes, len(headers(t, r.Batches)), c.batches)
		}
		if r.NextOffset != int64(c.batches)*2 {
			t.Fatalf("maxBytes %d: NextOffset %d", c.maxBytes, r.NextOffset)
		}
	}
	// Reading from the middle of a batch counts that batch whole.
	r, err := l.Read(ctx, 3, 2*sz, math.MaxInt64)
	if err != nil || !bytes.Equal(r.Batches, concat(bs[1:3])) {
		t.Fatalf("Read(3, 2 batches): %d batches, %v", len(headers(t, r.Batches)), err)
	}
}

func (s *suite) testMaxOffset(t *testing.T) {
	l := open(t, s.backend(t), config(t))
	bs := appendBatches(t, l, 6, 2, 50) // batch i holds offsets 2i, 2i+1
	cases := []struct {
		from, maxOffset int64
		first, n        int
	}{
		{0, 6, 0, 3},  // stop before batch 3 (base 6)
		{0, 5, 0, 3},  // batch 2 (base 4) starts below 5: whole
		{0, 1, 0, 1},  // the first batch starts below 1
		{0, 0, 0, 0},  // nothing below 0
		{6, 6, 3, 0},  // offset == maxOffset
		{7, 6, 3, 0},  // the batch holding 7 starts at 6
		{3, 12, 1, 5}, // maxOffset == EndOffset
		{3, math.MaxInt64, 1, 5},
	}
	for _, c := range cases {
		r, err := l.Read(ctx, c.from, 1<<20, c.maxOffset)
		if err != nil {
			t.Fatalf("Read(%d, max %d): %v", c.from, c.maxOffset, err)
		}
		if !bytes.Equal(r.Batches, concat(bs[c.first:c.first+c.n])) {
			t.Fatalf("Read(%d, maxOffset %d): got %d batches, want %d from %d", c.from, c.maxOffset, len(headers(t, r.Batches)), c.n, c.first)
		}
		if c.n == 0 && r.NextOffset != c.from {
			t.Fatalf("empty Read(%d, maxOffset %d): NextOffset %d", c.from, c.maxOffset, r.NextOffset)
		}
	}
}

func (s *suite) testAppendRejects(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 4096
	l := open(t, s.backend(t), cfg)
	good := appendBatches(t, l, 3, 2, 20)
	end := l.EndOffset()
	next := Batch(end, baseTs, []byte("v"))
	mut := func(f func([]byte)) []byte { b := bytes.Clone(next); f(b); return b }
	second := Batch(end+1, baseTs, []byte("w"), []byte("x"))
	badSecond := bytes.Clone(second)
	badSecond[30] ^= 1
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, storage.ErrInvalidBatch},
		{"crc", mut(func(b []byte) { b[len(b)-1] ^= 1 }), storage.ErrBatchCRC},
		{"magic", mut(func(b []byte) { b[16] = 1 }), storage.ErrBatchMagic},
		{"torn", next[:len(next)-1], storage.ErrShortBatch},
		{"header only", next[:40], storage.ErrShortBatch},
		{"below end", Batch(end-1, baseTs, []byte("v")), storage.ErrNotContiguous},
		{"replayed", good[0], storage.ErrNotContiguous},
		{"decreasing", append(Batch(end+5, baseTs, []byte("v")), Batch(end+1, baseTs, []byte("v"))...), storage.ErrNotContiguous},
		{"good then torn", append(bytes.Clone(next), second[:len(second)-1]...), storage.ErrShortBatch},
		{"good then bad crc", append(bytes.Clone(next), badSecond...), storage.ErrBatchCRC},
		{"larger than segment.bytes", Batch(end, baseTs, make([]byte, 5000)), storage.ErrBatchTooLarge},
	}
	for _, c := range cases {
		_, err := l.Append(ctx, c.b)
		wantErr(t, c.name, err, c.want)
		if c.want != storage.ErrBatchTooLarge && c.want != storage.ErrNotContiguous {
			wantErr(t, c.name, err, storage.ErrInvalidBatch)
		}
		checkOffsets(t, l, 0, end)
		if got := readAll(t, l, 0); !bytes.Equal(got, concat(good)) {
			t.Fatalf("%s: rejected Append changed the log", c.name)
		}
	}
	if _, err := l.Append(ctx, next); err != nil {
		t.Fatalf("good Append after rejects: %v", err)
	}
}

func (s *suite) testOffsetGaps(t *testing.T) {
	l := open(t, s.backend(t), config(t))
	a := Batch(0, baseTs, []byte("a"), []byte("b"), []byte("c"))
	b := Batch(10, baseTs+1, []byte("d"))
	if _, err := l.Append(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, b); err != nil {
		t.Fatalf("Append after a gap: %v", err)
	}
	checkOffsets(t, l, 0, 11)
	for _, off := range []int64{3, 5, 9, 10} {
		r, err := l.Read(ctx, off, 1<<20, math.MaxInt64)
		if err != nil || !bytes.Equal(r.Batches, b) || r.NextOffset != 11 {
			t.Fatalf("Read(%d) in/after gap: %d bytes next %d err %v", off, len(r.Batches), r.NextOffset, err)
		}
	}
	if r, err := l.Read(ctx, 2, 1, math.MaxInt64); err != nil || !bytes.Equal(r.Batches, a) {
		t.Fatalf("Read(2): %v", err)
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, concat([][]byte{a, b})) {
		t.Fatal("readAll across a gap differs")
	}
}

func (s *suite) testTruncate(t *testing.T) {
	l := open(t, s.backend(t), config(t))
	bs := appendBatches(t, l, 10, 3, 30) // batch i: offsets 3i..3i+2
	// No-ops at and past the end.
	for _, off := range []int64{30, 31, 1000} {
		if err := l.Truncate(ctx, off); err != nil {
			t.Fatalf("Truncate(%d): %v", off, err)
		}
		checkOffsets(t, l, 0, 30)
	}
	// At a batch boundary.
	if err := l.Truncate(ctx, 24); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, l, 0, 24)
	if got := readAll(t, l, 0); !bytes.Equal(got, concat(bs[:8])) {
		t.Fatal("after Truncate(24) the log is not its first 8 batches")
	}
	_, err := l.Read(ctx, 25, 100, math.MaxInt64)
	wantErr(t, "Read past truncated end", err, storage.ErrOffsetOutOfRange)
	// Inside a batch: the batch goes whole, EndOffset becomes the offset.
	if err := l.Truncate(ctx, 22); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, l, 0, 22)
	if r, err := l.Read(ctx, 21, 1<<20, math.MaxInt64); err != nil || len(r.Batches) != 0 {
		t.Fatalf("Read(21) after mid-batch truncate: %d bytes, %v", len(r.Batches), err)
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, concat(bs[:7])) {
		t.Fatal("after Truncate(22) the log is not its first 7 batches")
	}
	_, err = l.Append(ctx, Batch(21, baseTs, []byte("x")))
	wantErr(t, "Append below truncated end", err, storage.ErrNotContiguous)
	nb := Batch(22, baseTs, []byte("new"))
	if _, err := l.Append(ctx, nb); err != nil {
		t.Fatalf("Append at truncated end: %v", err)
	}
	if r, err := l.Read(ctx, 21, 1<<20, math.MaxInt64); err != nil || !bytes.Equal(r.Batches, nb) {
		t.Fatalf("Read(21) after re-append: %v", err)
	}
	// Below the start offset: the log restarts there.
	if err := l.DeleteBefore(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(ctx, 5); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, l, 5, 5)
	if got := readAll(t, l, 5); len(got) != 0 {
		t.Fatalf("log not empty after Truncate below start: %d bytes", len(got))
	}
	b5 := Batch(5, baseTs, []byte("five"))
	if _, err := l.Append(ctx, b5); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l, 5); !bytes.Equal(got, b5) {
		t.Fatal("Append after full truncation")
	}
	// To zero.
	if err := l.Truncate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, l, 0, 0)
	if _, err := l.Append(ctx, Batch(0, baseTs, []byte("zero"))); err != nil {
		t.Fatal(err)
	}
	_, err = l.Read(ctx, 1, 1, math.MaxInt64)
	if err != nil {
		t.Fatalf("Read(EndOffset) after Truncate(0): %v", err)
	}
}

func (s *suite) testTruncateAcrossSegments(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 600
	l := open(t, s.backend(t), cfg)
	bs := appendBatches(t, l, 30, 2, 50)
	segs := l.Segments()
	if len(segs) < 4 {
		t.Fatalf("expected several segments, got %d", len(segs))
	}
	// Truncate into the middle of the second segment, at a batch boundary.
	cut := segs[1].BaseOffset + 2
	if cut >= segs[1].NextOffset {
		t.Fatalf("second segment too small: %+v", segs[1])
	}
	if err := l.Truncate(ctx, cut); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, l, 0, cut)
	after := l.Segments()
	if len(after) != 2 || after[1].BaseOffset != segs[1].BaseOffset || after[1].NextOffset != cut || !after[1].Active || after[0].Active {
		t.Fatalf("segments after truncate: %+v", after)
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, concat(bs[:cut/2])) {
		t.Fatal("content after cross-segment truncate")
	}
	more := appendBatches(t, l, 10, 2, 50)
	if got := readAll(t, l, 0); !bytes.Equal(got, concat(append(bs[:cut/2:cut/2], more...))) {
		t.Fatal("content after appending to a truncated segment")
	}
	// Exactly at a segment's base: that segment goes.
	segs = l.Segments()
	if err := l.Truncate(ctx, segs[len(segs)-1].BaseOffset); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n != len(segs)-1 && !(n == len(segs) && l.Segments()[n-1].SizeBytes == 0) {
		t.Fatalf("truncate at segment base left %d segments (had %d)", n, len(segs))
	}
	checkOffsets(t, l, 0, segs[len(segs)-1].BaseOffset)
}

func (s *suite) testDeleteBefore(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 600
	l := open(t, s.backend(t), cfg)
	bs := appendBatches(t, l, 30, 2, 50)
	end := l.EndOffset()
	segs := l.Segments()
	if len(segs) < 4 {
		t.Fatalf("expected several segments, got %d", len(segs))
	}
	// Mid-batch, mid third segment.
	cut := segs[2].BaseOffset + 3
	if err := l.DeleteBefore(ctx, cut); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, l, cut, end)
	after := l.Segments()
	if after[0].BaseOffset != segs[2].BaseOffset || len(after) != len(segs)-2 {
		t.Fatalf("segments entirely below %d must go, others stay: before %+v after %+v", cut, segs, after)
	}
	_, err := l.Read(ctx, cut-1, 1<<20, math.MaxInt64)
	wantErr(t, "Read below start", err, storage.ErrOffsetOutOfRange)
	r, err := l.Read(ctx, cut, 1, math.MaxInt64)
	if err != nil || !bytes.Equal(r.Batches, bs[cut/2]) || r.StartOffset != cut {
		t.Fatalf("Read(start) must return the batch holding it: %v", err)
	}
	// Lower offsets do nothing; above the end is out of range.
	if err := l.DeleteBefore(ctx, 1); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, l, cut, end)
	wantErr(t, "DeleteBefore past end", l.DeleteBefore(ctx, end+1), storage.ErrOffsetOutOfRange)
	// Exactly at a segment base removes everything before it.
	segs = l.Segments()
	if err := l.DeleteBefore(ctx, segs[1].BaseOffset); err != nil {
		t.Fatal(err)
	}
	if got := l.Segments(); got[0].BaseOffset != segs[1].BaseOffset {
		t.Fatalf("DeleteBefore(segment base) left %+v", got[0])
	}
	// The end empties the log; appends continue there.
	if err := l.DeleteBefore(ctx, end); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, l, end, end)
	var total int64
	for _, sg := range l.Segments() {
		total += sg.SizeBytes
	}
	if total != 0 {
		t.Fatalf("DeleteBefore(EndOffset) left %d bytes in %+v", total, l.Segments())
	}
	if r, err := l.Read(ctx, end, 100, math.MaxInt64); err != nil || len(r.Batches) != 0 {
		t.Fatalf("Read(end) of emptied log: %v", err)
	}
	more := appendBatches(t, l, 3, 2, 50)
	if got := readAll(t, l, end); !bytes.Equal(got, concat(more)) {
		t.Fatal("appends after emptying")
	}
	if l.StartOffset() != end {
		t.Fatalf("start offset moved to %d", l.StartOffset())
	}
}

func (s *suite) testSegmentsAndRoll(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 4096
	l := open(t, s.backend(t), cfg)
	if segs := l.Segments(); len(segs) != 1 || segs[0].BaseOffset != 0 || segs[0].NextOffset != 0 || segs[0].SizeBytes != 0 || !segs[0].Active {
		t.Fatalf("new log segments: %+v", segs)
	}
	// Rolling an empty active segment does nothing.
	if err := l.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("Roll of an empty segment made %d segments", n)
	}
	bs := appendBatches(t, l, 100, 3, 80)
	checkSegments(t, l, bs, int64(cfg.SegmentBytes))
	before := len(l.Segments())
	if before < 5 {
		t.Fatalf("100 batches of %d bytes in 4 KiB segments made only %d segments", len(bs[0]), before)
	}
	end := l.EndOffset()
	if err := l.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if len(segs) != before+1 || segs[before].BaseOffset != end || segs[before].SizeBytes != 0 || !segs[before].Active || segs[before-1].Active {
		t.Fatalf("after Roll: %+v", segs[before-1:])
	}
	if err := l.Roll(ctx); err != nil || len(l.Segments()) != before+1 {
		t.Fatalf("second Roll: %d segments, %v", len(l.Segments()), err)
	}
	more := appendBatches(t, l, 5, 3, 80)
	checkSegments(t, l, append(bs, more...), int64(cfg.SegmentBytes))
	if l.Segments()[before].BaseOffset != end {
		t.Fatal("batches after Roll did not go to the new segment")
	}
}

// checkSegments checks the segment list against the batches appended from 0.
func checkSegments(t *testing.T, l storage.Log, bs [][]byte, segmentBytes int64) {
	t.Helper()
	segs := l.Segments()
	var total int64
	bi := 0
	for i, sg := range segs {
		if sg.Active != (i == len(segs)-1) {
			t.Fatalf("segment %d Active=%v", i, sg.Active)
		}
		if i > 0 && sg.BaseOffset != segs[i-1].NextOffset {
			t.Fatalf("segment %d base %d, previous ends at %d", i, sg.BaseOffset, segs[i-1].NextOffset)
		}
		if sg.SizeBytes > segmentBytes {
			t.Fatalf("segment %d is %d bytes, segment.bytes %d", i, sg.SizeBytes, segmentBytes)
		}
		var size int64
		maxTs := int64(-1)
		for bi < len(bs) {
			h, _ := storage.ParseBatchHeader(bs[bi])
			if h.BaseOffset >= sg.NextOffset {
				break
			}
			if h.BaseOffset < sg.BaseOffset {
				t.Fatalf("batch %d at %d is below segment %d's base %d", bi, h.BaseOffset, i, sg.BaseOffset)
			}
			size += h.Size()
			maxTs = max(maxTs, h.MaxTimestamp)
			bi++
		}
		if size != sg.SizeBytes || maxTs != sg.MaxTimestamp {
			t.Fatalf("segment %d %+v: batches give size %d max timestamp %d", i, sg, size, maxTs)
		}
		total += sg.SizeBytes
	}
	if bi != len(bs) || segs[0].BaseOffset != 0 || segs[len(segs)-1].NextOffset != l.EndOffset() {
		t.Fatalf("segments %+v do not cover the %d batches up to %d", segs, len(bs), l.EndOffset())
	}
}

func (s *suite) testSegmentMs(t *testing.T) {
	cfg := config(t)
	cfg.SegmentMs = 1000
	l := open(t, s.backend(t), cfg)
	for i, ts := range []int64{baseTs, baseTs + 500, baseTs + 1000, baseTs + 1001, baseTs + 1500, baseTs + 2002} {
		if _, err := l.Append(ctx, Batch(int64(i), ts, []byte("v"))); err != nil {
			t.Fatal(err)
		}
	}
	// Rolls when the incoming timestamp is more than segment.ms past the
	// segment's first: before offsets 3 (1001 > 1000) and 5 (2002-1001 > 1000).
	var bases []int64
	for _, sg := range l.Segments() {
		bases = append(bases, sg.BaseOffset)
	}
	if len(bases) != 3 || bases[0] != 0 || bases[1] != 3 || bases[2] != 5 {
		t.Fatalf("segment bases %v, want [0 3 5]", bases)
	}
}

func (s *suite) testOffsetForTimestamp(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 300
	l := open(t, s.backend(t), cfg)
	batches := [][]byte{
		BuildBatch(BatchSpec{BaseOffset: 0, BaseTimestamp: 100, Timestamps: []int64{100, 105, 103}, Values: [][]byte{{0}, {1}, {2}}}),
		BuildBatch(BatchSpec{BaseOffset: 3, BaseTimestamp: 90, Values: [][]byte{{3}}}),
		BuildBatch(BatchSpec{BaseOffset: 4, BaseTimestamp: 200, Timestamps: []int64{200, 150}, Values: [][]byte{{4}, {5}}}),
		BuildBatch(BatchSpec{BaseOffset: 6, BaseTimestamp: 10, Values: [][]byte{{6}, {7}}, UseAppendTime: true, LogAppendTime: 300}),
		BuildBatch(BatchSpec{BaseOffset: 8, BaseTimestamp: 390, Timestamps: []int64{390, 400}, Values: [][]byte{{8}, {9}}, Compression: 1}),
		BuildBatch(BatchSpec{BaseOffset: 10, BaseTimestamp: -1, Values: [][]byte{{10}}}),
	}
	for _, b := range batches {
		if _, err := l.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.Segments()) < 2 {
		t.Fatalf("want batches spread over segments, got %+v", l.Segments())
	}
	cases := []struct{ ts, off, rts int64 }{
		{-5, 0, 100}, {0, 0, 100}, {100, 0, 100}, {101, 1, 105}, {104, 1, 105}, {105, 1, 105},
		{106, 4, 200}, {151, 4, 200}, {200, 4, 200}, {201, 6, 300}, {300, 6, 300},
		{301, 8, 400}, // compressed: the batch, with its max timestamp
		{400, 8, 400}, {401, -1, -1}, {1 << 50, -1, -1},
	}
	check := func(what string) {
		for _, c := range cases {
			off, ts, err := l.OffsetForTimestamp(ctx, c.ts)
			if err != nil {
				t.Fatalf("%s OffsetForTimestamp(%d): %v", what, c.ts, err)
			}
			if off != c.off || ts != c.rts {
				t.Fatalf("%s OffsetForTimestamp(%d) = (%d, %d), want (%d, %d)", what, c.ts, off, ts, c.off, c.rts)
			}
		}
	}
	check("")
	// Answers never fall below the start offset.
	if err := l.DeleteBefore(ctx, 5); err != nil {
		t.Fatal(err)
	}
	cases = []struct{ ts, off, rts int64 }{{0, 5, 150}, {150, 5, 150}, {151, 6, 300}, {401, -1, -1}}
	check("after DeleteBefore(5):")
	if err := l.DeleteBefore(ctx, 7); err != nil {
		t.Fatal(err)
	}
	cases = []struct{ ts, off, rts int64 }{{0, 7, 300}, {301, 8, 400}}
	check("after DeleteBefore(7):")
	if err := l.Truncate(ctx, 8); err != nil {
		t.Fatal(err)
	}
	cases = []struct{ ts, off, rts int64 }{{0, 7, 300}, {301, -1, -1}}
	check("after Truncate(8):")
}

func (s *suite) testOffsetForTimestampIndexed(t *testing.T) {
	// Enough batches for the time index to have many entries, timestamps
	// rising by 10 per record; every query must find the exact record.
	cfg := config(t)
	cfg.SegmentBytes = 64 << 10
	cfg.IndexIntervalBytes = 256
	l := open(t, s.backend(t), cfg)
	appendBatches(t, l, 400, 4, 60) // record at offset o has timestamp baseTs+o
	end := l.EndOffset()
	for o := int64(0); o < end; o += 7 {
		off, ts, err := l.OffsetForTimestamp(ctx, baseTs+o)
		if err != nil || off != o || ts != baseTs+o {
			t.Fatalf("OffsetForTimestamp(baseTs+%d) = (%d, %d), %v", o, off, ts, err)
		}
	}
	if off, ts, err := l.OffsetForTimestamp(ctx, baseTs+end); err != nil || off != -1 || ts != -1 {
		t.Fatalf("past the last timestamp: (%d, %d), %v", off, ts, err)
	}
}

func (s *suite) testReopen(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 2048
	b := s.backend(t)
	l, err := b.Open(ctx, tp, cfg)
	if err != nil {
		t.Fatal(err)
	}
	appendBatches(t, l, 40, 3, 40)
	if err := l.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	appendBatches(t, l, 5, 3, 40)
	if err := l.DeleteBefore(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(ctx, 129); err != nil { // a batch boundary: 43 batches of 3
		t.Fatal(err)
	}
	want := readAll(t, l, 7)
	segs := l.Segments()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A closed log refuses everything.
	_, err = l.Append(ctx, Batch(129, baseTs, []byte("x")))
	wantErr(t, "Append after Close", err, storage.ErrClosed)
	_, err = l.Read(ctx, 7, 100, math.MaxInt64)
	wantErr(t, "Read after Close", err, storage.ErrClosed)
	wantErr(t, "Truncate after Close", l.Truncate(ctx, 0), storage.ErrClosed)
	wantErr(t, "DeleteBefore after Close", l.DeleteBefore(ctx, 0), storage.ErrClosed)
	wantErr(t, "Roll after Close", l.Roll(ctx), storage.ErrClosed)
	wantErr(t, "Flush after Close", l.Flush(ctx), storage.ErrClosed)
	_, _, err = l.OffsetForTimestamp(ctx, 0)
	wantErr(t, "OffsetForTimestamp after Close", err, storage.ErrClosed)

	verify := func(what string, l storage.Log) {
		t.Helper()
		checkOffsets(t, l, 7, 129)
		if got := readAll(t, l, 7); !bytes.Equal(got, want) {
			t.Fatalf("%s: content differs", what)
		}
		got := l.Segments()
		if len(got) != len(segs) {
			t.Fatalf("%s: segments %+v, want %+v", what, got, segs)
		}
		for i := range got {
			if got[i].BaseOffset != segs[i].BaseOffset || got[i].NextOffset != segs[i].NextOffset ||
				got[i].SizeBytes != segs[i].SizeBytes || got[i].MaxTimestamp != segs[i].MaxTimestamp {
				t.Fatalf("%s: segment %d %+v, want %+v", what, i, got[i], segs[i])
			}
		}
		if off, ts, err := l.OffsetForTimestamp(ctx, baseTs+50); err != nil || off != 50 || ts != baseTs+50 {
			t.Fatalf("%s: OffsetForTimestamp (%d, %d) %v", what, off, ts, err)
		}
	}
	l2 := open(t, b, cfg)
	verify("reopened", l2)
	extra := appendBatches(t, l2, 2, 3, 40)
	want = append(want, concat(extra)...)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if !s.opts.persistent {
		return
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := s.backend(t)
	l3 := open(t, b2, cfg)
	checkOffsets(t, l3, 7, 135)
	if got := readAll(t, l3, 7); !bytes.Equal(got, want) {
		t.Fatal("content differs after reopening through a new Backend")
	}
}

func (s *suite) testConcurrency(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 32 << 10
	l := open(t, s.backend(t), cfg)
	const batches = 1500
	done := make(chan struct{})
	errs := make(chan error, 8)
	go func() {
		defer close(done)
		for i := 0; i < batches; i++ {
			base := l.EndOffset()
			recs := i%4 + 1
			vals := make([][]byte, recs)
			for r := range vals {
				vals[r] = Value(base+int64(r), 20+i%200)
			}
			if _, err := l.Append(ctx, BuildBatch(BatchSpec{BaseOffset: base, BaseTimestamp: baseTs + base, Values: vals})); err != nil {
				errs <- err
				return
			}
		}
	}()
	readers := 4
	finished := make(chan struct{}, readers+1)
	for r := 0; r < readers; r++ {
		go func(r int) {
			defer func() { finished <- struct{}{} }()
			off, seen := int64(0), 0
			for seen < batches {
				res, err := l.Read(ctx, off, int32(1+r*4000), math.MaxInt64)
				if err != nil {
					errs <- err
					return
				}
				it := storage.Batches(res.Batches, true)
				for it.Next() {
					h := it.Header()
					if h.BaseOffset != off {
						errs <- errors.New("reader saw a batch out of order")
						return
					}
					if want := BuildBatch(BatchSpec{BaseOffset: off, BaseTimestamp: baseTs + off, Values: valuesOf(off, int(h.RecordCount), seen)}); !bytes.Equal(it.Batch(), want) {
						errs <- errors.New("reader saw different bytes")
						return
					}
					off = h.LastOffset() + 1
					seen++
				}
				if it.Err() != nil {
					errs <- it.Err()
					return
				}
				if len(res.Batches) == 0 {
					select {
					case <-done:
						if off == l.EndOffset() && seen < batches {
							errs <- errors.New("reader stopped short of the appended batches")
							return
						}
					default:
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
		}(r)
	}
	go func() {
		defer func() { finished <- struct{}{} }()
		for {
			select {
			case <-done:
				return
			default:
			}
			_ = l.Segments()
			if _, _, err := l.OffsetForTimestamp(ctx, baseTs+l.EndOffset()/2); err != nil {
				errs <- err
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for i := 0; i < readers+1; i++ {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-finished:
		}
	}
	<-done
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// valuesOf rebuilds the values the concurrency appender wrote for the
// batch at base with n records, the seq-th batch.
func valuesOf(base int64, n, seq int) [][]byte {
	vals := make([][]byte, n)
	for r := range vals {
		vals[r] = Value(base+int64(r), 20+seq%200)
	}
	return vals
}

func (s *suite) testLargeBatches(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 8 << 20
	l := open(t, s.backend(t), cfg)
	var bs [][]byte
	for i, size := range []int{3 << 20, 5 << 20, 1 << 20, 6 << 20} {
		b := Batch(l.EndOffset(), baseTs+int64(i), Value(int64(i), size/2), Value(int64(i)+100, size/2))
		if _, err := l.Append(ctx, b); err != nil {
			t.Fatalf("Append %d MiB: %v", size>>20, err)
		}
		bs = append(bs, b)
	}
	for i := range bs {
		// KIP-74: one whole batch even though it exceeds maxBytes.
		r, err := l.Read(ctx, int64(2*i), 1<<20, math.MaxInt64)
		if err != nil || !bytes.Equal(r.Batches, bs[i]) {
			t.Fatalf("Read of %d-byte batch with maxBytes 1 MiB: %d bytes, %v", len(bs[i]), len(r.Batches), err)
		}
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, concat(bs)) {
		t.Fatal("large batches read back differently")
	}
	if len(l.Segments()) < 2 {
		t.Fatalf("15 MiB of batches in 8 MiB segments should roll: %+v", l.Segments())
	}
}

func (s *suite) testContext(t *testing.T) {
	b := s.backend(t)
	l := open(t, b, config(t))
	appendBatches(t, l, 2, 1, 10)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := l.Append(cctx, Batch(2, baseTs, []byte("x")))
	wantErr(t, "Append", err, context.Canceled)
	_, err = l.Read(cctx, 0, 100, math.MaxInt64)
	wantErr(t, "Read", err, context.Canceled)
	_, _, err = l.OffsetForTimestamp(cctx, 0)
	wantErr(t, "OffsetForTimestamp", err, context.Canceled)
	wantErr(t, "Truncate", l.Truncate(cctx, 0), context.Canceled)
	wantErr(t, "DeleteBefore", l.DeleteBefore(cctx, 1), context.Canceled)
	wantErr(t, "Roll", l.Roll(cctx), context.Canceled)
	wantErr(t, "Flush", l.Flush(cctx), context.Canceled)
	_, err = b.Open(cctx, storage.PartitionID{Topic: "other", Partition: 0}, config(t))
	wantErr(t, "Open", err, context.Canceled)
	wantErr(t, "Delete", b.Delete(cctx, tp), context.Canceled)
	checkOffsets(t, l, 0, 2)
}

func (s *suite) testBackendLifecycle(t *testing.T) {
	b := s.backend(t)
	if b.Name() == "" {
		t.Fatal("Name is empty")
	}
	cfg := config(t)
	_, err := b.Open(ctx, storage.PartitionID{Topic: "../x", Partition: 0}, cfg)
	wantErr(t, "Open bad topic", err, storage.ErrInvalidPartition)
	bad := cfg
	bad.SegmentBytes = 10
	_, err = b.Open(ctx, tp, bad)
	wantErr(t, "Open bad config", err, storage.ErrInvalidConfig)

	l := open(t, b, cfg)
	_, err = b.Open(ctx, tp, cfg)
	wantErr(t, "second Open", err, storage.ErrAlreadyOpen)
	appendBatches(t, l, 3, 2, 10)
	// Partitions are independent.
	other := storage.PartitionID{Topic: tp.Topic, Partition: 1}
	lo, err := b.Open(ctx, other, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, lo, 0, 0)
	appendBatches(t, lo, 1, 1, 10)
	// Delete closes the open log and removes the data.
	if err := b.Delete(ctx, tp); err != nil {
		t.Fatal(err)
	}
	_, err = l.Read(ctx, 0, 100, math.MaxInt64)
	wantErr(t, "Read of deleted partition", err, storage.ErrClosed)
	l2 := open(t, b, cfg)
	checkOffsets(t, l2, 0, 0)
	if err := b.Delete(ctx, storage.PartitionID{Topic: "never", Partition: 3}); err != nil {
		t.Fatalf("Delete of a partition without data: %v", err)
	}
	checkOffsets(t, lo, 0, 1)
	// Close closes every open log.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = lo.Append(ctx, Batch(1, baseTs, []byte("x")))
	wantErr(t, "Append after Backend.Close", err, storage.ErrClosed)
	_, err = b.Open(ctx, other, cfg)
	wantErr(t, "Open after Backend.Close", err, storage.ErrClosed)
}

func (s *suite) testFileReader(t *testing.T) {
	cfg := config(t)
	cfg.SegmentBytes = 1500
	l := open(t, s.backend(t), cfg)
	fr, ok := l.(storage.FileReader)
	if !ok {
		t.Skip("backend does not implement storage.FileReader")
	}
	appendBatches(t, l, 40, 3, 40)
	end := l.EndOffset()
	for off := int64(0); off <= end; off++ {
		for _, lim := range []struct {
			maxBytes  int32
			maxOffset int64
		}{{1, math.MaxInt64}, {400, math.MaxInt64}, {1 << 20, off + 4}, {1 << 20, off}} {
			r, err := l.Read(ctx, off, lim.maxBytes, lim.maxOffset)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := fr.ReadFile(ctx, off, lim.maxBytes, lim.maxOffset)
			if err != nil {
				t.Fatalf("ReadFile(%d): %v", off, err)
			}
			var buf bytes.Buffer
			if _, err := reg.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), r.Batches) || reg.NextOffset != r.NextOffset || reg.EndOffset != r.EndOffset || reg.StartOffset != r.StartOffset {
				t.Fatalf("ReadFile(%d, %d, %d) differs from Read: %d vs %d bytes, next %d vs %d",
					off, lim.maxBytes, lim.maxOffset, buf.Len(), len(r.Batches), reg.NextOffset, r.NextOffset)
			}
			_ = reg.Close()
			_ = reg.Close()
		}
	}
	_, err := fr.ReadFile(ctx, end+1, 1, math.MaxInt64)
	wantErr(t, "ReadFile out of range", err, storage.ErrOffsetOutOfRange)
	// A region pins its data: DeleteBefore waits for it or leaves the bytes readable.
	reg, err := fr.ReadFile(ctx, 0, 1<<20, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, reg.Len)
	if _, err := reg.File.ReadAt(want, reg.Pos); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.DeleteBefore(ctx, end) }()
	got := make([]byte, reg.Len)
	if _, err := reg.File.ReadAt(got, reg.Pos); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("pinned region unreadable during DeleteBefore: %v", err)
	}
	_ = reg.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
