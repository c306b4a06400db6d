package file

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

// File name suffixes, as Kafka names them.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	deletedSuffix   = ".deleted"
	offsetEntrySize = 8  // 4-byte relative offset, 4-byte position
	timeEntrySize   = 12 // 8-byte timestamp, 4-byte relative offset
)

// segmentName is Kafka's file name stem: the base offset as 20 digits.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// view is the part of a segment that readers see. The appender builds a
// new view and publishes it under Log.mu; readers copy it under
// Log.mu.RLock. The index slices only grow by append past what any reader
// holds, and truncation caps their capacity, so a copied view stays valid.
type view struct {
	size     int64  // bytes of whole batches in the .log file
	next     int64  // one past the last offset; base when empty
	maxTs    int64  // largest batch max timestamp; -1 when none
	maxTsOff int64  // last offset of the batch carrying maxTs
	idx      []byte // offset index entries
	tidx     []byte // time index entries
	modified time.Time
}

// segment is one .log file with its indexes.
type segment struct {
	base int64
	stem string // path without suffix
	f    *os.File

	// mu pins the file for I/O: readers hold RLock while they read (and a
	// FileRegion until Close); truncating or closing the file takes Lock.
	// Lock order: Log.appendMu, Log.flushMu, Log.mu, segment.mu.
	mu     sync.RWMutex
	closed bool // guarded by mu

	v view // guarded by Log.mu

	// Appender state, guarded by Log.appendMu.
	created    time.Time
	firstTs    int64 // max timestamp of the first batch; -1 when none
	sinceIndex int64 // bytes appended since the last index entry
	idxDisk    int   // bytes of v.idx written to the .index file
	tidxDisk   int   // bytes of v.tidx written to the .timeindex file
	synced     atomic.Bool
}

func relOffset(idx []byte, i int) int64 {
	return int64(binary.BigEndian.Uint32(idx[i*offsetEntrySize:]))
}

func position(idx []byte, i int) int64 {
	return int64(binary.BigEndian.Uint32(idx[i*offsetEntrySize+4:]))
}

func timeAt(tidx []byte, i int) int64 {
	return int64(binary.BigEndian.Uint64(tidx[i*timeEntrySize:]))
}

func timeRel(tidx []byte, i int) int64 {
	return int64(binary.BigEndian.Uint32(tidx[i*timeEntrySize+8:]))
}

// lookup returns the position of the last indexed batch whose last offset
// is <= target: the batch holding target starts there or later.
func lookup(idx []byte, base, target int64) int64 {
	n := len(idx) / offsetEntrySize
	i := sort.Search(n, func(i int) bool { return base+relOffset(idx, i) > target }) - 1
	if i < 0 {
		return 0
	}
	return position(idx, i)
}

// lookupTime returns the offset of the last time index entry whose
// timestamp is below ts (every batch up to it has earlier timestamps), or
// -1 when none is.
func lookupTime(tidx []byte, base, ts int64) int64 {
	n := len(tidx) / timeEntrySize
	i := sort.Search(n, func(i int) bool { return timeAt(tidx, i) >= ts }) - 1
	if i < 0 {
		return -1
	}
	return base + timeRel(tidx, i)
}

// jump returns the position of the last indexed batch that starts at or
// before limit and ends below maxOffset: every batch before it fits a read
// limited by (limit, maxOffset), so a scan can skip to it.
func jump(idx []byte, base, limit, maxOffset int64) int64 {
	n := len(idx) / offsetEntrySize
	i := sort.Search(n, func(i int) bool {
		return position(idx, i) > limit || base+relOffset(idx, i) >= maxOffset
	}) - 1
	if i < 0 {
		return 0
	}
	return position(idx, i)
}

// indexer carries Kafka's index-building rule across batches: after more
// than index.interval.bytes since the last entry, the next batch gets an
// offset index entry (its last offset, its position) and the time index
// gets the max timestamp so far, if it grew.
type indexer struct {
	interval int64
	base     int64
}

func (ix indexer) add(v *view, since *int64, h *storage.BatchHeader, pos int64) {
	if h.MaxTimestamp > v.maxTs {
		v.maxTs, v.maxTsOff = h.MaxTimestamp, h.LastOffset()
	}
	if *since > ix.interval {
		v.idx = binary.BigEndian.AppendUint32(v.idx, uint32(h.LastOffset()-ix.base))
		v.idx = binary.BigEndian.AppendUint32(v.idx, uint32(pos))
		appendTime(v, ix.base)
		*since = 0
	}
	*since += h.Size()
	v.size = pos + h.Size()
	v.next = h.LastOffset() + 1
}

// appendTime adds a time index entry for the max timestamp so far, unless
// it is not later than the last entry (Kafka's maybeAppend).
func appendTime(v *view, base int64) {
	if v.maxTs < 0 {
		return
	}
	if n := len(v.tidx) / timeEntrySize; n > 0 && timeAt(v.tidx, n-1) >= v.maxTs {
		return
	}
	v.tidx = binary.BigEndian.AppendUint64(v.tidx, uint64(v.maxTs))
	v.tidx = binary.BigEndian.AppendUint32(v.tidx, uint32(v.maxTsOff-base))
}

// window reads a segment file through a buffer at explicit positions
// (never the shared seek offset), below a size limit.
type window struct {
	f     *os.File
	limit int64
	buf   []byte
	off   int64
	n     int
	chunk int
}

// errPastEnd means a read ran past the readable size of a segment.
var errPastEnd = errors.New("read past the end of the segment")

// peek returns n bytes at pos, refilling the buffer when they are not in it.
func (w *window) peek(pos int64, n int) ([]byte, error) {
	if pos >= w.off && pos+int64(n) <= w.off+int64(w.n) {
		return w.buf[pos-w.off : pos-w.off+int64(n)], nil
	}
	if pos+int64(n) > w.limit {
		return nil, errPastEnd
	}
	want := int64(max(n, w.chunk))
	want = min(want, w.limit-pos)
	if int64(cap(w.buf)) < want {
		w.buf = make([]byte, want)
	}
	m, err := w.f.ReadAt(w.buf[:want], pos)
	if int64(m) < want {
		w.n = 0
		if err == nil || errors.Is(err, io.EOF) {
			err = errPastEnd
		}
		return nil, err
	}
	w.off, w.n = pos, int(want)
	return w.buf[:n], nil
}

// header reads and checks the batch header at pos; the batch must end
// within the window's limit.
func (w *window) header(pos int64) (storage.BatchHeader, error) {
	b, err := w.peek(pos, storage.BatchHeaderSize)
	if err != nil {
		return storage.BatchHeader{}, err
	}
	h, err := storage.ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if pos+h.Size() > w.limit {
		return h, errPastEnd
	}
	return h, nil
}

// span selects what a read from offset returns in this segment: the batch
// holding offset (or the first after it), then following batches while they
// end within maxBytes of the first's start and begin below maxOffset. ok is
// false when no batch at or after offset is in the segment.
func (s *segment) span(w *window, v *view, offset int64, maxBytes int32, maxOffset int64) (start, end, next int64, ok bool, err error) {
	pos := lookup(v.idx, s.base, offset)
	var h storage.BatchHeader
	for {
		if pos >= v.size {
			return 0, 0, offset, false, nil
		}
		if h, err = w.header(pos); err != nil {
			return 0, 0, 0, false, s.corrupt(pos, err)
		}
		if h.LastOffset() >= offset {
			break
		}
		pos += h.Size()
	}
	if h.BaseOffset >= maxOffset {
		return pos, pos, offset, true, nil
	}
	start, end, next = pos, pos+h.Size(), h.LastOffset()+1
	limit := start + int64(max(maxBytes, 0))
	if end >= limit {
		return start, end, next, true, nil
	}
	if j := jump(v.idx, s.base, limit, maxOffset); j > end {
		end, next = j, -1
	}
	for end < v.size {
		if h, err = w.header(end); err != nil {
			return 0, 0, 0, false, s.corrupt(end, err)
		}
		if h.BaseOffset >= maxOffset || end+h.Size() > limit {
			if next < 0 {
				next = h.BaseOffset
			}
			break
		}
		end, next = end+h.Size(), h.LastOffset()+1
	}
	if next < 0 {
		// The jump landed exactly at the segment's end: cannot happen, as
		// index entries point at batches inside the segment.
		return 0, 0, 0, false, s.corrupt(end, errPastEnd)
	}
	return start, end, next, true, nil
}

func (s *segment) corrupt(pos int64, err error) error {
	return fmt.Errorf("file: segment %s at byte %d: %w: %w", s.stem+logSuffix, pos, storage.ErrCorrupt, err)
}

// findTimestamp scans the segment for the first record at or after
// startOffset with a timestamp >= ts, starting where the time index allows.
func (s *segment) findTimestamp(w *window, v *view, ts, startOffset int64) (storage.TimestampMatch, error) {
	pos := int64(0)
	if o := lookupTime(v.tidx, s.base, ts); o >= 0 {
		pos = lookup(v.idx, s.base, o)
	}
	if startOffset > s.base {
		pos = max(pos, lookup(v.idx, s.base, startOffset))
	}
	for pos < v.size {
		h, err := w.header(pos)
		if err != nil {
			return storage.TimestampMatch{}, s.corrupt(pos, err)
		}
		if h.MaxTimestamp >= ts && h.LastOffset() >= startOffset {
			b, err := w.peek(pos, int(h.Size()))
			if err != nil {
				return storage.TimestampMatch{}, s.corrupt(pos, err)
			}
			m, err := storage.FindTimestamp(b, ts, startOffset)
			if err != nil {
				return m, s.corrupt(pos, err)
			}
			if m.Found {
				return m, nil
			}
		}
		pos += h.Size()
	}
	return storage.TimestampMatch{}, nil
}

// scan walks the batches from pos to the end of the file, checking CRCs
// and offsets, and extends v and the index state as an append would. It
// returns the end of the last good batch, which is below the file size when
// the tail is torn or corrupt.
func (s *segment) scan(v *view, since *int64, pos, fileSize int64, interval int32) (int64, error) {
	w := &window{f: s.f, limit: fileSize, chunk: 1 << 20}
	ix := indexer{interval: int64(interval), base: s.base}
	for pos < fileSize {
		h, err := w.header(pos)
		if err != nil {
			break
		}
		b, err := w.peek(pos, int(h.Size()))
		if err != nil {
			if errors.Is(err, errPastEnd) {
				break
			}
			return pos, fmt.Errorf("file: read %s: %w", s.stem+logSuffix, err)
		}
		if _, err := storage.CheckBatch(b); err != nil {
			break
		}
		if h.BaseOffset < v.next || h.LastOffset()-s.base > math.MaxInt32 {
			break
		}
		if v.size == 0 {
			s.firstTs = h.MaxTimestamp
		}
		ix.add(v, since, &h, pos)
		pos += h.Size()
	}
	return pos, nil
}

// tail walks batch headers (without CRCs) from pos to the end of the file
// to finish a view loaded from index files. It reports false when the
// headers do not end exactly at the file's end.
func (s *segment) tail(v *view, since *int64, pos, fileSize int64, interval int32) bool {
	w := &window{f: s.f, limit: fileSize, chunk: 64 << 10}
	for pos < fileSize {
		h, err := w.header(pos)
		if err != nil || h.BaseOffset < v.next {
			return false
		}
		if h.MaxTimestamp > v.maxTs {
			v.maxTs, v.maxTsOff = h.MaxTimestamp, h.LastOffset()
		}
		*since += h.Size()
		pos += h.Size()
		v.next = h.LastOffset() + 1
	}
	v.size = pos
	return true
}

// readFirstTimestamp loads the first batch's max timestamp (for segment.ms).
func (s *segment) readFirstTimestamp() {
	s.firstTs = -1
	if s.v.size == 0 {
		return
	}
	w := &window{f: s.f, limit: s.v.size, chunk: storage.BatchHeaderSize}
	if h, err := w.header(0); err == nil {
		s.firstTs = h.MaxTimestamp
	}
}

// checkIndexes reports whether loaded index bytes are sane for a file of
// fileSize bytes: whole entries, offsets and positions increasing and
// inside the segment, timestamps not decreasing (Kafka's sanity check).
func checkIndexes(idx, tidx []byte, fileSize int64) bool {
	if len(idx)%offsetEntrySize != 0 || len(tidx)%timeEntrySize != 0 {
		return false
	}
	for i := 0; i < len(idx)/offsetEntrySize; i++ {
		if position(idx, i) >= fileSize || i > 0 && (relOffset(idx, i) <= relOffset(idx, i-1) || position(idx, i) <= position(idx, i-1)) {
			return false
		}
	}
	for i := 0; i < len(tidx)/timeEntrySize; i++ {
		if timeAt(tidx, i) < 0 || i > 0 && (timeAt(tidx, i) < timeAt(tidx, i-1) || timeRel(tidx, i) < timeRel(tidx, i-1)) {
			return false
		}
	}
	return true
}

// writeIndexes brings the index files up to date with v: it writes the
// entries not yet on disk and cuts entries a truncation removed.
func (s *segment) writeIndexes(v *view, sync bool) error {
	var err error
	if s.idxDisk, err = writeIndexFile(s.stem+indexSuffix, v.idx, s.idxDisk, sync); err != nil {
		return err
	}
	s.tidxDisk, err = writeIndexFile(s.stem+timeIndexSuffix, v.tidx, s.tidxDisk, sync)
	return err
}

func writeIndexFile(path string, entries []byte, onDisk int, sync bool) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return onDisk, fmt.Errorf("file: open index: %w", err)
	}
	defer f.Close()
	if onDisk > len(entries) {
		onDisk = 0 // rewrite from scratch after a truncation
	}
	if _, err := f.WriteAt(entries[onDisk:], int64(onDisk)); err != nil {
		return 0, fmt.Errorf("file: write index %s: %w", path, err)
	}
	if err := f.Truncate(int64(len(entries))); err != nil {
		return 0, fmt.Errorf("file: truncate index %s: %w", path, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("file: sync index %s: %w", path, err)
		}
	}
	return len(entries), nil
}

// openSegment opens (creating when create is set) the .log file of a segment.
func openSegment(dir string, base int64, create bool, now time.Time) (*segment, error) {
	stem := filepath.Join(dir, segmentName(base))
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_TRUNC
		// Stale indexes of an earlier segment with this base must not survive.
		_ = os.Remove(stem + indexSuffix)
		_ = os.Remove(stem + timeIndexSuffix)
	}
	f, err := os.OpenFile(stem+logSuffix, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("file: open segment: %w", err)
	}
	s := &segment{base: base, stem: stem, f: f, created: now, firstTs: -1}
	s.v = view{next: base, maxTs: -1, maxTsOff: -1, modified: now}
	return s, nil
}

// release closes the file once no reader holds it.
func (s *segment) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		_ = s.f.Close()
	}
}

// files lists the segment's file paths.
func (s *segment) files() []string {
	return []string{s.stem + logSuffix, s.stem + indexSuffix, s.stem + timeIndexSuffix}
}
