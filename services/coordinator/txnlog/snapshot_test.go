package txnlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func snapBody(zxid int64) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("state at %d;", zxid)), 1000)
}

func writeSnap(t *testing.T, l *Log, zxid int64) {
	t.Helper()
	err := l.WriteSnapshot(zxid, func(w io.Writer) error {
		// Several writes, as a serializer would make.
		b := snapBody(zxid)
		for len(b) > 0 {
			n := min(len(b), 777)
			if _, err := w.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("WriteSnapshot(%d): %v", zxid, err)
	}
}

func latest(t *testing.T, l *Log) (int64, []byte) {
	t.Helper()
	z, r, err := l.OpenLatestSnapshot()
	if err != nil {
		t.Fatalf("OpenLatestSnapshot: %v", err)
	}
	if r == nil {
		return z, nil
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return z, b
}

func snapshotFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "snapshot.*"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func TestSnapshotNone(t *testing.T) {
	l := mustOpen(t, testOptions(t.TempDir()))
	defer mustClose(t, l)
	z, r, err := l.OpenLatestSnapshot()
	if z != 0 || r != nil || err != nil {
		t.Fatalf("OpenLatestSnapshot on an empty dir = %d, %v, %v; want 0, nil, nil", z, r, err)
	}
}

func TestSnapshotRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, testOptions(dir))
	writeSnap(t, l, 0x100000005)
	writeSnap(t, l, 0x100000009)
	z, b := latest(t, l)
	if z != 0x100000009 || !bytes.Equal(b, snapBody(z)) {
		t.Fatalf("latest = %#x (%d bytes), want %#x", z, len(b), 0x100000009)
	}
	mustClose(t, l)
	wantErrIs(t, func() error { _, _, err := l.OpenLatestSnapshot(); return err }(), ErrClosed)

	l = mustOpen(t, testOptions(dir))
	defer mustClose(t, l)
	if z, b := latest(t, l); z != 0x100000009 || !bytes.Equal(b, snapBody(z)) {
		t.Fatalf("after reopen latest = %#x", z)
	}
	if got := snapshotFiles(t, dir); !slices.Equal(got, []string{"snapshot.0000000100000005", "snapshot.0000000100000009"}) {
		t.Fatalf("snapshot files %v", got)
	}
}

func TestSnapshotEmptyBodyAndZeroZxid(t *testing.T) {
	l := mustOpen(t, testOptions(t.TempDir()))
	defer mustClose(t, l)
	if err := l.WriteSnapshot(0, func(io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	z, r, err := l.OpenLatestSnapshot()
	if err != nil || r == nil || z != 0 {
		t.Fatalf("got %d, %v, %v; want zxid 0 with a reader", z, r, err)
	}
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Fatalf("empty snapshot read back %d bytes", len(b))
	}
	if err := l.WriteSnapshot(-1, func(io.Writer) error { return nil }); err == nil {
		t.Fatal("negative zxid accepted")
	}
}

func TestSnapshotFallsBackPastDamage(t *testing.T) {
	damages := map[string]func([]byte) []byte{
		"flipped body byte": func(b []byte) []byte { b[100] ^= 1; return b },
		"flipped crc":       func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"truncated":         func(b []byte) []byte { return b[:len(b)-1] },
		"torn to nothing":   func(b []byte) []byte { return nil },
		"wrong zxid":        func(b []byte) []byte { b[15]++; return b },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, testOptions(dir))
			defer mustClose(t, l)
			writeSnap(t, l, 10)
			writeSnap(t, l, 20)
			writeSnap(t, l, 30)
			for _, z := range []int64{30, 20} {
				path := filepath.Join(dir, snapshotName(z))
				writeFile(t, path, damage(readFile(t, path)))
			}
			if z, b := latest(t, l); z != 10 || !bytes.Equal(b, snapBody(10)) {
				t.Fatalf("latest = %d, want the undamaged 10", z)
			}
			// Damaged snapshots do not count as kept: the only good one stays.
			if err := l.PurgeSnapshots(1); err != nil {
				t.Fatal(err)
			}
			if z, _ := latest(t, l); z != 10 {
				t.Fatalf("after PurgeSnapshots(1) latest = %d, want 10", z)
			}
			// With every snapshot damaged there is no safe default.
			path := filepath.Join(dir, snapshotName(10))
			writeFile(t, path, damage(readFile(t, path)))
			_, r, err := l.OpenLatestSnapshot()
			wantErrIs(t, err, ErrCorrupt)
			if r != nil {
				t.Fatal("got a reader with the error")
			}
		})
	}
}

func TestSnapshotCallbackErrorLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, testOptions(dir))
	defer mustClose(t, l)
	boom := errors.New("serializer failed")
	err := l.WriteSnapshot(5, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	wantErrIs(t, err, boom)
	if files := snapshotFiles(t, dir); len(files) != 0 {
		t.Fatalf("a failed snapshot left %v", files)
	}
	if z, r, err := l.OpenLatestSnapshot(); z != 0 || r != nil || err != nil {
		t.Fatalf("got %d, %v, %v after a failed write", z, r, err)
	}
}

func TestSnapshotTempFilesIgnoredAndCleaned(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, testOptions(dir))
	writeSnap(t, l, 7)
	mustClose(t, l)
	// A crash mid-write leaves a temp file, possibly for a newer zxid.
	stale := filepath.Join(dir, snapshotName(9)+".12345"+snapshotTempSuffix)
	writeFile(t, stale, []byte("half a snapshot"))

	l = mustOpen(t, testOptions(dir))
	defer mustClose(t, l)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open left the stale temp file: %v", err)
	}
	if z, _ := latest(t, l); z != 7 {
		t.Fatalf("latest = %d, want 7", z)
	}
}

func TestPurgeSnapshots(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, testOptions(dir))
	defer mustClose(t, l)
	for z := int64(1); z <= 5; z++ {
		writeSnap(t, l, z*10)
	}
	if err := l.PurgeSnapshots(0); err == nil {
		t.Fatal("PurgeSnapshots(0) accepted")
	}
	if err := l.PurgeSnapshots(2); err != nil {
		t.Fatal(err)
	}
	if got := snapshotFiles(t, dir); !slices.Equal(got, []string{snapshotName(40), snapshotName(50)}) {
		t.Fatalf("after PurgeSnapshots(2): %v", got)
	}
	if err := l.PurgeSnapshots(5); err != nil {
		t.Fatal(err)
	}
	if got := snapshotFiles(t, dir); len(got) != 2 {
		t.Fatalf("PurgeSnapshots(5) with 2 snapshots left %v", got)
	}
	// Segments in the same directory are untouched by snapshot purges.
	appendRange(t, l, 1, 3)
	if err := l.PurgeSnapshots(1); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != 1 {
		t.Fatalf("segments after PurgeSnapshots: %v", got)
	}
	if z, _ := latest(t, l); z != 50 {
		t.Fatalf("latest = %d, want 50", z)
	}
}

// TestParseSnapshotRoundTrip pins the documented file layout.
func TestParseSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, testOptions(dir))
	defer mustClose(t, l)
	if err := l.WriteSnapshot(3, func(w io.Writer) error { _, err := w.Write([]byte("abc")); return err }); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, filepath.Join(dir, snapshotName(3)))
	want := []byte("RNSN\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03abc\x00\x00\x00\x00\x00\x00\x00\x03")
	if !bytes.HasPrefix(data, want) || len(data) != len(want)+4 {
		t.Fatalf("snapshot bytes %q, want %q and a 4-byte CRC", data, want)
	}
	body, err := parseSnapshot(data, 3)
	if err != nil || string(body) != "abc" {
		t.Fatalf("parseSnapshot = %q, %v", body, err)
	}
	if err := verifySnapshotFile(filepath.Join(dir, snapshotName(3)), 3); err != nil {
		t.Fatal(err)
	}
}
