package file

import (
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
)

// FuzzCheckpoint decodes arbitrary checkpoint file contents: no panic, and
// whatever decodes re-encodes to a file that decodes to the same offset.
func FuzzCheckpoint(f *testing.F) {
	p := storage.PartitionID{Topic: "t.x-1", Partition: 7}
	f.Add(encodeCheckpoint(p, 0))
	f.Add(encodeCheckpoint(p, 1<<40))
	f.Add([]byte("0\n1\nt.x-1 7 -1\n"))
	f.Add([]byte("0\n2\nt.x-1 7 5\nt.x-1 8 5\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		off, err := decodeCheckpoint(b, p)
		if err != nil {
			return
		}
		if off < 0 {
			t.Fatalf("negative offset %d accepted", off)
		}
		again, err := decodeCheckpoint(encodeCheckpoint(p, off), p)
		if err != nil || again != off {
			t.Fatalf("round trip of %d: %d, %v", off, again, err)
		}
	})
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := storage.PartitionID{Topic: "orders", Partition: 2}
	if _, found, err := readCheckpoint(dir, startCheckpoint, p); found || err != nil {
		t.Fatalf("missing file: found %v, %v", found, err)
	}
	if err := writeCheckpoint(dir, startCheckpoint, p, 42); err != nil {
		t.Fatal(err)
	}
	off, found, err := readCheckpoint(dir, startCheckpoint, p)
	if err != nil || !found || off != 42 {
		t.Fatalf("got %d, %v, %v", off, found, err)
	}
	if _, err := decodeCheckpoint(encodeCheckpoint(storage.PartitionID{Topic: "other", Partition: 2}, 1), p); err == nil {
		t.Fatal("a checkpoint for another partition must not decode")
	}
}
