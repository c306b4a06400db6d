package replica

import (
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
)

// FuzzRecords feeds arbitrary bytes to the record walker, which reads
// producers' batches on compacted topics (CheckKeys) and stored batches
// (loading __consumer_offsets, the cleaner): it must return an error or
// records, never panic; and a batch the cleaner filters stays a valid
// batch within the original's offsets.
func FuzzRecords(f *testing.F) {
	b := BuildBatch(1000, []KeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b")}, {Value: []byte("no key")}})
	f.Add(b)
	for codec := 1; codec <= 4; codec++ {
		z, err := compress(codec, b[storage.BatchHeaderSize:])
		if err != nil {
			f.Fatal(err)
		}
		c := append(append([]byte(nil), b[:storage.BatchHeaderSize]...), z...)
		c[22] = byte(codec)
		f.Add(c)
	}
	f.Add(b[:storage.BatchHeaderSize+3])
	f.Fuzz(func(t *testing.T, batch []byte) {
		n := 0
		_ = EachRecord(batch, func(Record) error { n++; return nil })
		_ = CheckKeys(batch)
		h, err := storage.ParseBatchHeader(batch)
		if err != nil || int64(len(batch)) < h.Size() {
			return
		}
		i := 0
		out, err := filterBatch(batch[:h.Size()], func(Record) bool { i++; return i%2 == 0 })
		if err != nil || out == nil || &out[0] == &batch[0] {
			return
		}
		oh, err := storage.CheckBatch(out)
		if err != nil || oh.Size() != int64(len(out)) || oh.BaseOffset != h.BaseOffset || oh.LastOffset() != h.LastOffset() {
			t.Fatalf("filtered batch %+v (%v) from %+v", oh, err, h)
		}
	})
}
