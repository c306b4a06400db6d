package txnlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

func TestAppendSyncReopenReplay(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, testOptions(dir))
	if got := l.LastZxid(); got != 0 {
		t.Fatalf("empty log LastZxid = %d, want 0", got)
	}
	if recs := replayAll(t, l, 0); len(recs) != 0 {
		t.Fatalf("empty log replayed %d records", len(recs))
	}
	appendRange(t, l, 1, 100)
	mustClose(t, l)

	l = mustOpen(t, testOptions(dir))
	defer mustClose(t, l)
	if got := l.LastZxid(); got != 100 {
		t.Fatalf("LastZxid after reopen = %d, want 100", got)
	}
	if got := l.FirstZxid(); got != 1 {
		t.Fatalf("FirstZxid = %d, want 1", got)
	}
	st := l.Recovery()
	if st.Segments != 1 || st.Records != 100 || st.TruncatedBytes != 0 || len(st.RemovedFiles) != 0 {
		t.Fatalf("Recovery() = %+v, want 1 segment, 100 records, nothing cut", st)
	}
	checkRange(t, replayAll(t, l, 0), 1, 100)
	checkRange(t, replayAll(t, l, 60), 61, 100)
	checkRange(t, replayAll(t, l, 100), 101, 100)

	// Appending continues where the reopened log ended.
	appendRange(t, l, 101, 120)
	checkRange(t, replayAll(t, l, 95), 96, 120)
}

func TestZxidsNeedNotBeContiguous(t *testing.T) {
	l := mustOpen(t, testOptions(t.TempDir()))
	defer mustClose(t, l)
	zs := []int64{5, 6, 1 << 32, 1<<32 + 1, 3 << 32}
	for _, z := range zs {
		if err := l.Append(z, []byte{byte(z)}); err != nil {
			t.Fatalf("Append(%#x): %v", z, err)
		}
	}
	var got []int64
	if err := l.Replay(6, func(z int64, _ []byte) error { got = append(got, z); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := zs[2:]; !slices.Equal(got, want) {
		t.Fatalf("Replay(6) = %#x, want %#x", got, want)
	}
}

func TestAppendRejects(t *testing.T) {
	l := mustOpen(t, testOptions(t.TempDir()))
	wantErrIs(t, l.Append(0, nil), ErrZxidOrder)
	wantErrIs(t, l.Append(-3, nil), ErrZxidOrder)
	appendRange(t, l, 1, 10)
	wantErrIs(t, l.Append(10, nil), ErrZxidOrder)
	wantErrIs(t, l.Append(7, nil), ErrZxidOrder)
	wantErrIs(t, l.Append(11, make([]byte, MaxPayload+1)), ErrTooLarge)
	// Rejections leave the log usable and unchanged.
	if got := l.LastZxid(); got != 10 {
		t.Fatalf("LastZxid = %d, want 10", got)
	}
	appendRange(t, l, 11, 11)
	checkRange(t, replayAll(t, l, 0), 1, 11)

	mustClose(t, l)
	wantErrIs(t, l.Append(12, nil), ErrClosed)
	wantErrIs(t, l.Sync(), ErrClosed)
	wantErrIs(t, l.Replay(0, func(int64, []byte) error { return nil }), ErrClosed)
	wantErrIs(t, l.PurgeBefore(5), ErrClosed)
	wantErrIs(t, l.Close(), ErrClosed)
}

func TestMaxPayloadRoundTrips(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.NoSync = true
	l := mustOpen(t, opts)
	big := bytes.Repeat([]byte{0xab}, MaxPayload)
	if err := l.Append(1, big); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	l = mustOpen(t, opts)
	defer mustClose(t, l)
	n := 0
	err := l.Replay(0, func(z int64, p []byte) error {
		n++
		if !bytes.Equal(p, big) {
			t.Errorf("payload of %d bytes differs", len(p))
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("Replay: %d records, err %v", n, err)
	}
}

func TestReplaySeesUnsyncedAppends(t *testing.T) {
	l := mustOpen(t, testOptions(t.TempDir()))
	defer mustClose(t, l)
	for z := int64(1); z <= 5; z++ {
		if err := l.Append(z, payloadFor(z)); err != nil {
			t.Fatal(err)
		}
	}
	checkRange(t, replayAll(t, l, 0), 1, 5)
}

func TestReplayStopsOnCallbackError(t *testing.T) {
	l := mustOpen(t, testOptions(t.TempDir()))
	defer mustClose(t, l)
	appendRange(t, l, 1, 10)
	stop := errors.New("stop")
	n := 0
	err := l.Replay(0, func(z int64, _ []byte) error {
		n++
		if z == 4 {
			return stop
		}
		return nil
	})
	wantErrIs(t, err, stop)
	if n != 4 {
		t.Fatalf("callback ran %d times, want 4", n)
	}
}

func TestRollAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentBytes = 1024
	l := mustOpen(t, opts)
	appendRange(t, l, 1, 200)
	// A record bigger than a whole segment gets a segment of its own.
	huge := bytes.Repeat([]byte{7}, 3000)
	if err := l.Append(201, huge); err != nil {
		t.Fatal(err)
	}
	appendRange(t, l, 202, 210)
	mustClose(t, l)

	files := segmentFiles(t, dir)
	if len(files) < 10 {
		t.Fatalf("got %d segment files, want many: %v", len(files), files)
	}
	if files[0] != "log.0000000000000001" {
		t.Fatalf("first segment %q, want log.0000000000000001", files[0])
	}
	// Each file is named after a record's zxid and stays within the limit.
	l = mustOpen(t, opts)
	defer mustClose(t, l)
	got := replayAll(t, l, 0)
	zxids := map[string]bool{}
	for _, r := range got {
		zxids[segmentName(r.zxid)] = true
	}
	for _, f := range files {
		if !zxids[f] {
			t.Errorf("segment %s is not named after one of its records", f)
		}
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > opts.SegmentBytes && f != segmentName(201) {
			t.Errorf("%s is %d bytes, over the %d limit", f, fi.Size(), opts.SegmentBytes)
		}
	}
	if !slices.Contains(files, segmentName(201)) || !slices.Contains(files, segmentName(202)) {
		t.Fatalf("oversized record 201 should have a segment of its own: %v", files)
	}
	if len(got) != 210 || !bytes.Equal(got[200].payload, huge) {
		t.Fatalf("replayed %d records, want 210 with the oversized one at 201", len(got))
	}
	checkRange(t, got[:200], 1, 200)
	checkRange(t, got[201:], 202, 210)
	// Replay from the middle skips whole segments and still starts exactly.
	from150 := replayAll(t, l, 150)
	if len(from150) != 60 {
		t.Fatalf("Replay(150) gave %d records, want 60", len(from150))
	}
	checkRange(t, from150[:50], 151, 200)
}

func TestPurgeBefore(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentBytes = 512
	l := mustOpen(t, opts)
	appendRange(t, l, 1, 100)
	before := segmentFiles(t, dir)
	if len(before) < 5 {
		t.Fatalf("want several segments, got %v", before)
	}
	// Find the base of the third segment: purging below it deletes exactly
	// the first two.
	var bases []int64
	for _, r := range replayAll(t, l, 0) {
		if slices.Contains(before, segmentName(r.zxid)) {
			bases = append(bases, r.zxid)
		}
	}
	if err := l.PurgeBefore(bases[2]); err != nil {
		t.Fatal(err)
	}
	if got, want := segmentFiles(t, dir), before[2:]; !slices.Equal(got, want) {
		t.Fatalf("after PurgeBefore(%d): %v, want %v", bases[2], got, want)
	}
	if got := l.FirstZxid(); got != bases[2] {
		t.Fatalf("FirstZxid = %d, want %d", got, bases[2])
	}
	// One below a segment's base does not delete the segment before it:
	// that segment still holds the record base-1.
	if err := l.PurgeBefore(bases[3] - 1); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != len(before)-2 {
		t.Fatalf("PurgeBefore(%d) deleted a segment holding it: %v", bases[3]-1, got)
	}
	checkRange(t, replayAll(t, l, bases[3]-2), bases[3]-1, 100)

	// The active segment survives any purge.
	if err := l.PurgeBefore(1 << 40); err != nil {
		t.Fatal(err)
	}
	files := segmentFiles(t, dir)
	if len(files) != 1 || files[0] != before[len(before)-1] {
		t.Fatalf("after purging everything: %v, want only the active %s", files, before[len(before)-1])
	}
	appendRange(t, l, 101, 105)
	mustClose(t, l)

	l = mustOpen(t, opts)
	defer mustClose(t, l)
	last := bases[len(bases)-1]
	checkRange(t, replayAll(t, l, 0), last, 105)
	if l.LastZxid() != 105 {
		t.Fatalf("LastZxid = %d, want 105", l.LastZxid())
	}
}

func TestPreallocatedReopen(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.Preallocate = true
	opts.SegmentBytes = 8 << 10
	l := mustOpen(t, opts)
	appendRange(t, l, 1, 50)
	mustClose(t, l)
	for _, f := range segmentFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != opts.SegmentBytes {
			t.Fatalf("%s is %d bytes, want the preallocated %d", f, fi.Size(), opts.SegmentBytes)
		}
	}
	for round := int64(0); round < 3; round++ {
		l = mustOpen(t, opts)
		if st := l.Recovery(); st.TruncatedBytes != 0 || len(st.RemovedFiles) != 0 {
			t.Fatalf("clean preallocated log reported repairs: %+v", st)
		}
		if got, want := l.LastZxid(), 50+round*40; got != want {
			t.Fatalf("LastZxid = %d, want %d", got, want)
		}
		appendRange(t, l, 51+round*40, 90+round*40)
		checkRange(t, replayAll(t, l, 0), 1, 90+round*40)
		mustClose(t, l)
	}
	if len(segmentFiles(t, dir)) < 2 {
		t.Fatal("want the preallocated log to have rolled")
	}
}

// TestStaleTailIsErased builds the crash that reordered page writes leave
// behind: a hole of zeros, then an unacknowledged record. If recovery left
// it there, a new record of the same size would line it up again and it
// would come back on the next open as if it had been written later.
func TestStaleTailIsErased(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.Preallocate = true
	opts.SegmentBytes = 8 << 10
	l := mustOpen(t, opts)
	appendRange(t, l, 1, 10)
	mustClose(t, l)

	path := filepath.Join(dir, segmentName(1))
	data := readFile(t, path)
	end := int64(segmentHeaderLen)
	for z := int64(1); z <= 10; z++ {
		end += encodedLen(z)
	}
	replacement := bytes.Repeat([]byte{'n'}, len(payloadFor(11)))
	stale := appendRecord(nil, 12, payloadFor(12))
	copy(data[end+frameHeaderLen+int64(len(replacement)):], stale)
	writeFile(t, path, data)

	l = mustOpen(t, opts)
	if st := l.Recovery(); st.TruncatedBytes != lastNonZeroLen(data[end:]) || l.LastZxid() != 10 {
		t.Fatalf("recovery = %+v, LastZxid %d; want the stale record cut and LastZxid 10", st, l.LastZxid())
	}
	if err := l.Append(11, replacement); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)

	l = mustOpen(t, opts)
	defer mustClose(t, l)
	got := replayAll(t, l, 0)
	if l.LastZxid() != 11 || len(got) != 11 || !bytes.Equal(got[10].payload, replacement) {
		t.Fatalf("after reopen LastZxid = %d with %d records; the stale record 12 came back?", l.LastZxid(), len(got))
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, testOptions(dir))
	_, err := Open(testOptions(dir))
	wantErrIs(t, err, ErrLocked)
	mustClose(t, l)
	l = mustOpen(t, testOptions(dir))
	mustClose(t, l)
}

func TestFailedSyncIsSticky(t *testing.T) {
	l := mustOpen(t, testOptions(t.TempDir()))
	appendRange(t, l, 1, 3)
	if err := l.Append(4, payloadFor(4)); err != nil {
		t.Fatal(err)
	}
	// Close the segment under the log, as an I/O error would break it.
	l.f.Close()
	if err := l.Sync(); err == nil {
		t.Fatal("Sync on a broken file succeeded")
	}
	if err := l.Append(5, payloadFor(5)); err == nil {
		t.Fatal("Append after a failed Sync succeeded")
	}
	if err := l.Sync(); err == nil {
		t.Fatal("a second Sync after a failure succeeded")
	}
	l.Close()
}

func TestIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"log.txt", "log.ABCDEF0123456789", "log.1", "notes", "snapshot.zz"} {
		writeFile(t, filepath.Join(dir, n), []byte("not ours"))
	}
	l := mustOpen(t, testOptions(dir))
	defer mustClose(t, l)
	appendRange(t, l, 1, 3)
	checkRange(t, replayAll(t, l, 0), 1, 3)
}

func TestConcurrentAppendAndReplay(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.SegmentBytes = 2048
	opts.NoSync = true
	l := mustOpen(t, opts)
	defer mustClose(t, l)
	appendRange(t, l, 1, 50)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for z := int64(51); z <= 400; z++ {
			if err := l.Append(z, payloadFor(z)); err != nil {
				t.Errorf("Append(%d): %v", z, err)
				return
			}
			if z%10 == 0 {
				if err := l.Sync(); err != nil {
					t.Errorf("Sync: %v", err)
					return
				}
			}
		}
	}()
	for i := 0; i < 20; i++ {
		prev := int64(0)
		err := l.Replay(0, func(z int64, p []byte) error {
			if z != prev+1 || !bytes.Equal(p, payloadFor(z)) {
				t.Errorf("replay saw %d after %d", z, prev)
			}
			prev = z
			_ = l.LastZxid() // the callback may call back into the log
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if prev < 50 {
			t.Fatalf("replay ended at %d, before the synced 50", prev)
		}
	}
	wg.Wait()
	checkRange(t, replayAll(t, l, 0), 1, 400)
}
