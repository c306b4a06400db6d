package storage_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

// FuzzTailCache runs a sequence of operations decoded from the input
// (appends of batches of several sizes, truncations, DeleteBefore, reads
// with every kind of limit) through a small tail cache over countingLog,
// and checks every read against the log itself: the same error, and
// whole batches that are exactly the log's, in order, within the limits.
func FuzzTailCache(f *testing.F) {
	f.Add([]byte{0, 3, 0, 9, 3, 0, 0, 200, 3, 1, 5, 9})
	f.Add([]byte{0, 200, 0, 200, 0, 200, 0, 200, 3, 0, 255, 255, 1, 4, 3, 3, 1, 0, 2, 1, 0, 1, 3, 2, 4, 1})
	f.Add([]byte{0, 10, 1, 3, 0, 10, 2, 20, 3, 7, 3, 3, 2, 2, 0, 1, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		inner := &countingLog{}
		c := storage.NewTailCache(inner, 8<<10)
		next := func() int {
			if len(ops) == 0 {
				return 0
			}
			b := ops[0]
			ops = ops[1:]
			return int(b)
		}
		for steps := 0; len(ops) > 0 && steps < 200; steps++ {
			switch next() % 4 {
			case 0: // append one or two batches of up to ~2.5 KiB
				n := 1 + next()%2
				var buf []byte
				base := c.EndOffset() + int64(next()%3) // sometimes a gap
				for i := 0; i < n; i++ {
					size := next() * 10
					b := conformance.Batch(base, 1000+base, conformance.Value(base, size), conformance.Value(base+1, 1))
					buf = append(buf, b...)
					base += 2
				}
				if _, err := c.Append(bg, buf); err != nil {
					t.Fatalf("Append at %d: %v", c.EndOffset(), err)
				}
			case 1:
				off := c.StartOffset() + int64(next())%(c.EndOffset()-c.StartOffset()+2)
				if err := c.Truncate(bg, off); err != nil {
					t.Fatal(err)
				}
			case 2:
				off := c.StartOffset() + int64(next())%(c.EndOffset()-c.StartOffset()+2)
				err := c.DeleteBefore(bg, off)
				if (err != nil) != (off > c.EndOffset()) {
					t.Fatalf("DeleteBefore(%d) with end %d: %v", off, c.EndOffset(), err)
				}
			case 3:
				off := c.StartOffset() - 1 + int64(next())%(c.EndOffset()-c.StartOffset()+3)
				maxBytes := int32(next()*20 - 100)
				maxOffset := off + int64(next()%8)
				if next()%2 == 0 {
					maxOffset = 1 << 62
				}
				checkRead(t, c, inner, off, maxBytes, maxOffset)
			}
		}
	})
}

// checkRead compares the cache's answer with the log's own batches.
func checkRead(t *testing.T, c storage.Log, inner *countingLog, off int64, maxBytes int32, maxOffset int64) {
	t.Helper()
	got, gerr := c.Read(bg, off, maxBytes, maxOffset)
	want, werr := inner.Read(bg, off, maxBytes, maxOffset)
	if !errors.Is(gerr, storage.ErrOffsetOutOfRange) != !errors.Is(werr, storage.ErrOffsetOutOfRange) || (gerr == nil) != (werr == nil) {
		t.Fatalf("Read(%d): cache error %v, log error %v", off, gerr, werr)
	}
	if gerr != nil {
		return
	}
	if got.StartOffset != want.StartOffset || got.EndOffset != want.EndOffset {
		t.Fatalf("Read(%d): offsets [%d,%d), log [%d,%d)", off, got.StartOffset, got.EndOffset, want.StartOffset, want.EndOffset)
	}
	if len(want.Batches) == 0 {
		if len(got.Batches) != 0 || got.NextOffset != off {
			t.Fatalf("Read(%d): %d bytes next %d where the log has nothing", off, len(got.Batches), got.NextOffset)
		}
		return
	}
	// The first batch is the log's; every further one is the log's next,
	// starts below maxOffset and fits in maxBytes.
	if !bytes.HasPrefix(got.Batches, want.Batches) {
		t.Fatalf("Read(%d): the first batch differs from the log's", off)
	}
	rest, next := got.Batches[len(want.Batches):], want.NextOffset
	for len(rest) > 0 {
		w, err := inner.Read(bg, next, 1, maxOffset)
		if err != nil || len(w.Batches) == 0 || !bytes.HasPrefix(rest, w.Batches) {
			t.Fatalf("Read(%d): batch at %d is not the log's (%v)", off, next, err)
		}
		rest, next = rest[len(w.Batches):], w.NextOffset
	}
	if got.NextOffset != next {
		t.Fatalf("Read(%d): NextOffset %d, the batches end at %d", off, got.NextOffset, next)
	}
	if len(got.Batches) > len(want.Batches) && int64(len(got.Batches)) > int64(maxBytes) {
		t.Fatalf("Read(%d): %d bytes over maxBytes %d", off, len(got.Batches), maxBytes)
	}
}
