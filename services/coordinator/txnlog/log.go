package txnlog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// DefaultSegmentBytes is the segment size used when Options.SegmentBytes is
// not positive.
const DefaultSegmentBytes = 64 << 20

// flushBytes is how much Append buffers before handing the bytes to the
// kernel: large enough that a group commit is one write, small enough that a
// long run of Appends without Sync does not hold much memory.
const flushBytes = 1 << 20

var (
	// ErrCorrupt is wrapped by errors about damaged data that recovery may not
	// repair: a bad record or header in a segment other than the last, or any
	// bad record that Replay meets. Snapshot errors wrap it too.
	ErrCorrupt = errors.New("txnlog: corrupt data")
	// ErrZxidOrder is returned by Append for a zxid that is not positive or not
	// greater than LastZxid.
	ErrZxidOrder = errors.New("txnlog: zxid out of order")
	// ErrTooLarge is returned by Append for a payload over MaxPayload.
	ErrTooLarge = errors.New("txnlog: payload too large")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("txnlog: log closed")
	// ErrLocked is returned by Open when another process holds the directory.
	ErrLocked = errors.New("txnlog: directory locked by another process")
)

// Options configures a Log. Start from DefaultOptions.
type Options struct {
	// Dir holds the segments, the snapshots and a LOCK file. Open creates it.
	Dir string
	// SegmentBytes is the size past which Append starts a new segment file;
	// DefaultSegmentBytes when not positive. A record larger than a segment
	// gets a segment of its own.
	SegmentBytes int64
	// Preallocate reserves SegmentBytes of zeros for each segment up front, so
	// appends do not grow the file and fdatasync need not update its size.
	Preallocate bool
	// NoSync skips every fdatasync and fsync. Only for tests and benchmarks:
	// nothing is durable.
	NoSync bool
	// Logger receives recovery warnings; slog.Default() when nil.
	Logger *slog.Logger
}

// DefaultOptions returns the production settings for a log in dir.
func DefaultOptions(dir string) Options {
	return Options{Dir: dir, SegmentBytes: DefaultSegmentBytes, Preallocate: true}
}

// RecoveryStats says what Open found and what it repaired.
type RecoveryStats struct {
	// Segments is the number of segment files kept.
	Segments int
	// Records is the number of complete records found.
	Records int64
	// TruncatedBytes counts the bytes after the last complete record, up to
	// the last non-zero byte, that Open discarded from the tail of the log:
	// the remains of a torn or corrupt write. Zero fill is not counted.
	TruncatedBytes int64
	// TruncatedFiles names the segment files Open cut or removed because of
	// such bytes, oldest first.
	TruncatedFiles []string
	// RemovedFiles names the segment files Open deleted because they held no
	// complete record.
	RemovedFiles []string
}

// segment is one log file. For sealed segments end is the end of the data;
// the active segment's end is Log.off plus the buffer.
type segment struct {
	base int64 // zxid of the first record, and the file name
	last int64 // zxid of the last record, 0 while there is none
	end  int64
}

// Log is an append-only transaction log of segment files plus snapshots.
// See the package documentation for the durability contract.
type Log struct {
	opts   Options
	logger *slog.Logger
	lock   *os.File
	closed atomic.Bool

	mu       sync.Mutex
	segs     []segment // by base; the last is the active one when f != nil
	f        *os.File  // active segment
	off      int64     // bytes of the active segment handed to the kernel
	buf      []byte    // appended bytes not yet written
	dirty    bool      // written since the last fdatasync
	lastZxid int64
	err      error // sticky write or sync failure
	recovery RecoveryStats

	// snapMu serializes the snapshot methods. Lock order: snapMu before mu
	// (only Close takes both).
	snapMu sync.Mutex
}

// Open opens or creates the log in opts.Dir and recovers it: it checks every
// record, cuts a torn or corrupt tail off the last segment, and fails with an
// error wrapping ErrCorrupt if an earlier segment is damaged.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("txnlog: Options.Dir is empty")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	l := &Log{opts: opts, logger: opts.Logger}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("txnlog: create dir: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	l.lock = lock
	if err := l.recover(); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		lock.Close()
		return nil, err
	}
	if err := removeSnapshotTemps(opts.Dir); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		lock.Close()
		return nil, err
	}
	return l, nil
}

// Recovery reports what Open found and repaired.
func (l *Log) Recovery() RecoveryStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recovery
	r.TruncatedFiles = append([]string(nil), r.TruncatedFiles...)
	r.RemovedFiles = append([]string(nil), r.RemovedFiles...)
	return r
}

// Append adds a record to the log's buffer. It is durable only after a later
// Sync returns nil. zxid must be positive and greater than LastZxid; the
// payload is copied.
func (l *Log) Append(zxid int64, payload []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	if zxid <= 0 || zxid <= l.lastZxid {
		return fmt.Errorf("%w: %#x after %#x", ErrZxidOrder, zxid, l.lastZxid)
	}
	if len(payload) > MaxPayload {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(payload), MaxPayload)
	}
	size := int64(frameHeaderLen + len(payload))
	if l.f == nil {
		if err := l.startSegment(zxid); err != nil {
			return l.fail(err)
		}
	} else if l.segs[len(l.segs)-1].last != 0 && l.off+int64(len(l.buf))+size > l.opts.SegmentBytes {
		if err := l.roll(zxid); err != nil {
			return l.fail(err)
		}
	}
	l.buf = appendRecord(l.buf, zxid, payload)
	l.lastZxid = zxid
	l.segs[len(l.segs)-1].last = zxid
	if len(l.buf) >= flushBytes {
		if err := l.flush(); err != nil {
			return l.fail(err)
		}
	}
	return nil
}

// Sync makes every record appended so far durable: it writes the buffer and
// fdatasyncs the active segment. After a failure the Log accepts no more
// writes (see the package documentation).
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	return l.syncLocked()
}

func (l *Log) syncLocked() error {
	if err := l.flush(); err != nil {
		return l.fail(err)
	}
	if l.dirty && !l.opts.NoSync {
		if err := fdatasync(l.f); err != nil {
			return l.fail(err)
		}
	}
	l.dirty = false
	return nil
}

// LastZxid returns the zxid of the last appended record, or 0 for an empty
// log.
func (l *Log) LastZxid() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastZxid
}

// FirstZxid returns the zxid of the oldest record still in the log, or 0 for
// an empty log. A caller restoring from a snapshot at zxid s can check that
// FirstZxid is at most s+1 before trusting Replay to fill the gap.
func (l *Log) FirstZxid() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.segs) == 0 {
		return 0
	}
	return l.segs[0].base
}

// Replay calls fn, in zxid order, for every record with a zxid greater than
// afterZxid, including appended records not yet synced. The payload is only
// valid during the call. An error from fn stops the replay and is returned
// wrapped; a damaged record gives an error wrapping ErrCorrupt.
func (l *Log) Replay(afterZxid int64, fn func(zxid int64, payload []byte) error) error {
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.err == nil {
		if err := l.flush(); err != nil {
			l.mu.Unlock()
			return l.fail(err)
		}
	}
	segs := append([]segment(nil), l.segs...)
	if l.f != nil {
		segs[len(segs)-1].end = l.off
	}
	l.mu.Unlock()

	prev := int64(0)
	for i, s := range segs {
		// Every record of segment i is below the next segment's base.
		if (i+1 < len(segs) && segs[i+1].base-1 <= afterZxid) || (s.last != 0 && s.last <= afterZxid) {
			prev = s.last
			continue
		}
		if err := l.replaySegment(s, prev, afterZxid, fn); err != nil {
			return err
		}
		prev = s.last
	}
	return nil
}

func (l *Log) replaySegment(s segment, prev, afterZxid int64, fn func(int64, []byte) error) error {
	path := filepath.Join(l.opts.Dir, segmentName(s.base))
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("txnlog: replay: %w", err)
	}
	defer f.Close()
	var h [segmentHeaderLen]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return fmt.Errorf("%w: %s: segment header: %v", ErrCorrupt, path, err)
	}
	if err := parseSegmentHeader(h[:], s.base); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	rr := newRecordReader(f, segmentHeaderLen, s.end, prev)
	rr.want = s.base
	for {
		zxid, payload, err := rr.next()
		if err == errCleanEnd {
			if rr.off != s.end {
				return fmt.Errorf("%w: %s: data ends at offset %d, want %d", ErrCorrupt, path, rr.off, s.end)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, path, rr.off, err)
		}
		if zxid <= afterZxid {
			continue
		}
		if err := fn(zxid, payload); err != nil {
			return fmt.Errorf("txnlog: replay zxid %#x: %w", zxid, err)
		}
	}
}

// PurgeBefore deletes the segment files all of whose records are below zxid,
// oldest first. The active segment is never deleted.
func (l *Log) PurgeBefore(zxid int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	n := 0
	for n+1 < len(l.segs) && l.segs[n+1].base <= zxid {
		path := filepath.Join(l.opts.Dir, segmentName(l.segs[n].base))
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.segs = l.segs[n:]
			return fmt.Errorf("txnlog: purge: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	l.segs = append([]segment(nil), l.segs[n:]...)
	if err := l.syncDir(); err != nil {
		return fmt.Errorf("txnlog: purge: %w", err)
	}
	return nil
}

// Close syncs what was appended (unless a write already failed) and closes
// the files. Later calls return ErrClosed.
func (l *Log) Close() error {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return ErrClosed
	}
	var errs []error
	if l.f != nil {
		if l.err == nil {
			if err := l.syncLocked(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := l.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("txnlog: close: %w", err))
		}
		l.f = nil
	}
	if err := l.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("txnlog: close lock: %w", err))
	}
	return errors.Join(errs...)
}

// writable reports why the log cannot take writes.
func (l *Log) writable() error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.err != nil {
		return fmt.Errorf("txnlog: unusable after an earlier failure: %w", l.err)
	}
	return nil
}

// fail makes err sticky: after a failed write or fdatasync the state of the
// file is unknown, so nothing may be acknowledged any more.
func (l *Log) fail(err error) error {
	if l.err == nil {
		l.err = err
	}
	return err
}

// flush hands the buffer to the kernel.
func (l *Log) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	n, err := l.f.WriteAt(l.buf, l.off)
	l.off += int64(n)
	if err != nil {
		return fmt.Errorf("txnlog: write %s: %w", l.f.Name(), err)
	}
	l.dirty = true
	l.buf = l.buf[:0]
	return nil
}

// roll seals the active segment, durably, and starts one for zxid. Sealing
// syncs so that every segment but the last is always complete on disk.
func (l *Log) roll(zxid int64) error {
	if err := l.flush(); err != nil {
		return err
	}
	if l.dirty && !l.opts.NoSync {
		if err := fdatasync(l.f); err != nil {
			return err
		}
	}
	l.dirty = false
	l.segs[len(l.segs)-1].end = l.off
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("txnlog: close %s: %w", l.f.Name(), err)
	}
	l.f = nil
	return l.startSegment(zxid)
}

// startSegment creates the segment whose first record will be zxid and makes
// the file and its directory entry durable, so Sync only ever needs to
// fdatasync one file.
func (l *Log) startSegment(zxid int64) error {
	path := filepath.Join(l.opts.Dir, segmentName(zxid))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("txnlog: create segment: %w", err)
	}
	if l.opts.Preallocate {
		if err := preallocate(f, 0, l.opts.SegmentBytes); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
	}
	if _, err := f.WriteAt(appendSegmentHeader(nil, zxid), 0); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("txnlog: write segment header: %w", err)
	}
	if !l.opts.NoSync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("txnlog: fsync %s: %w", path, err)
		}
		if err := l.syncDir(); err != nil {
			f.Close()
			return err
		}
	}
	l.f = f
	l.off = segmentHeaderLen
	l.dirty = false
	l.segs = append(l.segs, segment{base: zxid})
	return nil
}

func (l *Log) syncDir() error {
	if l.opts.NoSync {
		return nil
	}
	return syncDir(l.opts.Dir)
}

// syncDir makes renames, creations and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("txnlog: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("txnlog: fsync dir %s: %w", dir, err)
	}
	return nil
}

// writeZeros fills [from, to) of f with zeros.
func writeZeros(f *os.File, from, to int64) error {
	zeros := make([]byte, min(to-from, 1<<20))
	for from < to {
		n := min(int64(len(zeros)), to-from)
		if _, err := f.WriteAt(zeros[:n], from); err != nil {
			return fmt.Errorf("preallocate %s: %w", f.Name(), err)
		}
		from += n
	}
	return nil
}

func segmentName(base int64) string { return fmt.Sprintf("log.%016x", uint64(base)) }
