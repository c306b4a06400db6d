package storage_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

// FuzzParseBatches feeds arbitrary bytes to the batch iterator, the header
// parser and the record walker: none may panic, every batch the iterator
// accepts must lie inside the input and pass CheckBatch on its own, and
// re-stamping an accepted batch must leave a valid one.
func FuzzParseBatches(f *testing.F) {
	one := conformance.Batch(0, 1000, []byte("hello"), []byte("world"))
	two := append(bytes.Clone(one), conformance.Batch(2, 2000, []byte("x"))...)
	f.Add(one)
	f.Add(two)
	f.Add(two[:len(two)-3])
	f.Add(conformance.BuildBatch(conformance.BatchSpec{BaseOffset: 9, BaseTimestamp: 5, Timestamps: []int64{5, 1, 9}, Values: [][]byte{{1}, {2}, {3}}}))
	f.Add(conformance.BuildBatch(conformance.BatchSpec{BaseOffset: 1, Values: [][]byte{{1}}, Compression: 4}))
	f.Add(conformance.BuildBatch(conformance.BatchSpec{BaseOffset: 1, Values: [][]byte{{1}}, UseAppendTime: true, LogAppendTime: 3}))
	f.Add(make([]byte, 61))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, crc := range []bool{false, true} {
			it := storage.Batches(data, crc)
			end := 0
			for it.Next() {
				b := it.Batch()
				if it.Pos() != end || it.Pos()+len(b) > len(data) {
					t.Fatalf("batch at %d len %d outside input of %d (previous end %d)", it.Pos(), len(b), len(data), end)
				}
				end = it.Pos() + len(b)
				h := it.Header()
				if h.Size() != int64(len(b)) {
					t.Fatalf("header size %d, batch %d", h.Size(), len(b))
				}
				if crc {
					if _, err := storage.CheckBatch(b); err != nil {
						t.Fatalf("accepted batch fails CheckBatch: %v", err)
					}
				}
				m, err := storage.FindTimestamp(b, h.BaseTimestamp, h.BaseOffset)
				if err == nil && m.Found && (m.Offset < h.BaseOffset || m.Offset > h.LastOffset()) {
					t.Fatalf("match offset %d outside [%d, %d]", m.Offset, h.BaseOffset, h.LastOffset())
				}
				if err != nil && !errors.Is(err, storage.ErrInvalidBatch) {
					t.Fatalf("FindTimestamp error does not wrap ErrInvalidBatch: %v", err)
				}
				c := bytes.Clone(b)
				if err := storage.SetLogAppendTime(c, 42); err != nil {
					t.Fatal(err)
				}
				if _, err := storage.CheckBatch(c); err != nil {
					t.Fatalf("re-stamped batch invalid: %v", err)
				}
			}
			if it.Good() != end {
				t.Fatalf("Good %d, end of last batch %d", it.Good(), end)
			}
			if it.Err() == nil && end != len(data) {
				t.Fatalf("clean end at %d of %d bytes", end, len(data))
			}
			if it.Err() != nil && !errors.Is(it.Err(), storage.ErrInvalidBatch) {
				t.Fatalf("error does not wrap ErrInvalidBatch: %v", it.Err())
			}
		}
		_, _ = storage.CheckAppend(data, 0, 1<<20)
	})
}
