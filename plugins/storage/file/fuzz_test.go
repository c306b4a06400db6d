package file_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

// FuzzRecover opens a log whose only segment file holds arbitrary bytes, as
// after a crash. Recovery must succeed, keep exactly a prefix of whole,
// valid batches with increasing offsets, and leave a log that appends.
func FuzzRecover(f *testing.F) {
	var good []byte
	for i := int64(0); i < 4; i++ {
		good = append(good, conformance.Batch(i*2, ts0+i, []byte("a"), []byte("bc"))...)
	}
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(append(bytes.Clone(good), 0, 0, 0, 0))
	f.Add(append(conformance.Batch(5, 1, []byte("x")), conformance.Batch(2, 1, []byte("y"))...))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, tp.String())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000000.log"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := config(root)
		l, err := file.New("").Open(ctx, tp, cfg)
		if err != nil {
			t.Fatalf("recovery failed: %v", err)
		}
		var got []byte
		for off := l.StartOffset(); off < l.EndOffset(); {
			r, err := l.Read(ctx, off, 1<<20, math.MaxInt64)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			if len(r.Batches) == 0 {
				break
			}
			got = append(got, r.Batches...)
			off = r.NextOffset
		}
		if !bytes.HasPrefix(data, got) {
			t.Fatalf("recovered bytes are not a prefix of the file")
		}
		next := int64(0)
		it := storage.Batches(got, true)
		for it.Next() {
			h := it.Header()
			if h.BaseOffset < next {
				t.Fatalf("offsets go back: %d after %d", h.BaseOffset, next)
			}
			next = h.LastOffset() + 1
		}
		if it.Err() != nil {
			t.Fatalf("recovered an invalid batch: %v", it.Err())
		}
		if l.EndOffset() != next {
			t.Fatalf("end offset %d, batches end at %d", l.EndOffset(), next)
		}
		end := l.EndOffset()
		if end < math.MaxInt32 {
			if _, err := l.Append(ctx, conformance.Batch(end, ts0, []byte("after"))); err != nil {
				t.Fatalf("append after recovery: %v", err)
			}
		}
		if l.EndOffset() != end+1 && end < math.MaxInt32 {
			t.Fatalf("end offset %d after appending at %d", l.EndOffset(), end)
		}
		// No Close: it fsyncs, which would make each run take milliseconds.
		// The abandoned file is closed by the garbage collector; clean
		// reopening after recovery is covered by TestTornTail.
	})
}
