package replica

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
)

func TestCheckpointFormats(t *testing.T) {
	epochs := []EpochEntry{{0, 0}, {2, 150}, {7, 9000}}
	text := FormatEpochs(epochs)
	if string(text) != "0\n3\n0 0\n2 150\n7 9000\n" {
		t.Fatalf("leader-epoch-checkpoint text %q", text)
	}
	back, err := ParseEpochs(text)
	if err != nil || !reflect.DeepEqual(back, epochs) {
		t.Fatalf("%v %v", back, err)
	}
	offs := map[storage.PartitionID]int64{{Topic: "b", Partition: 1}: 5, {Topic: "a", Partition: 10}: 7, {Topic: "a", Partition: 2}: 0}
	text = FormatOffsets(offs)
	if string(text) != "0\n3\na 2 0\na 10 7\nb 1 5\n" {
		t.Fatalf("replication-offset-checkpoint text %q", text)
	}
	backOffs, err := ParseOffsets(text)
	if err != nil || !reflect.DeepEqual(backOffs, offs) {
		t.Fatalf("%v %v", backOffs, err)
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\n1 1\n", "0\n1\n1\n", "0\n1\nx 1\n", "0\n-1\n", "0\n1\n-1 5\n"} {
		if _, err := ParseEpochs([]byte(bad)); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("ParseEpochs(%q): %v", bad, err)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "cp")
	for _, s := range []string{"first", "second"} {
		if err := writeFileAtomic(p, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != s {
			t.Fatalf("%q", b)
		}
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
}

// FuzzParseCheckpoints: the checkpoint parsers read files from disk; they
// must not panic, and what they accept must survive a format round trip.
func FuzzParseCheckpoints(f *testing.F) {
	f.Add([]byte("0\n2\n0 0\n3 120\n"))
	f.Add([]byte("0\n1\ntopic 0 42\n"))
	f.Add([]byte("0\n99999999999\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := ParseEpochs(b); err == nil {
			if again, err := ParseEpochs(FormatEpochs(e)); err != nil || !reflect.DeepEqual(again, e) {
				t.Fatalf("epochs round trip: %v", err)
			}
		}
		if o, err := ParseOffsets(b); err == nil {
			if again, err := ParseOffsets(FormatOffsets(o)); err != nil || len(again) != len(o) {
				t.Fatalf("offsets round trip: %v", err)
			}
		}
	})
}
