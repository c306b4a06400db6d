package ensemble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func mkLog(i uint64) *raft.Log {
	return &raft.Log{Index: i, Term: i/10 + 1, Type: raft.LogCommand, Data: []byte{byte(i), byte(i >> 8)},
		AppendedAt: time.Unix(1700000000, int64(i))}
}

func mkLogs(from, to uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, mkLog(i))
	}
	return out
}

func openTestLog(t *testing.T, dir string, segSize int64) *FileLog {
	t.Helper()
	l, err := openFileLog(dir, false, segSize)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkRange asserts the log holds exactly first..last with the contents
// mkLog gives them.
func checkRange(t *testing.T, l *FileLog, first, last uint64) {
	t.Helper()
	f, _ := l.FirstIndex()
	z, _ := l.LastIndex()
	if f != first || z != last {
		t.Fatalf("log holds %d..%d, want %d..%d", f, z, first, last)
	}
	var got raft.Log
	for i := first; i <= last && last != 0; i++ {
		if err := l.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		want := mkLog(i)
		if got.Index != i || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
			!got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", i, got, *want)
		}
	}
	for _, i := range []uint64{first - 1, last + 1} {
		if i == 0 {
			continue
		}
		if err := l.GetLog(i, &got); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) outside %d..%d = %v, want raft.ErrLogNotFound", i, first, last, err)
		}
	}
}

func TestFileLogAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, defaultSegmentSize)
	checkRange(t, l, 0, 0)
	if err := l.StoreLogs(mkLogs(1, 299)); err != nil {
		t.Fatal(err)
	}
	if err := l.StoreLog(mkLog(300)); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 1, 300)
	if err := l.StoreLog(mkLog(302)); !errors.Is(err, ErrLogGap) {
		t.Fatalf("StoreLog after a gap = %v, want ErrLogGap", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, defaultSegmentSize)
	defer l.Close()
	checkRange(t, l, 1, 300)
	if err := l.StoreLogs(mkLogs(301, 310)); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 1, 310)
}

func TestFileLogSegmentsCompactionAndTruncation(t *testing.T) {
	dir := t.TempDir()
	// Segments of about 30 entries.
	l := openTestLog(t, dir, 1000)
	for i := uint64(1); i <= 200; i += 20 {
		if err := l.StoreLogs(mkLogs(i, i+19)); err != nil {
			t.Fatal(err)
		}
	}
	checkRange(t, l, 1, 200)
	if len(l.segs) < 5 {
		t.Fatalf("200 entries in %d segments, want several", len(l.segs))
	}

	// Compaction drops whole segments only; what shares a segment with
	// kept entries stays readable.
	if err := l.DeleteRange(1, 100); err != nil {
		t.Fatal(err)
	}
	first, _ := l.FirstIndex()
	if first > 101 || first < 60 {
		t.Fatalf("after compacting 1..100 the first entry is %d, want a segment boundary in 60..101", first)
	}
	checkRange(t, l, first, 200)

	// A follower's conflicting suffix goes exactly, across segments.
	if err := l.DeleteRange(150, 200); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, first, 149)
	if err := l.StoreLogs(mkLogs(150, 160)); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, first, 160)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, 1000)
	checkRange(t, l, first, 160)

	// After a snapshot is installed raft removes everything and starts
	// again further on.
	if err := l.DeleteRange(first, 160); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 0, 0)
	if err := l.StoreLogs(mkLogs(500, 505)); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 500, 505)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, 1000)
	defer l.Close()
	checkRange(t, l, 500, 505)
	if err := l.DeleteRange(501, 502); err == nil {
		t.Fatal("deleting from the middle of the log succeeded")
	}
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no segment in %s (%v)", dir, err)
	}
	return m[len(m)-1]
}

func TestFileLogDropsTornTail(t *testing.T) {
	for name, damage := range map[string]func(b []byte) []byte{
		"cut record":      func(b []byte) []byte { return b[:len(b)-3] },
		"cut header":      func(b []byte) []byte { return append(b, 0, 0, 0) },
		"flipped byte":    func(b []byte) []byte { b[len(b)-2] ^= 0xff; return b },
		"zeroed tail":     func(b []byte) []byte { return append(b, make([]byte, 64)...) },
		"garbage length":  func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1) },
		"wrong index rec": func(b []byte) []byte { return append(b, record(mkLog(99))...) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTestLog(t, dir, defaultSegmentSize)
			if err := l.StoreLogs(mkLogs(1, 10)); err != nil {
				t.Fatal(err)
			}
			l.Close()
			path := lastSegment(t, dir)
			b, _ := os.ReadFile(path)
			good := 0
			for i := uint64(1); i <= 10; i++ {
				good += len(record(mkLog(i)))
			}
			// Past the records the file holds preallocated zeros.
			b = damage(b[:good])
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			l = openTestLog(t, dir, defaultSegmentSize)
			defer l.Close()
			last := uint64(10)
			if len(b) < good || name == "flipped byte" {
				last = 9 // the damaged record itself is lost
			}
			checkRange(t, l, 1, last)
			// The log continues cleanly after the cut.
			if err := l.StoreLogs(mkLogs(last+1, last+5)); err != nil {
				t.Fatal(err)
			}
			checkRange(t, l, 1, last+5)
		})
	}
}

func TestFileLogPreallocatesAndForgetsBytesPastTheEnd(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, defaultSegmentSize)
	if err := l.StoreLogs(mkLogs(1, 10)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	path := lastSegment(t, dir)
	b, _ := os.ReadFile(path)
	good := 0
	for i := uint64(1); i <= 10; i++ {
		good += len(record(mkLog(i)))
	}
	if len(b) <= good || !bytes.Equal(b[good:], make([]byte, len(b)-good)) {
		t.Fatalf("segment of %d bytes for %d bytes of records: want zeros preallocated after them", len(b), good)
	}
	// A crash in the middle of a batch can persist a later record of it
	// but not an earlier one. The later one must not come back.
	stale := append(append(b[:good:good], make([]byte, 16)...), record(mkLog(12))...)
	if err := os.WriteFile(path, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, defaultSegmentSize)
	checkRange(t, l, 1, 10)
	if fi, _ := os.Stat(path); fi.Size() != int64(good) {
		t.Fatalf("after open the segment is %d bytes, want it cut to the %d bytes of good records", fi.Size(), good)
	}
	next := &raft.Log{Index: 11, Term: 9, Type: raft.LogCommand, Data: make([]byte, len(mkLog(11).Data)+16-recordHeaderSize)}
	if err := l.StoreLog(next); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openTestLog(t, dir, defaultSegmentSize)
	defer l.Close()
	if last, _ := l.LastIndex(); last != 11 {
		t.Fatalf("after storing 11 and reopening the log ends at %d, want 11 (the stale 12 must stay gone)", last)
	}
}

func TestFileLogRejectsDamagedOlderSegment(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, 500)
	for i := uint64(1); i <= 60; i += 10 {
		if err := l.StoreLogs(mkLogs(i, i+9)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(m) < 2 {
		t.Fatalf("want several segments, got %d", len(m))
	}
	b, _ := os.ReadFile(m[0])
	b[recordHeaderSize+3] ^= 0xff
	if err := os.WriteFile(m[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	// A crash only tears the newest segment; damage before it is not
	// something to repair by cutting the log short.
	if _, err := openFileLog(dir, false, 500); !errors.Is(err, ErrCorruptSegment) {
		t.Fatalf("open with a damaged older segment = %v, want ErrCorruptSegment", err)
	}
}

func record(e *raft.Log) []byte {
	body := appendLog(nil, e)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	return append(b, body...)
}

// FuzzScanRecords feeds arbitrary segment contents to the reader that
// indexes a segment on open: no panic, offsets inside the data and
// increasing, and the good prefix re-reads to the same entries.
func FuzzScanRecords(f *testing.F) {
	var seg []byte
	for i := uint64(5); i < 8; i++ {
		seg = append(seg, record(mkLog(i))...)
	}
	f.Add(seg, uint64(5))
	f.Add(seg[:len(seg)-4], uint64(5))
	f.Add(append(append([]byte(nil), seg...), 0, 0, 0, 0, 0, 0, 0, 0), uint64(5))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 1}, uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, first uint64) {
		offs, end, err := scanRecords(data, first)
		if end < 0 || end > int64(len(data)) {
			t.Fatalf("end %d outside 0..%d", end, len(data))
		}
		if err == nil && end != int64(len(data)) && binary.BigEndian.Uint32(data[end:]) != 0 {
			t.Fatalf("clean scan ended at %d of %d without reaching zeros", end, len(data))
		}
		prev := int64(-1)
		for _, o := range offs {
			if o <= prev || o >= end {
				t.Fatalf("offsets %v not increasing inside 0..%d", offs, end)
			}
			prev = o
		}
		again, end2, err2 := scanRecords(data[:end], first)
		if err2 != nil || end2 != end || len(again) != len(offs) {
			t.Fatalf("the good prefix does not re-scan cleanly: %d records to %d (%v), first pass %d to %d",
				len(again), end2, err2, len(offs), end)
		}
	})
}

func TestDecodeLogRejectsDamage(t *testing.T) {
	good := appendLog(nil, mkLog(7))
	var l raft.Log
	if err := decodeLog(good, &l); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":          nil,
		"short header":   good[:10],
		"unknown format": append([]byte{9}, good[1:]...),
		"cut data":       good[:len(good)-5],
		"trailing bytes": append(append([]byte(nil), good...), 0),
	}
	for name, b := range cases {
		if err := decodeLog(b, &l); !errors.Is(err, ErrCorruptLog) {
			t.Errorf("%s: decodeLog error = %v, want ErrCorruptLog", name, err)
		}
	}
}

func FuzzDecodeLog(f *testing.F) {
	f.Add(appendLog(nil, mkLog(1)))
	f.Add(appendLog(nil, &raft.Log{Index: 9, Term: 2, Type: raft.LogConfiguration, Extensions: []byte("ext")}))
	f.Add(appendLog(nil, &raft.Log{}))
	f.Add([]byte{logFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			if !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("error %v is not ErrCorruptLog", err)
			}
			return
		}
		// Whatever decodes must encode back to the same bytes.
		if again := appendLog(nil, &l); !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the entry:\n in  %x\n out %x", b, again)
		}
	})
}
