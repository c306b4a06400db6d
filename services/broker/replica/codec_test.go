package replica

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/runnel-io/runnel/sdk/storage"
)

func TestSnappyJavaFraming(t *testing.T) {
	plain := bytes.Repeat([]byte("records "), 100)
	framed := append([]byte{}, xerialMagic...)
	framed = binary.BigEndian.AppendUint32(framed, 1)
	framed = binary.BigEndian.AppendUint32(framed, 1)
	for _, part := range [][]byte{plain[:300], plain[300:]} {
		blk := s2.EncodeSnappy(nil, part)
		framed = binary.BigEndian.AppendUint32(framed, uint32(len(blk)))
		framed = append(framed, blk...)
	}
	got, err := decompress(2, framed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("snappy-java: %v", err)
	}
	got, err = decompress(2, s2.EncodeSnappy(nil, plain))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("raw snappy: %v", err)
	}
	if _, err := decompress(2, framed[:len(framed)-3]); err == nil {
		t.Fatal("a torn chunk decoded")
	}
}

// FuzzUncompressedView: decompressing stored batches (bytes from disk) must
// not panic on any input; for an uncompressed batch the view is the batch.
func FuzzUncompressedView(f *testing.F) {
	b := testBatch(3, 10, []byte("abc"))
	f.Add(b)
	snappy := append([]byte(nil), b[:storage.BatchHeaderSize]...)
	binary.BigEndian.PutUint16(snappy[21:], 2)
	snappy = append(snappy, s2.EncodeSnappy(nil, b[storage.BatchHeaderSize:])...)
	binary.BigEndian.PutUint32(snappy[8:], uint32(len(snappy)-12))
	f.Add(snappy)
	f.Fuzz(func(t *testing.T, batch []byte) {
		view, err := uncompressedView(batch)
		if err != nil {
			return
		}
		if _, err := storage.FindTimestamp(view, 0, 0); err != nil && len(view) < storage.BatchHeaderSize {
			t.Fatalf("view shorter than a header: %d", len(view))
		}
	})
}
