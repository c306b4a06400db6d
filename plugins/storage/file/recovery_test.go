package file_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

var (
	ctx = context.Background()
	tp  = storage.PartitionID{Topic: "events", Partition: 3}
)

const ts0 = int64(1_700_000_000_000)

func config(root string) storage.Config {
	return storage.Config{Dir: root, FileDeleteDelayMs: -1, IndexIntervalBytes: 256}
}

func open(t *testing.T, cfg storage.Config) storage.Log {
	t.Helper()
	b := file.New("")
	l, err := b.Open(ctx, tp, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close(); _ = b.Close() })
	return l
}

// appendN appends n batches of recs records; the record at offset o has
// timestamp ts0+o.
func appendN(t *testing.T, l storage.Log, n, recs, size int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		base := l.EndOffset()
		vals := make([][]byte, recs)
		tss := make([]int64, recs)
		for r := range vals {
			vals[r] = conformance.Value(base+int64(r), size)
			tss[r] = ts0 + base + int64(r)
		}
		b := conformance.BuildBatch(conformance.BatchSpec{BaseOffset: base, BaseTimestamp: ts0 + base, Timestamps: tss, Values: vals})
		if _, err := l.Append(ctx, b); err != nil {
			t.Fatalf("Append at %d: %v", base, err)
		}
		out = append(out, b)
	}
	return out
}

func readAll(t *testing.T, l storage.Log) []byte {
	t.Helper()
	var out []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		r, err := l.Read(ctx, off, 1<<20, math.MaxInt64)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(r.Batches) == 0 {
			break
		}
		out = append(out, r.Batches...)
		off = r.NextOffset
	}
	return out
}

func partDir(root string) string { return filepath.Join(root, tp.String()) }

// snapshot copies a partition directory: copying an open log's files gives
// what a crash would leave (no clean shutdown marker, data in the page cache).
func snapshot(t *testing.T, root string) string {
	t.Helper()
	dst := t.TempDir()
	src := partDir(root)
	if err := os.MkdirAll(partDir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if os.IsNotExist(err) { // a checkpoint's temporary file, renamed meanwhile
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(partDir(dst), e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func files(t *testing.T, root, suffix string) []string {
	t.Helper()
	entries, err := os.ReadDir(partDir(root))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func TestKafkaLayout(t *testing.T) {
	root := t.TempDir()
	cfg := config(root)
	cfg.SegmentBytes = 8 << 10
	l := open(t, cfg)
	bs := appendN(t, l, 120, 3, 60)
	if err := l.DeleteBefore(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logs := files(t, root, ".log")
	segs := len(logs)
	if segs < 3 {
		t.Fatalf("want several segments, have %v", logs)
	}
	for _, name := range logs {
		stem := strings.TrimSuffix(name, ".log")
		if len(stem) != 20 {
			t.Fatalf("segment name %q is not 20 digits", name)
		}
		data, _ := os.ReadFile(filepath.Join(partDir(root), name))
		idx, err1 := os.ReadFile(filepath.Join(partDir(root), stem+".index"))
		tidx, err2 := os.ReadFile(filepath.Join(partDir(root), stem+".timeindex"))
		if err1 != nil || err2 != nil || len(idx)%8 != 0 || len(tidx)%12 != 0 || len(idx) == 0 || len(tidx) == 0 {
			t.Fatalf("%s: index %d bytes (%v), time index %d bytes (%v)", stem, len(idx), err1, len(tidx), err2)
		}
		var base int64
		for _, c := range stem {
			base = base*10 + int64(c-'0')
		}
		// Every offset index entry names the last offset of the batch at its position.
		for i := 0; i < len(idx); i += 8 {
			rel, pos := binary.BigEndian.Uint32(idx[i:]), binary.BigEndian.Uint32(idx[i+4:])
			h, err := storage.CheckBatch(data[pos:])
			if err != nil || h.LastOffset() != base+int64(rel) {
				t.Fatalf("%s index entry %d: (%d, %d) -> batch %+v, %v", stem, i/8, rel, pos, h, err)
			}
		}
		// Time index entries rise and end with the segment's max timestamp.
		var maxTs int64 = -1
		it := storage.Batches(data, true)
		for it.Next() {
			maxTs = max(maxTs, it.Header().MaxTimestamp)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		last := len(tidx) - 12
		if int64(binary.BigEndian.Uint64(tidx[last:])) != maxTs {
			t.Fatalf("%s: last time index entry %d, segment max %d", stem, binary.BigEndian.Uint64(tidx[last:]), maxTs)
		}
	}
	b, err := os.ReadFile(filepath.Join(partDir(root), "log-start-offset-checkpoint"))
	if err != nil || string(b) != "0\n1\nevents 3 7\n" {
		t.Fatalf("log-start-offset-checkpoint = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(partDir(root), "recovery-point-offset-checkpoint")); err != nil || string(b) != "0\n1\nevents 3 360\n" {
		t.Fatalf("recovery-point-offset-checkpoint = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(partDir(root), ".kafka_cleanshutdown")); err != nil {
		t.Fatalf("clean shutdown marker: %v", err)
	}
	l2 := open(t, cfg)
	if _, err := os.Stat(filepath.Join(partDir(root), ".kafka_cleanshutdown")); !os.IsNotExist(err) {
		t.Fatalf("clean shutdown marker must go while the log is open: %v", err)
	}
	if got := readAll(t, l2); !bytes.Equal(got, bytes.Join(bs, nil)[len(bs[0])+len(bs[1]):]) {
		t.Fatal("content after reopen")
	}
}

// TestTornTail cuts the .log file at every byte of the last batch, as a
// crash in the middle of a write would, and checks that recovery drops
// exactly the torn batch and that appends continue.
func TestTornTail(t *testing.T) {
	root := t.TempDir()
	cfg := config(root)
	l := open(t, cfg)
	bs := appendN(t, l, 11, 3, 40)
	bs = append(bs, appendN(t, l, 1, 1, 5)...) // a small last batch keeps the cuts few
	last := bs[len(bs)-1]
	full := bytes.Join(bs, nil)
	keep := int64(len(full) - len(last))
	crashed := snapshot(t, root) // as a crash leaves it: no marker, no index files
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closed := snapshot(t, root) // marker and index files
	for cut := keep; cut < int64(len(full)); cut++ {
		// With the marker, the indexes are trusted and only the tail walk
		// can notice the cut: it must.
		for _, clean := range []bool{false, true} {
			src := crashed
			if clean {
				src = closed
			}
			dir := snapshot(t, src)
			lp := filepath.Join(partDir(dir), "00000000000000000000.log")
			if err := os.Truncate(lp, cut); err != nil {
				t.Fatal(err)
			}
			c := cfg
			c.Dir = dir
			l := open(t, c)
			if l.EndOffset() != 33 {
				t.Fatalf("cut at %d (clean %v): EndOffset %d, want 33", cut, clean, l.EndOffset())
			}
			if got := readAll(t, l); !bytes.Equal(got, full[:keep]) {
				t.Fatalf("cut at %d: content differs", cut)
			}
			if fi, err := os.Stat(lp); err != nil || fi.Size() != keep {
				t.Fatalf("cut at %d: .log not cut back to %d: %v", cut, keep, err)
			}
			if _, err := l.Append(ctx, last); err != nil {
				t.Fatalf("cut at %d: re-append: %v", cut, err)
			}
			if got := readAll(t, l); !bytes.Equal(got, full) {
				t.Fatalf("cut at %d: content after re-append", cut)
			}
			_ = l.Close()
		}
	}
}

func TestCorruptTailAndMiddle(t *testing.T) {
	root := t.TempDir()
	cfg := config(root)
	cfg.SegmentBytes = 2048
	l := open(t, cfg)
	bs := appendN(t, l, 30, 3, 40)
	segs := l.Segments()
	crashed := snapshot(t, root)

	// A flipped byte in a record of the last batch: recovery drops it.
	logs := files(t, crashed, ".log")
	lastLog := filepath.Join(partDir(crashed), logs[len(logs)-1])
	data, _ := os.ReadFile(lastLog)
	data[len(data)-3] ^= 0x40
	if err := os.WriteFile(lastLog, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := cfg
	c.Dir = crashed
	l2 := open(t, c)
	if l2.EndOffset() != 87 || !bytes.Equal(readAll(t, l2), bytes.Join(bs[:29], nil)) {
		t.Fatalf("CRC-bad last batch: EndOffset %d", l2.EndOffset())
	}
	_ = l2.Close()

	// A bad batch inside the second segment, which the crash left above the
	// recovery point: that segment is cut there and later ones removed.
	crashed = snapshot(t, root)
	second := filepath.Join(partDir(crashed), files(t, crashed, ".log")[1])
	data, _ = os.ReadFile(second)
	h, _ := storage.ParseBatchHeader(data)
	data[h.Size()+storage.BatchHeaderSize] ^= 1 // the second batch of the segment
	if err := os.WriteFile(second, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(partDir(crashed), "recovery-point-offset-checkpoint")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	c.Dir = crashed
	l3 := open(t, c)
	want := segs[1].BaseOffset + 3
	if l3.EndOffset() != want || len(l3.Segments()) != 2 {
		t.Fatalf("corrupt middle: EndOffset %d (want %d), segments %+v", l3.EndOffset(), want, l3.Segments())
	}
	if !bytes.Equal(readAll(t, l3), bytes.Join(bs[:want/3], nil)) {
		t.Fatal("corrupt middle: content")
	}
	if n := len(files(t, crashed, ".log")); n != 2 {
		t.Fatalf("later segments left on disk: %d .log files", n)
	}
}

// TestIndexRebuild deletes or corrupts index files and checks that they are
// rebuilt byte for byte and that lookups keep working.
func TestIndexRebuild(t *testing.T) {
	root := t.TempDir()
	cfg := config(root)
	cfg.SegmentBytes = 4096
	l := open(t, cfg)
	bs := appendN(t, l, 60, 3, 40)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	pd := partDir(root)
	stems := files(t, root, ".index")
	orig := map[string][]byte{}
	for _, s := range stems {
		stem := strings.TrimSuffix(s, ".index")
		for _, suf := range []string{".index", ".timeindex"} {
			orig[stem+suf], _ = os.ReadFile(filepath.Join(pd, stem+suf))
		}
	}
	sealed := strings.TrimSuffix(stems[1], ".index")
	damage := []struct {
		name string
		do   func()
	}{
		{"deleted", func() {
			_ = os.Remove(filepath.Join(pd, sealed+".index"))
			_ = os.Remove(filepath.Join(pd, sealed+".timeindex"))
		}},
		{"garbage", func() {
			_ = os.WriteFile(filepath.Join(pd, sealed+".index"), []byte("not an index at all!!!!"), 0o644)
			_ = os.WriteFile(filepath.Join(pd, sealed+".timeindex"), bytes.Repeat([]byte{0xff}, 24), 0o644)
		}},
		{"positions past the end", func() {
			b := bytes.Clone(orig[sealed+".index"])
			binary.BigEndian.PutUint32(b[len(b)-4:], 1<<30)
			_ = os.WriteFile(filepath.Join(pd, sealed+".index"), b, 0o644)
		}},
		{"time index pointing past the segment", func() {
			b := bytes.Clone(orig[sealed+".timeindex"])
			binary.BigEndian.PutUint32(b[len(b)-4:], 1<<20)
			_ = os.WriteFile(filepath.Join(pd, sealed+".timeindex"), b, 0o644)
		}},
	}
	for _, d := range damage {
		d.do()
		l := open(t, cfg)
		if got := readAll(t, l); !bytes.Equal(got, bytes.Join(bs, nil)) {
			t.Fatalf("%s: content", d.name)
		}
		for o := int64(0); o < l.EndOffset(); o += 5 {
			if off, ts, err := l.OffsetForTimestamp(ctx, ts0+o); err != nil || off != o || ts != ts0+o {
				t.Fatalf("%s: OffsetForTimestamp(%d) = %d, %d, %v", d.name, o, off, ts, err)
			}
		}
		for name, want := range orig {
			if got, _ := os.ReadFile(filepath.Join(pd, name)); !bytes.Equal(got, want) && strings.HasPrefix(name, sealed) {
				t.Fatalf("%s: %s rebuilt differently (%d bytes, was %d)", d.name, name, len(got), len(want))
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRollsWhenIndexFull(t *testing.T) {
	root := t.TempDir()
	cfg := config(root)
	cfg.IndexIntervalBytes = 1
	cfg.MaxIndexBytes = 48 // 6 offset entries, 4 time entries
	l := open(t, cfg)
	bs := appendN(t, l, 40, 1, 10)
	if n := len(l.Segments()); n < 8 {
		t.Fatalf("full time index must roll: %d segments for 40 indexed batches", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range files(t, root, ".timeindex") {
		b, _ := os.ReadFile(filepath.Join(partDir(root), name))
		if len(b) > 5*12 { // 4 entries plus the one added on roll
			t.Fatalf("%s has %d entries", name, len(b)/12)
		}
	}
	l2 := open(t, cfg)
	if !bytes.Equal(readAll(t, l2), bytes.Join(bs, nil)) {
		t.Fatal("content")
	}
}

func TestDelayedDeletion(t *testing.T) {
	root := t.TempDir()
	cfg := config(root)
	cfg.SegmentBytes = 1024
	cfg.FileDeleteDelayMs = 3_600_000
	l := open(t, cfg)
	appendN(t, l, 20, 2, 40)
	segs := l.Segments()
	if err := l.DeleteBefore(ctx, segs[2].BaseOffset); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, root, ".log.deleted")); n != 2 {
		t.Fatalf("want 2 segments renamed .deleted, have %d", n)
	}
	if n := len(files(t, root, ".log")); n != len(segs)-2 {
		t.Fatalf("%d live segments, want %d", n, len(segs)-2)
	}
	// A crash leaves them; the next Open removes them.
	crashed := snapshot(t, root)
	c := cfg
	c.Dir = crashed
	l2 := open(t, c)
	if n := len(files(t, crashed, ".deleted")); n != 0 || l2.StartOffset() != segs[2].BaseOffset {
		t.Fatalf("after reopen: %d .deleted files, start %d", n, l2.StartOffset())
	}
	// Close removes pending ones at once.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, root, ".deleted")); n != 0 {
		t.Fatalf("%d .deleted files after Close", n)
	}
}

func TestCrashAfterDeleteBeforeCheckpoint(t *testing.T) {
	// DeleteBefore records the start offset before removing files; a crash
	// between the two leaves segments that Open must drop.
	root := t.TempDir()
	cfg := config(root)
	cfg.SegmentBytes = 1024
	l := open(t, cfg)
	appendN(t, l, 20, 2, 40)
	segs := l.Segments()
	crashed := snapshot(t, root)
	cp := "0\n1\nevents 3 " + strconv.FormatInt(segs[2].BaseOffset+1, 10) + "\n"
	if err := os.WriteFile(filepath.Join(partDir(crashed), "log-start-offset-checkpoint"), []byte(cp), 0o644); err != nil {
		t.Fatal(err)
	}
	c := cfg
	c.Dir = crashed
	l2 := open(t, c)
	if l2.StartOffset() != segs[2].BaseOffset+1 || l2.Segments()[0].BaseOffset != segs[2].BaseOffset {
		t.Fatalf("start %d, first segment %+v", l2.StartOffset(), l2.Segments()[0])
	}
	if n := len(files(t, crashed, ".log")); n != len(segs)-2 {
		t.Fatalf("%d segment files, want %d", n, len(segs)-2)
	}
	// A checkpoint that does not parse is an error, not a silent reset.
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partDir(crashed), "log-start-offset-checkpoint"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := file.New("").Open(ctx, tp, c)
	if !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("corrupt checkpoint: got %v", err)
	}
}

func TestDeleteRemovesDirectory(t *testing.T) {
	root := t.TempDir()
	b := file.New(root)
	defer b.Close()
	l, err := b.Open(ctx, tp, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 3, 1, 10)
	if err := b.Delete(ctx, tp); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestReadFileRegionIsPositional(t *testing.T) {
	root := t.TempDir()
	l := open(t, config(root))
	bs := appendN(t, l, 10, 2, 30)
	fr := l.(storage.FileReader)
	r1, err := fr.ReadFile(ctx, 4, 1, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := fr.ReadFile(ctx, 8, 1, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	defer r2.Close()
	// Two regions of the same file read independently of each other and of
	// the file's seek offset.
	if _, err := r1.File.Seek(3, 0); err != nil {
		t.Fatal(err)
	}
	var b1, b2 bytes.Buffer
	if _, err := r2.WriteTo(&b2); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.WriteTo(&b1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), bs[2]) || !bytes.Equal(b2.Bytes(), bs[4]) {
		t.Fatal("regions returned the wrong batches")
	}
}
