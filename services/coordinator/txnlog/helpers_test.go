package txnlog

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// quiet discards recovery warnings, which several tests provoke on purpose.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions are small, synced segments without preallocation.
func testOptions(dir string) Options {
	return Options{Dir: dir, SegmentBytes: 1 << 20, Logger: quiet}
}

// payloadFor is a deterministic payload of varying length with no zero
// bytes, so that a torn record never ends in what looks like zero fill.
func payloadFor(zxid int64) []byte {
	p := make([]byte, 20+int(zxid%37))
	for i := range p {
		p[i] = byte(1 + (int(zxid)*31+i)%255)
	}
	return p
}

type rec struct {
	zxid    int64
	payload []byte
}

func mustOpen(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// appendRange appends from..to (inclusive) with payloadFor and syncs.
func appendRange(t testing.TB, l *Log, from, to int64) {
	t.Helper()
	for z := from; z <= to; z++ {
		if err := l.Append(z, payloadFor(z)); err != nil {
			t.Fatalf("Append(%d): %v", z, err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func replayAll(t testing.TB, l *Log, after int64) []rec {
	t.Helper()
	var out []rec
	err := l.Replay(after, func(z int64, p []byte) error {
		out = append(out, rec{z, bytes.Clone(p)})
		return nil
	})
	if err != nil {
		t.Fatalf("Replay(%d): %v", after, err)
	}
	return out
}

// checkRange asserts that recs are exactly from..to with payloadFor.
func checkRange(t testing.TB, recs []rec, from, to int64) {
	t.Helper()
	if want := int(to - from + 1); len(recs) != max(want, 0) {
		t.Fatalf("got %d records, want %d (%d..%d)", len(recs), want, from, to)
	}
	for i, r := range recs {
		z := from + int64(i)
		if r.zxid != z {
			t.Fatalf("record %d has zxid %d, want %d", i, r.zxid, z)
		}
		if !bytes.Equal(r.payload, payloadFor(z)) {
			t.Fatalf("record %d payload differs", z)
		}
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "log.*"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one wrapping %v", err, target)
	}
}

// encodedLen is the framed size of record zxid.
func encodedLen(zxid int64) int64 { return frameHeaderLen + int64(len(payloadFor(zxid))) }

// lastNonZeroLen is one past the last non-zero byte of b.
func lastNonZeroLen(b []byte) int64 {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return int64(i + 1)
		}
	}
	return 0
}
