package ensemble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrCorruptLog means a stored raft log entry could not be decoded.
var ErrCorruptLog = errors.New("ensemble: corrupt raft log entry")

// ErrLogGap means StoreLogs was given entries that do not directly follow
// the last stored one. Raft never does this with a MonotonicLogStore.
var ErrLogGap = errors.New("ensemble: raft log entries not contiguous")

// FileLog is raft's log as append-only segment files, one record per entry.
// A StoreLogs call is one write and one fdatasync whatever the number of
// entries, so raft's batching becomes the group commit, as in ZooKeeper's
// transaction log. (A B+tree store pays for page rewrites and two syncs per
// commit; on this workload that made it the bottleneck.)
//
// Each segment is named after the index of its first entry
// (%020d.log) and holds records
//
//	length  4 bytes: size of the entry
//	crc     4 bytes: CRC-32C of the entry
//	entry   the raft.Log as encoded by appendLog
//
// Past the last record the file holds zeros written ahead of time (see
// preallocChunk); a zero length marks the end. A crash can leave a torn
// record, or parts of an unsynced batch, after the last good record; Open
// cuts the file there (raft never acknowledged them: the sync had not
// returned).
//
// Removing a prefix drops only whole segments; entries before the cut that
// share a segment with entries after it stay readable. Raft only compacts
// committed entries, which are the same on every member, so serving a few
// more of them is harmless. Removing everything (after a snapshot is
// installed) and removing a suffix (a follower's conflicting entries) are
// exact.
type FileLog struct {
	dir     string
	noSync  bool
	segSize int64

	// writeMu serialises StoreLogs and DeleteRange (raft compacts from its
	// snapshot goroutine while the main loop appends).
	writeMu sync.Mutex
	// mu guards segs; readers hold it shared while they read a file.
	mu   sync.RWMutex
	segs []*segment
	buf  []byte
}

type segment struct {
	first uint64
	f     *os.File
	// offs[i] is the offset of the record of index first+i; end is where
	// the next record goes; alloc is the file's size, zeros past end.
	offs  []int64
	end   int64
	alloc int64
}

func (s *segment) last() uint64 { return s.first + uint64(len(s.offs)) - 1 }

const (
	recordHeaderSize   = 8
	defaultSegmentSize = 64 << 20
	// maxRecordSize bounds one entry on disk; anything larger is damage.
	maxRecordSize = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptSegment means a segment other than the last is damaged, which a
// crash cannot cause.
var ErrCorruptSegment = errors.New("ensemble: corrupt raft log segment")

// OpenFileLog opens the segments in dir (creating dir), dropping a torn
// record at the end of the last one. noSync skips fdatasync (tests and
// benchmarks only).
func OpenFileLog(dir string, noSync bool) (*FileLog, error) {
	return openFileLog(dir, noSync, defaultSegmentSize)
}

func openFileLog(dir string, noSync bool, segSize int64) (*FileLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create raft log directory: %w", err)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list raft log segments: %w", err)
	}
	var firsts []uint64
	for _, de := range names {
		base, ok := strings.CutSuffix(de.Name(), ".log")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		firsts = append(firsts, n)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	l := &FileLog{dir: dir, noSync: noSync, segSize: segSize}
	for i, first := range firsts {
		seg, err := l.loadSegment(first, i == len(firsts)-1)
		if err != nil {
			l.Close()
			return nil, err
		}
		if n := len(l.segs); n > 0 && len(l.segs[n-1].offs) > 0 && seg.first != l.segs[n-1].last()+1 {
			seg.f.Close()
			l.Close()
			return nil, fmt.Errorf("%w: segment %d does not follow entry %d", ErrCorruptSegment, seg.first, l.segs[n-1].last())
		}
		if len(seg.offs) == 0 {
			// An empty segment (a crash right after creating it) holds
			// nothing; drop it so the next append starts a fresh one.
			seg.f.Close()
			if err := os.Remove(l.segPath(first)); err != nil {
				l.Close()
				return nil, fmt.Errorf("remove empty raft log segment: %w", err)
			}
			continue
		}
		l.segs = append(l.segs, seg)
	}
	return l, nil
}

func (l *FileLog) segPath(first uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%020d.log", first))
}

// loadSegment reads a segment's records to index them. In the last segment
// a bad record ends the log (and is truncated away); elsewhere it is an
// error.
func (l *FileLog) loadSegment(first uint64, isLast bool) (*segment, error) {
	path := l.segPath(first)
	f, err := os.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open raft log segment: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read raft log segment: %w", err)
	}
	seg := &segment{first: first, f: f}
	offs, end, err := scanRecords(data, first)
	seg.offs, seg.end, seg.alloc = offs, end, end
	if err != nil && !isLast {
		f.Close()
		return nil, fmt.Errorf("%w: %s at offset %d: %w", ErrCorruptSegment, path, end, err)
	}
	if end < int64(len(data)) {
		// Cut off the preallocated zeros and any torn record. Nothing may
		// stay beyond the end: bytes of an unacknowledged write could
		// otherwise line up with later records and come back as entries
		// after the next crash.
		if terr := f.Truncate(end); terr != nil {
			f.Close()
			return nil, fmt.Errorf("truncate raft log tail: %w", terr)
		}
		if serr := l.sync(f); serr != nil {
			f.Close()
			return nil, serr
		}
	}
	return seg, nil
}

// scanRecords indexes the records of a segment whose first entry is first.
// It returns the offsets of the good records, where they end, and why it
// stopped early (nil at a clean end: the end of data, or a zero length
// where the preallocated zeros begin).
func scanRecords(data []byte, first uint64) (offs []int64, end int64, err error) {
	var l raft.Log
	for off := 0; off < len(data); {
		if len(data)-off >= 4 && binary.BigEndian.Uint32(data[off:]) == 0 {
			return offs, int64(off), nil
		}
		if len(data)-off < recordHeaderSize {
			return offs, int64(off), errors.New("record header cut short")
		}
		n := binary.BigEndian.Uint32(data[off:])
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n > maxRecordSize || uint64(n) > uint64(len(data)-off-recordHeaderSize) {
			return offs, int64(off), fmt.Errorf("record length %d", n)
		}
		body := data[off+recordHeaderSize : off+recordHeaderSize+int(n)]
		if crc32.Checksum(body, castagnoli) != sum {
			return offs, int64(off), errors.New("record checksum mismatch")
		}
		if err := decodeLog(body, &l); err != nil {
			return offs, int64(off), err
		}
		if want := first + uint64(len(offs)); l.Index != want {
			return offs, int64(off), fmt.Errorf("record holds entry %d, want %d", l.Index, want)
		}
		offs = append(offs, int64(off))
		off += recordHeaderSize + int(n)
	}
	return offs, int64(len(data)), nil
}

func (l *FileLog) sync(f *os.File) error {
	if l.noSync {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync raft log: %w", err)
	}
	return nil
}

func (l *FileLog) syncDir() error {
	if l.noSync {
		return nil
	}
	d, err := os.Open(l.dir)
	if err != nil {
		return fmt.Errorf("sync raft log directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync raft log directory: %w", err)
	}
	return nil
}

// Close closes the segment files.
func (l *FileLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	for _, s := range l.segs {
		err = errors.Join(err, s.f.Close())
	}
	l.segs = nil
	return err
}

// IsMonotonic implements raft.MonotonicLogStore: after installing a
// snapshot raft clears the log instead of leaving a gap.
func (l *FileLog) IsMonotonic() bool { return true }

// FirstIndex implements raft.LogStore.
func (l *FileLog) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) == 0 {
		return 0, nil
	}
	return l.segs[0].first, nil
}

// LastIndex implements raft.LogStore.
func (l *FileLog) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) == 0 {
		return 0, nil
	}
	return l.segs[len(l.segs)-1].last(), nil
}

// find returns the segment holding index, or nil. Callers hold mu.
func (l *FileLog) find(index uint64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > index }) - 1
	if i < 0 || index > l.segs[i].last() {
		return nil
	}
	return l.segs[i]
}

// GetLog implements raft.LogStore; a missing entry is raft.ErrLogNotFound.
func (l *FileLog) GetLog(index uint64, out *raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	seg := l.find(index)
	if seg == nil {
		return raft.ErrLogNotFound
	}
	i := index - seg.first
	off := seg.offs[i]
	end := seg.end
	if i+1 < uint64(len(seg.offs)) {
		end = seg.offs[i+1]
	}
	rec := make([]byte, end-off)
	if _, err := seg.f.ReadAt(rec, off); err != nil {
		return fmt.Errorf("read raft log entry %d: %w", index, err)
	}
	body := rec[recordHeaderSize:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(rec[4:]) {
		return fmt.Errorf("%w: raft log entry %d fails its checksum", ErrCorruptLog, index)
	}
	if err := decodeLog(body, out); err != nil {
		return fmt.Errorf("raft log entry %d: %w", index, err)
	}
	return nil
}

// StoreLog implements raft.LogStore.
func (l *FileLog) StoreLog(e *raft.Log) error { return l.StoreLogs([]*raft.Log{e}) }

// StoreLogs implements raft.LogStore: one write and one sync per segment
// touched (almost always one).
func (l *FileLog) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	for len(logs) > 0 {
		n, err := l.appendSome(logs)
		if err != nil {
			return err
		}
		logs = logs[n:]
	}
	return nil
}

// appendSome appends a prefix of logs to the current segment (starting a
// new one when it is full or there is none) and returns how many it wrote.
func (l *FileLog) appendSome(logs []*raft.Log) (int, error) {
	l.mu.RLock()
	var tail *segment
	if len(l.segs) > 0 {
		tail = l.segs[len(l.segs)-1]
	}
	l.mu.RUnlock()
	if tail != nil && logs[0].Index != tail.last()+1 {
		return 0, fmt.Errorf("%w: entry %d after %d", ErrLogGap, logs[0].Index, tail.last())
	}
	if tail == nil || tail.end >= l.segSize {
		seg, err := l.newSegment(logs[0].Index)
		if err != nil {
			return 0, err
		}
		tail = seg
	}
	buf := l.buf[:0]
	offs := make([]int64, 0, len(logs))
	n := 0
	for _, e := range logs {
		if n > 0 && tail.end+int64(len(buf)) >= l.segSize {
			break
		}
		if e.Index != logs[0].Index+uint64(n) {
			return 0, fmt.Errorf("%w: entry %d in a batch starting at %d", ErrLogGap, e.Index, logs[0].Index)
		}
		offs = append(offs, tail.end+int64(len(buf)))
		start := len(buf)
		buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0)
		buf = appendLog(buf, e)
		body := buf[start+recordHeaderSize:]
		binary.BigEndian.PutUint32(buf[start:], uint32(len(body)))
		binary.BigEndian.PutUint32(buf[start+4:], crc32.Checksum(body, castagnoli))
		n++
	}
	if err := l.preallocate(tail, tail.end+int64(len(buf))); err != nil {
		return 0, err
	}
	if _, err := tail.f.WriteAt(buf, tail.end); err != nil {
		// Cut back whatever part was written, so the file ends where
		// the index says.
		_ = tail.f.Truncate(tail.end)
		tail.alloc = tail.end
		return 0, fmt.Errorf("write raft log: %w", err)
	}
	if err := l.sync(tail.f); err != nil {
		_ = tail.f.Truncate(tail.end)
		tail.alloc = tail.end
		return 0, err
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf[:0]
	} else {
		l.buf = nil
	}
	l.mu.Lock()
	tail.offs = append(tail.offs, offs...)
	tail.end += int64(len(buf))
	l.mu.Unlock()
	return n, nil
}

// preallocChunk is how far ahead of the data a segment's file is filled
// with zeros. Overwriting blocks that already exist lets fdatasync skip the
// file-system journal (no size or extent change), which is most of its cost
// when other processes sync too; ZooKeeper pads its log for the same
// reason.
const preallocChunk = 4 << 20

// preallocate makes seg's file at least need bytes long by writing zeros;
// the caller's next sync makes them durable with the data.
func (l *FileLog) preallocate(seg *segment, need int64) error {
	if need <= seg.alloc {
		return nil
	}
	size := min((need+preallocChunk-1)/preallocChunk*preallocChunk, max(need, l.segSize))
	zeros := make([]byte, 1<<20)
	for off := seg.alloc; off < size; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), size-off)
		if _, err := seg.f.WriteAt(zeros[:n], off); err != nil {
			_ = seg.f.Truncate(seg.end)
			seg.alloc = seg.end
			return fmt.Errorf("preallocate raft log: %w", err)
		}
	}
	seg.alloc = size
	return nil
}

// newSegment creates an empty segment whose first entry will be first and
// makes it the tail. The caller holds writeMu.
func (l *FileLog) newSegment(first uint64) (*segment, error) {
	f, err := os.OpenFile(l.segPath(first), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create raft log segment: %w", err)
	}
	if err := l.syncDir(); err != nil {
		f.Close()
		return nil, err
	}
	seg := &segment{first: first, f: f}
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
	return seg, nil
}

// DeleteRange implements raft.LogStore for the three ranges raft removes:
// a prefix (compaction), a suffix (conflicting entries) or everything.
func (l *FileLog) DeleteRange(lo, hi uint64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.segs) == 0 {
		return nil
	}
	first, last := l.segs[0].first, l.segs[len(l.segs)-1].last()
	switch {
	case lo <= first && hi >= last:
		return l.removeSegments(len(l.segs))
	case lo <= first:
		// Prefix: drop the segments wholly inside it.
		n := 0
		for n < len(l.segs)-1 && l.segs[n].last() <= hi {
			n++
		}
		return l.removeSegments(n)
	case hi >= last:
		return l.truncateFrom(lo)
	default:
		return fmt.Errorf("ensemble: cannot delete raft log entries %d-%d from the middle of %d-%d", lo, hi, first, last)
	}
}

// removeSegments deletes the first n segments. The caller holds mu.
func (l *FileLog) removeSegments(n int) error {
	for _, s := range l.segs[:n] {
		s.f.Close()
		if err := os.Remove(l.segPath(s.first)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove raft log segment: %w", err)
		}
	}
	l.segs = append(l.segs[:0], l.segs[n:]...)
	if n > 0 {
		return l.syncDir()
	}
	return nil
}

// truncateFrom removes entry lo and everything after it. The caller holds
// mu.
func (l *FileLog) truncateFrom(lo uint64) error {
	for len(l.segs) > 0 {
		s := l.segs[len(l.segs)-1]
		if s.first >= lo {
			s.f.Close()
			if err := os.Remove(l.segPath(s.first)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove raft log segment: %w", err)
			}
			l.segs = l.segs[:len(l.segs)-1]
			continue
		}
		keep := lo - s.first
		if keep < uint64(len(s.offs)) {
			end := s.offs[keep]
			if err := s.f.Truncate(end); err != nil {
				return fmt.Errorf("truncate raft log: %w", err)
			}
			if err := l.sync(s.f); err != nil {
				return err
			}
			s.offs = s.offs[:keep]
			s.end, s.alloc = end, end
		}
		break
	}
	return l.syncDir()
}

// The on-disk form of one raft.Log:
//
//	version   1 byte (logFormat)
//	index     8 bytes
//	term      8 bytes
//	type      1 byte
//	appended  8 bytes, Unix nanoseconds (0 for the zero time)
//	data      4-byte length, bytes
//	ext       4-byte length, bytes
const (
	logFormat     = 1
	logHeaderSize = 1 + 8 + 8 + 1 + 8
)

func appendLog(b []byte, l *raft.Log) []byte {
	b = append(b, logFormat)
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
	return append(b, l.Extensions...)
}

// decodeLog parses an entry written by appendLog into out, copying every
// byte slice (the input may be memory-mapped).
func decodeLog(b []byte, out *raft.Log) error {
	if len(b) < logHeaderSize {
		return fmt.Errorf("%w: %d bytes, shorter than the header", ErrCorruptLog, len(b))
	}
	if b[0] != logFormat {
		return fmt.Errorf("%w: unknown format %d", ErrCorruptLog, b[0])
	}
	out.Index = binary.BigEndian.Uint64(b[1:])
	out.Term = binary.BigEndian.Uint64(b[9:])
	out.Type = raft.LogType(b[17])
	if at := int64(binary.BigEndian.Uint64(b[18:])); at != 0 {
		out.AppendedAt = time.Unix(0, at)
	} else {
		out.AppendedAt = time.Time{}
	}
	rest := b[logHeaderSize:]
	var err error
	if out.Data, rest, err = cutBytes(rest); err != nil {
		return fmt.Errorf("%w: data: %w", ErrCorruptLog, err)
	}
	if out.Extensions, rest, err = cutBytes(rest); err != nil {
		return fmt.Errorf("%w: extensions: %w", ErrCorruptLog, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorruptLog, len(rest))
	}
	return nil
}

// cutBytes takes a 4-byte length and that many bytes (copied; nil when
// empty) from the front of b.
func cutBytes(b []byte) ([]byte, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errors.New("length cut short")
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("length %d exceeds the %d bytes left", n, len(b))
	}
	var v []byte
	if n > 0 {
		v = append([]byte(nil), b[:n]...)
	}
	return v, b[n:], nil
}
