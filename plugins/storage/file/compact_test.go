package file_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

func TestCompaction(t *testing.T) {
	conformance.Compaction(t, func(t *testing.T) storage.Backend { return file.New("") }, conformance.Persistent())
}

// TestCompactionCrashStates opens logs left as a crash during a
// compaction would leave them: with the cleaned files not yet swapped in
// (they are discarded), and with the new .log in place but its indexes not
// (they are rebuilt from it).
func TestCompactionCrashStates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := storage.PartitionID{Topic: "crash", Partition: 0}
	cfg := storage.Config{Dir: dir, SegmentBytes: 720, IndexIntervalBytes: 100, FileDeleteDelayMs: -1}
	b := file.New("")
	l, err := b.Open(ctx, p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 30; i++ {
		v := conformance.Value(i, 100)
		if _, err := l.Append(ctx, conformance.Batch(i, 1000+i, v)); err != nil {
			t.Fatal(err)
		}
	}
	_ = l.Roll(ctx)
	c := l.(storage.Compactor)
	if _, err := c.Compact(ctx, 0, func(batch []byte) ([]byte, error) {
		if h, _ := storage.ParseBatchHeader(batch); h.BaseOffset%2 == 0 {
			return nil, nil
		}
		return batch, nil
	}); err != nil {
		t.Fatal(err)
	}
	readOdd := func(l storage.Log, when string) {
		t.Helper()
		r, err := l.Read(ctx, 0, 1<<20, math.MaxInt64)
		if err != nil || len(r.Batches) == 0 {
			t.Fatalf("%s: read: %v", when, err)
		}
		h, _ := storage.ParseBatchHeader(r.Batches)
		if h.BaseOffset != 1 {
			t.Fatalf("%s: first batch at %d, want 1", when, h.BaseOffset)
		}
		if off, _, err := l.OffsetForTimestamp(ctx, 1002); err != nil || off != 3 {
			t.Fatalf("%s: offset for timestamp 1002: %d %v", when, off, err)
		}
	}
	readOdd(l, "after compaction")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, p.String(), "00000000000000000000")
	// A crash before the swap leaves cleaned files behind: Open drops them.
	for _, suf := range []string{".log.cleaned.tmp", ".index.cleaned.tmp"} {
		if err := os.WriteFile(seg+suf, []byte("half-written"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A crash right after the .log was renamed leaves it without indexes.
	os.Remove(seg + ".index")
	os.Remove(seg + ".timeindex")
	os.Remove(filepath.Join(dir, p.String(), ".kafka_cleanshutdown"))
	b = file.New("")
	defer b.Close()
	l, err = b.Open(ctx, p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	readOdd(l, "after a crash")
	for _, suf := range []string{".log.cleaned.tmp", ".index.cleaned.tmp"} {
		if _, err := os.Stat(seg + suf); !os.IsNotExist(err) {
			t.Fatalf("%s left behind: %v", suf, err)
		}
	}
	if l.EndOffset() != 30 {
		t.Fatalf("end offset %d", l.EndOffset())
	}
}
