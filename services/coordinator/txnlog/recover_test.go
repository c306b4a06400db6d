package txnlog

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// oneSegment writes records 1..n into a single segment and returns its
// bytes and the offsets where the last record starts and ends.
func oneSegment(t *testing.T, opts Options, n int64) (data []byte, start, end int64) {
	t.Helper()
	opts.Dir = t.TempDir()
	l := mustOpen(t, opts)
	appendRange(t, l, 1, n)
	mustClose(t, l)
	if files := segmentFiles(t, opts.Dir); len(files) != 1 {
		t.Fatalf("want one segment, got %v", files)
	}
	data = readFile(t, filepath.Join(opts.Dir, segmentName(1)))
	start = segmentHeaderLen
	for z := int64(1); z < n; z++ {
		start += encodedLen(z)
	}
	return data, start, start + encodedLen(n)
}

// TestTornTail cuts the last record at every byte offset, both as a short
// file and as a preallocated file whose tail never got written, and checks
// that recovery keeps exactly the complete records and can go on appending.
func TestTornTail(t *testing.T) {
	variants := []struct {
		name       string
		prealloced bool
	}{{"truncated", false}, {"zero-filled", true}}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			opts := testOptions("")
			opts.NoSync = true // recovery logic only; the crash test covers syncing
			if v.prealloced {
				opts.Preallocate, opts.SegmentBytes = true, 4096
			}
			const n = 5
			data, start, end := oneSegment(t, opts, n)
			for cut := start; cut < end; cut++ {
				opts.Dir = t.TempDir()
				path := filepath.Join(opts.Dir, segmentName(1))
				torn := bytes.Clone(data[:cut])
				if v.prealloced {
					torn = append(torn, make([]byte, len(data)-int(cut))...)
				}
				writeFile(t, path, torn)

				l := mustOpen(t, opts)
				if got := l.LastZxid(); got != n-1 {
					t.Fatalf("cut at %d: LastZxid = %d, want %d", cut, got, n-1)
				}
				checkRange(t, replayAll(t, l, 0), 1, n-1)
				st := l.Recovery()
				wantCut := lastNonZeroLen(data[start:cut])
				if st.TruncatedBytes != wantCut {
					t.Fatalf("cut at %d: TruncatedBytes = %d, want %d", cut, st.TruncatedBytes, wantCut)
				}
				if wantCut > 0 && !slices.Equal(st.TruncatedFiles, []string{segmentName(1)}) {
					t.Fatalf("cut at %d: TruncatedFiles = %v", cut, st.TruncatedFiles)
				}
				after := readFile(t, path)
				if !bytes.Equal(after[:start], data[:start]) || lastNonZeroLen(after[start:]) != 0 {
					t.Fatalf("cut at %d: the file after recovery is not the complete records plus zeros", cut)
				}
				if v.prealloced && int64(len(after)) != opts.SegmentBytes {
					t.Fatalf("cut at %d: file is %d bytes, want it preallocated again", cut, len(after))
				}
				appendRange(t, l, n, n)
				mustClose(t, l)

				l = mustOpen(t, opts)
				checkRange(t, replayAll(t, l, 0), 1, n)
				if st := l.Recovery(); st.TruncatedBytes != 0 {
					t.Fatalf("cut at %d: second recovery cut %d bytes", cut, st.TruncatedBytes)
				}
				mustClose(t, l)
			}
		})
	}
}

func TestFlippedByteInLastRecord(t *testing.T) {
	opts := testOptions("")
	opts.NoSync = true
	opts.Preallocate, opts.SegmentBytes = true, 4096
	const n = 5
	data, start, end := oneSegment(t, opts, n)
	for i := start; i < end; i++ {
		opts.Dir = t.TempDir()
		bad := bytes.Clone(data)
		bad[i] ^= 0xff
		writeFile(t, filepath.Join(opts.Dir, segmentName(1)), bad)
		l := mustOpen(t, opts)
		if got := l.LastZxid(); got != n-1 {
			t.Fatalf("flip at %d: LastZxid = %d, want %d", i, got, n-1)
		}
		checkRange(t, replayAll(t, l, 0), 1, n-1)
		if st := l.Recovery(); st.TruncatedBytes == 0 {
			t.Fatalf("flip at %d: recovery reported nothing cut", i)
		}
		mustClose(t, l)
	}
}

// TestBadLengthIsCorruption checks the sanity bound: a length over
// MaxPayload is not trusted even though the file might be long enough.
func TestBadLengthIsCorruption(t *testing.T) {
	opts := testOptions("")
	data, start, _ := oneSegment(t, opts, 3)
	opts.Dir = t.TempDir()
	bad := bytes.Clone(data)
	bad[start] = 0x7f // length becomes about 2 GiB
	writeFile(t, filepath.Join(opts.Dir, segmentName(1)), bad)
	l := mustOpen(t, opts)
	defer mustClose(t, l)
	if l.LastZxid() != 2 {
		t.Fatalf("LastZxid = %d, want 2", l.LastZxid())
	}
}

// multiSegment writes 1..60 into 512-byte segments and returns the
// directory and its segment files.
func multiSegment(t *testing.T) (Options, []string) {
	t.Helper()
	opts := testOptions(t.TempDir())
	opts.SegmentBytes = 512
	l := mustOpen(t, opts)
	appendRange(t, l, 1, 60)
	mustClose(t, l)
	files := segmentFiles(t, opts.Dir)
	if len(files) < 3 {
		t.Fatalf("want at least 3 segments, got %v", files)
	}
	return opts, files
}

func TestCorruptionInEarlierSegmentFails(t *testing.T) {
	damages := []struct {
		name string
		fn   func([]byte) []byte
	}{
		{"flipped payload byte", func(b []byte) []byte { b[segmentHeaderLen+frameHeaderLen+3] ^= 1; return b }},
		{"flipped crc", func(b []byte) []byte { b[segmentHeaderLen+5] ^= 0x40; return b }},
		{"truncated mid-record", func(b []byte) []byte { return b[:len(b)-5] }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"header only", func(b []byte) []byte { return b[:segmentHeaderLen] }},
		{"empty file", func(b []byte) []byte { return nil }},
	}
	for _, d := range damages {
		for _, which := range []int{0, 1} { // first and a middle segment
			t.Run(d.name, func(t *testing.T) {
				opts, files := multiSegment(t)
				path := filepath.Join(opts.Dir, files[which])
				orig := readFile(t, path)
				writeFile(t, path, d.fn(bytes.Clone(orig)))
				_, err := Open(opts)
				wantErrIs(t, err, ErrCorrupt)
				if !strings.Contains(err.Error(), files[which]) {
					t.Fatalf("error %q does not name %s", err, files[which])
				}
				// The failed Open released the lock and changed nothing.
				if got := segmentFiles(t, opts.Dir); !slices.Equal(got, files) {
					t.Fatalf("failed Open changed the files: %v", got)
				}
				writeFile(t, path, orig)
				l := mustOpen(t, opts)
				checkRange(t, replayAll(t, l, 0), 1, 60)
				mustClose(t, l)
			})
		}
	}
}

func TestOutOfOrderSegmentsFail(t *testing.T) {
	opts, files := multiSegment(t)
	// Swap the contents of the first two segments, keeping the names: their
	// headers no longer match the file names.
	a, b := filepath.Join(opts.Dir, files[0]), filepath.Join(opts.Dir, files[1])
	da, db := readFile(t, a), readFile(t, b)
	writeFile(t, a, db)
	writeFile(t, b, da)
	_, err := Open(opts)
	wantErrIs(t, err, ErrCorrupt)
}

// TestIncompleteNewSegment covers crashes just after a roll: the new last
// segment has no complete record, so it is removed and the previous one
// becomes active again.
func TestIncompleteNewSegment(t *testing.T) {
	cases := []struct {
		name    string
		content func(base int64) []byte
		removed bool // removed without anything counted as cut
	}{
		{"header only", func(base int64) []byte { return appendSegmentHeader(nil, base) }, true},
		{"preallocated zeros", func(int64) []byte { return make([]byte, 512) }, true},
		{"half header", func(base int64) []byte { return appendSegmentHeader(nil, base)[:7] }, false},
		{"torn first record", func(base int64) []byte {
			b := appendRecord(appendSegmentHeader(nil, base), base, payloadFor(base))
			return b[:len(b)-3]
		}, false},
		{"header of another segment", func(base int64) []byte { return appendSegmentHeader(nil, base+1) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts, files := multiSegment(t)
			lastFile := files[len(files)-1]
			base, _ := parseName(lastFile, "log.")
			content := c.content(base)
			writeFile(t, filepath.Join(opts.Dir, lastFile), content)

			l := mustOpen(t, opts)
			st := l.Recovery()
			if !slices.Equal(st.RemovedFiles, []string{lastFile}) {
				t.Fatalf("RemovedFiles = %v, want [%s]", st.RemovedFiles, lastFile)
			}
			from := 0
			if c.removed || strings.HasPrefix(c.name, "torn") {
				from = segmentHeaderLen
			}
			if c.removed {
				if st.TruncatedBytes != 0 {
					t.Fatalf("TruncatedBytes = %d, want 0", st.TruncatedBytes)
				}
			} else if want := lastNonZeroLen(content[min(from, len(content)):]); st.TruncatedBytes != want {
				t.Fatalf("TruncatedBytes = %d, want %d", st.TruncatedBytes, want)
			}
			if l.LastZxid() != base-1 {
				t.Fatalf("LastZxid = %d, want %d", l.LastZxid(), base-1)
			}
			// The next zxid need not be the removed segment's name.
			appendRange(t, l, base+10, base+40)
			mustClose(t, l)

			l = mustOpen(t, opts)
			defer mustClose(t, l)
			got := replayAll(t, l, 0)
			checkRange(t, got[:base-1], 1, base-1)
			checkRange(t, got[base-1:], base+10, base+40)
		})
	}
}

func TestOnlySegmentIncomplete(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, segmentName(7)), appendSegmentHeader(nil, 7))
	l := mustOpen(t, testOptions(dir))
	defer mustClose(t, l)
	if l.LastZxid() != 0 || l.FirstZxid() != 0 || len(segmentFiles(t, dir)) != 0 {
		t.Fatalf("want an empty log, got LastZxid %d, files %v", l.LastZxid(), segmentFiles(t, dir))
	}
	appendRange(t, l, 3, 5)
	checkRange(t, replayAll(t, l, 0), 3, 5)
	if _, err := os.Stat(filepath.Join(dir, segmentName(3))); err != nil {
		t.Fatalf("new segment not named after its first zxid: %v", err)
	}
}
