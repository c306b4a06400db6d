package file

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

// Log is one partition's log in a directory of Kafka-layout segments.
//
// Locking (see locks.txt): appendMu serializes mutators (Append, Truncate,
// DeleteBefore, Roll, Close); flushMu serializes fsyncs and the recovery
// point; mu guards the segment list, the offsets and every segment's
// published view, and is held only to copy or publish them, never for I/O;
// each segment's own mu pins its file while a reader reads it.
type Log struct {
	b   *Backend
	id  storage.PartitionID
	dir string
	cfg storage.Config

	appendMu sync.Mutex
	flushMu  sync.Mutex
	mu       sync.RWMutex

	segs   []*segment // guarded by mu; oldest first, the last is active
	start  int64      // guarded by mu
	end    int64      // guarded by mu
	closed bool       // guarded by mu
	failed error      // guarded by mu: an I/O error left the files in an unknown state

	recoveryPoint int64 // guarded by flushMu
	unflushed     int64 // guarded by appendMu: records since the last flush

	flushes sync.WaitGroup // background flushes of rolled segments

	delMu   sync.Mutex
	pending map[*time.Timer][]string // delayed deletions (file.delete.delay.ms)
}

var (
	_ storage.Log        = (*Log)(nil)
	_ storage.FileReader = (*Log)(nil)
)

// state reports why the log cannot serve a call: a done context, Close,
// or an earlier I/O failure.
func (l *Log) state(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: %s %s: %w", op, l.id, err)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return fmt.Errorf("file: %s %s: %w", op, l.id, storage.ErrClosed)
	}
	if l.failed != nil {
		return fmt.Errorf("file: %s %s: log failed earlier: %w", op, l.id, l.failed)
	}
	return nil
}

func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
	}
	l.mu.Unlock()
}

// StartOffset returns the log start offset.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start
}

// EndOffset returns the log end offset.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.end
}

// Append validates the batches, then writes them to the active segment
// (rolling as needed) with positional writes that go to the page cache.
// Validation failures append nothing; an I/O error after a roll inside
// the same call can leave the batches before the roll appended.
func (l *Log) Append(ctx context.Context, batches []byte) (storage.AppendInfo, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.state(ctx, "append"); err != nil {
		return storage.AppendInfo{}, err
	}
	info, err := storage.CheckAppend(batches, l.end, l.cfg.SegmentBytes)
	if err != nil {
		return info, fmt.Errorf("file: append %s: %w", l.id, err)
	}
	now := l.cfg.Now()
	active := l.segs[len(l.segs)-1]
	v, since := active.v, active.sinceIndex
	ix := indexer{interval: int64(l.cfg.IndexIntervalBytes), base: active.base}
	runStart := 0
	it := storage.Batches(batches, false)
	for it.Next() {
		h := it.Header()
		if l.shouldRoll(active, &v, &h) {
			if err := l.writeRun(active, &v, since, batches[runStart:it.Pos()], now); err != nil {
				return info, err
			}
			if active, err = l.roll(now, h.BaseOffset); err != nil {
				return info, err
			}
			v, since = active.v, 0
			ix.base = active.base
			runStart = it.Pos()
		}
		if v.size == 0 {
			active.firstTs = h.MaxTimestamp
		}
		ix.add(&v, &since, &h, v.size)
	}
	if err := l.writeRun(active, &v, since, batches[runStart:], now); err != nil {
		return info, err
	}
	info.LogStartOffset = l.StartOffset()
	l.unflushed += info.Records
	if l.cfg.FlushMessages > 0 && l.unflushed >= l.cfg.FlushMessages {
		l.unflushed = 0
		if err := l.flushTo(l.end); err != nil {
			return info, err
		}
	}
	return info, nil
}

// shouldRoll applies Kafka's roll rules plus the index ones: a full offset
// or time index, or an offset that does not fit the index's relative form.
func (l *Log) shouldRoll(s *segment, v *view, h *storage.BatchHeader) bool {
	if h.LastOffset()-s.base > math.MaxInt32 {
		return true
	}
	st := storage.RollState{BaseOffset: s.base, Size: v.size, Empty: v.size == 0, FirstTimestamp: s.firstTs, Created: s.created}
	if storage.ShouldRoll(l.cfg, st, h.Size(), h.MaxTimestamp, h.LastOffset()) {
		return true
	}
	maxBytes := int(l.cfg.MaxIndexBytes)
	return v.size > 0 && (len(v.idx)/offsetEntrySize >= maxBytes/offsetEntrySize || len(v.tidx)/timeEntrySize >= maxBytes/timeEntrySize)
}

// writeRun writes batches that all go to segment s at its end, then
// publishes the view that describes them.
func (l *Log) writeRun(s *segment, v *view, since int64, run []byte, now time.Time) error {
	if len(run) == 0 {
		return nil
	}
	pos := s.v.size
	if _, err := s.f.WriteAt(run, pos); err != nil {
		werr := fmt.Errorf("file: append %s: write %s: %w", l.id, s.stem+logSuffix, err)
		// Cut whatever part was written; if even that fails the file is
		// in an unknown state and the log stops serving.
		if terr := s.f.Truncate(pos); terr != nil {
			l.fail(werr)
		}
		return werr
	}
	v.modified = now
	l.mu.Lock()
	s.v = *v
	l.end = v.next
	l.mu.Unlock()
	s.sinceIndex = since
	return nil
}

// roll seals the active segment and starts a new one at base. Kafka
// flushes a rolled segment in the background; so does this, advancing the
// recovery point so that recovery after a crash only scans from there.
func (l *Log) roll(now time.Time, base int64) (*segment, error) {
	old := l.segs[len(l.segs)-1]
	v := old.v
	appendTime(&v, old.base) // the segment's final max timestamp, as Kafka adds on roll
	if err := old.writeIndexes(&v, false); err != nil {
		return nil, fmt.Errorf("file: roll %s: %w", l.id, err)
	}
	s, err := openSegment(l.dir, base, true, now)
	if err != nil {
		return nil, fmt.Errorf("file: roll %s: %w", l.id, err)
	}
	l.mu.Lock()
	old.v = v
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.flushes.Add(1)
	go func() {
		defer l.flushes.Done()
		_ = l.flushTo(base) // a failure leaves the recovery point behind; the next flush retries
	}()
	return s, nil
}

// flushTo fsyncs every segment holding offsets below upto that is not
// known to be synced, then records upto as the recovery point.
func (l *Log) flushTo(upto int64) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	var pinned []*segment
	l.mu.RLock()
	active := l.segs[len(l.segs)-1]
	for _, s := range l.segs {
		if s.base >= upto || s.synced.Load() {
			continue
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			continue
		}
		pinned = append(pinned, s)
	}
	l.mu.RUnlock()
	var err error
	for _, s := range pinned {
		if err == nil {
			err = s.f.Sync()
			if err == nil && s != active {
				err = syncFiles(s.stem+indexSuffix, s.stem+timeIndexSuffix)
				if err == nil {
					s.synced.Store(true)
				}
			}
		}
		s.mu.RUnlock()
	}
	if err != nil {
		return fmt.Errorf("file: flush %s: %w", l.id, err)
	}
	if upto > l.recoveryPoint {
		if err := writeCheckpoint(l.dir, recoveryCheckpoint, l.id, upto); err != nil {
			return err
		}
		l.recoveryPoint = upto
	}
	return nil
}

func syncFiles(paths ...string) error {
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("file: open %s: %w", p, err)
		}
		err = f.Sync()
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("file: sync %s: %w", p, err)
		}
	}
	return nil
}

// pin finds the segment a read of offset starts in and pins it (its mu
// read-locked) with a copy of its view. s is nil when there is nothing to
// read at or after offset.
func (l *Log) pin(ctx context.Context, op string, offset int64) (*segment, view, storage.ReadResult, error) {
	res := storage.ReadResult{NextOffset: offset}
	if err := ctx.Err(); err != nil {
		return nil, view{}, res, fmt.Errorf("file: %s %s: %w", op, l.id, err)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, view{}, res, fmt.Errorf("file: %s %s: %w", op, l.id, storage.ErrClosed)
	}
	if l.failed != nil {
		return nil, view{}, res, fmt.Errorf("file: %s %s: log failed earlier: %w", op, l.id, l.failed)
	}
	res.StartOffset, res.EndOffset = l.start, l.end
	if offset < l.start || offset > l.end {
		return nil, view{}, res, fmt.Errorf("file: %s %s at %d, log has [%d, %d): %w", op, l.id, offset, l.start, l.end, storage.ErrOffsetOutOfRange)
	}
	i := max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })-1, 0)
	for i < len(l.segs) && (offset >= l.segs[i].v.next || l.segs[i].v.size == 0) {
		i++
	}
	if i == len(l.segs) {
		return nil, view{}, res, nil
	}
	s := l.segs[i]
	s.mu.RLock()
	return s, s.v, res, nil
}

// windowBuf is a read buffer for header walks; pooled as a pointer to an
// array so that Get and Put do not allocate.
type windowBuf = [8 << 10]byte

var windowBufs = sync.Pool{New: func() any { return new(windowBuf) }}

// Read copies whole batches out of one segment file.
func (l *Log) Read(ctx context.Context, offset int64, maxBytes int32, maxOffset int64) (storage.ReadResult, error) {
	s, v, res, err := l.pin(ctx, "read", offset)
	if err != nil || s == nil {
		return res, err
	}
	defer s.mu.RUnlock()
	buf := windowBufs.Get().(*windowBuf)
	defer windowBufs.Put(buf)
	w := &window{f: s.f, limit: v.size, buf: buf[:], chunk: len(buf)}
	start, end, next, ok, err := s.span(w, &v, offset, maxBytes, maxOffset)
	if err != nil {
		return res, fmt.Errorf("file: read %s: %w", l.id, err)
	}
	if !ok || start == end {
		return res, nil
	}
	out := make([]byte, end-start)
	if start >= w.off && end <= w.off+int64(w.n) {
		copy(out, w.buf[start-w.off:end-w.off])
	} else if _, err := s.f.ReadAt(out, start); err != nil {
		return res, fmt.Errorf("file: read %s: %w", l.id, s.corrupt(start, err))
	}
	res.Batches, res.NextOffset = out, next
	return res, nil
}

// ReadFile selects what Read would return as a pinned range of a segment
// file, for sendfile.
func (l *Log) ReadFile(ctx context.Context, offset int64, maxBytes int32, maxOffset int64) (*storage.FileRegion, error) {
	s, v, res, err := l.pin(ctx, "read", offset)
	empty := func() *storage.FileRegion {
		r := storage.NewFileRegion(nil, 0, 0, nil)
		r.NextOffset, r.StartOffset, r.EndOffset = res.NextOffset, res.StartOffset, res.EndOffset
		return r
	}
	if err != nil {
		return nil, err
	}
	if s == nil {
		return empty(), nil
	}
	buf := windowBufs.Get().(*windowBuf)
	w := &window{f: s.f, limit: v.size, buf: buf[:], chunk: len(buf)}
	start, end, next, ok, err := s.span(w, &v, offset, maxBytes, maxOffset)
	windowBufs.Put(buf)
	if err != nil || !ok || start == end {
		s.mu.RUnlock()
		if err != nil {
			return nil, fmt.Errorf("file: read %s: %w", l.id, err)
		}
		return empty(), nil
	}
	r := storage.NewFileRegion(s.f, start, end-start, s.mu.RUnlock)
	r.NextOffset, r.StartOffset, r.EndOffset = next, res.StartOffset, res.EndOffset
	return r, nil
}

// OffsetForTimestamp finds the first record at or after the start offset
// with a timestamp >= ts: the first segment whose max timestamp reaches ts,
// then its time index, then a scan of batch headers.
func (l *Log) OffsetForTimestamp(ctx context.Context, ts int64) (int64, int64, error) {
	if err := l.state(ctx, "offset for timestamp"); err != nil {
		return -1, -1, err
	}
	prev := int64(math.MinInt64)
	for {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return -1, -1, fmt.Errorf("file: offset for timestamp %s: %w", l.id, storage.ErrClosed)
		}
		start := l.start
		var s *segment
		for _, c := range l.segs {
			if c.base > prev && c.v.maxTs >= ts && c.v.next > start {
				s = c
				break
			}
		}
		if s == nil {
			l.mu.RUnlock()
			return -1, -1, nil
		}
		s.mu.RLock()
		v := s.v
		l.mu.RUnlock()
		buf := windowBufs.Get().(*windowBuf)
		w := &window{f: s.f, limit: v.size, buf: buf[:], chunk: len(buf)}
		m, err := s.findTimestamp(w, &v, ts, start)
		windowBufs.Put(buf)
		s.mu.RUnlock()
		if err != nil {
			return -1, -1, fmt.Errorf("file: offset for timestamp %s: %w", l.id, err)
		}
		if m.Found {
			return m.Offset, m.Timestamp, nil
		}
		prev = s.base
	}
}

// Truncate removes every batch holding an offset >= offset.
func (l *Log) Truncate(ctx context.Context, offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.state(ctx, "truncate"); err != nil {
		return err
	}
	if offset >= l.end {
		return nil
	}
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	now := l.cfg.Now()
	if offset < l.segs[0].base {
		s, err := openSegment(l.dir, offset, true, now)
		if err != nil {
			return fmt.Errorf("file: truncate %s: %w", l.id, err)
		}
		l.mu.Lock()
		removed := l.segs
		l.segs = []*segment{s}
		l.start, l.end = offset, offset
		l.mu.Unlock()
		l.retire(removed)
		return l.checkpointAfterTruncate(offset, true)
	}
	si := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	s := l.segs[si-1]
	nv, since, err := s.cut(offset, int64(l.cfg.IndexIntervalBytes))
	if err != nil {
		return fmt.Errorf("file: truncate %s: %w", l.id, err)
	}
	nv.modified = now
	l.mu.Lock()
	removed := append([]*segment(nil), l.segs[si:]...)
	l.segs = l.segs[:si:si]
	s.v = nv
	l.end = offset
	startMoved := offset < l.start
	l.start = min(l.start, offset)
	l.mu.Unlock()
	s.sinceIndex = since
	if nv.size == 0 {
		s.firstTs = -1
	}
	// Readers that copied the old view may still read the bytes being cut:
	// wait for them before the file shrinks and later appends overwrite it.
	s.mu.Lock()
	err = s.f.Truncate(nv.size)
	s.mu.Unlock()
	if err == nil {
		err = s.writeIndexes(&nv, false)
	}
	s.synced.Store(false)
	l.retire(removed)
	if err != nil {
		err = fmt.Errorf("file: truncate %s: %w", l.id, err)
		l.fail(err)
		return err
	}
	return l.checkpointAfterTruncate(offset, startMoved)
}

// checkpointAfterTruncate moves the recovery point back (so that a crash
// rescans the truncated segment) and records a start offset that moved back.
func (l *Log) checkpointAfterTruncate(offset int64, startMoved bool) error {
	if offset < l.recoveryPoint {
		if err := writeCheckpoint(l.dir, recoveryCheckpoint, l.id, offset); err != nil {
			return err
		}
		l.recoveryPoint = offset
	}
	if startMoved {
		return writeCheckpoint(l.dir, startCheckpoint, l.id, offset)
	}
	return nil
}

// cut computes the view of the segment without the batches holding
// offsets >= offset.
func (s *segment) cut(offset, interval int64) (view, int64, error) {
	v := s.v
	w := &window{f: s.f, limit: v.size, chunk: 8 << 10}
	pos := lookup(v.idx, s.base, offset)
	for pos < v.size {
		h, err := w.header(pos)
		if err != nil {
			return v, 0, s.corrupt(pos, err)
		}
		if h.LastOffset() >= offset {
			break
		}
		pos += h.Size()
	}
	ni := sort.Search(len(v.idx)/offsetEntrySize, func(i int) bool { return position(v.idx, i) >= pos })
	nt := sort.Search(len(v.tidx)/timeEntrySize, func(i int) bool { return s.base+timeRel(v.tidx, i) >= offset })
	nv := view{
		next: s.base, maxTs: -1, maxTsOff: -1,
		idx:  v.idx[: ni*offsetEntrySize : ni*offsetEntrySize],
		tidx: v.tidx[: nt*timeEntrySize : nt*timeEntrySize],
	}
	if nt > 0 {
		nv.maxTs, nv.maxTsOff = timeAt(nv.tidx, nt-1), s.base+timeRel(nv.tidx, nt-1)
	}
	from := int64(0)
	if ni > 0 {
		from = position(nv.idx, ni-1)
	}
	var since int64
	if !s.tail(&nv, &since, from, pos, int32(interval)) {
		return v, 0, s.corrupt(from, errPastEnd)
	}
	nv.size = pos
	return nv, since, nil
}

// DeleteBefore advances the start offset and removes the segments entirely
// below it.
func (l *Log) DeleteBefore(ctx context.Context, offset int64) error {
	removed, err := l.deleteBefore(ctx, offset)
	// Outside appendMu: waiting for readers of removed segments must not
	// hold up appends.
	l.retire(removed)
	return err
}

func (l *Log) deleteBefore(ctx context.Context, offset int64) ([]*segment, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.state(ctx, "delete before"); err != nil {
		return nil, err
	}
	if offset > l.end {
		return nil, fmt.Errorf("file: delete %s before %d, end offset is %d: %w", l.id, offset, l.end, storage.ErrOffsetOutOfRange)
	}
	if offset <= l.start {
		return nil, nil
	}
	// Record the new start first: a crash before the files go leaves
	// segments that the next Open removes.
	if err := writeCheckpoint(l.dir, startCheckpoint, l.id, offset); err != nil {
		return nil, err
	}
	if active := l.segs[len(l.segs)-1]; active.v.next <= offset && active.v.size > 0 {
		if _, err := l.roll(l.cfg.Now(), l.end); err != nil {
			return nil, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start = offset
	n := 0
	for n < len(l.segs)-1 && l.segs[n].v.next <= offset {
		n++
	}
	removed := append([]*segment(nil), l.segs[:n]...)
	l.segs = append([]*segment(nil), l.segs[n:]...)
	return removed, nil
}

// retire removes segments that are no longer in the list: their files are
// unlinked (or renamed *.deleted and unlinked after file.delete.delay.ms),
// and each file is closed once its last reader is done.
func (l *Log) retire(segs []*segment) {
	delay := time.Duration(l.cfg.FileDeleteDelayMs) * time.Millisecond
	for _, s := range segs {
		var paths []string
		for _, p := range s.files() {
			if delay <= 0 {
				_ = os.Remove(p)
			} else if os.Rename(p, p+deletedSuffix) == nil {
				paths = append(paths, p+deletedSuffix)
			}
		}
		s.release()
		if len(paths) > 0 {
			l.delMu.Lock()
			if l.pending == nil { // closed meanwhile: no timers any more
				l.delMu.Unlock()
				removeAll(paths)
				continue
			}
			var t *time.Timer
			t = time.AfterFunc(delay, func() {
				l.delMu.Lock()
				delete(l.pending, t)
				l.delMu.Unlock()
				removeAll(paths)
			})
			l.pending[t] = paths
			l.delMu.Unlock()
		}
	}
}

func removeAll(paths []string) {
	for _, p := range paths {
		_ = os.Remove(p)
	}
}

// Segments lists the segments, oldest first.
func (l *Log) Segments() []storage.SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]storage.SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = storage.SegmentInfo{
			BaseOffset: s.base, NextOffset: s.v.next, SizeBytes: s.v.size, MaxTimestamp: s.v.maxTs,
			Created: s.created, LastModified: s.v.modified, Active: i == len(l.segs)-1,
		}
	}
	return out
}

// Roll seals the active segment unless it is empty.
func (l *Log) Roll(ctx context.Context) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.state(ctx, "roll"); err != nil {
		return err
	}
	if l.segs[len(l.segs)-1].v.size == 0 {
		return nil
	}
	_, err := l.roll(l.cfg.Now(), l.end)
	return err
}

// Flush fsyncs everything appended so far and advances the recovery point.
func (l *Log) Flush(ctx context.Context) error {
	if err := l.state(ctx, "flush"); err != nil {
		return err
	}
	return l.flushTo(l.EndOffset())
}

// Close flushes, writes the active segment's indexes and the clean
// shutdown marker (so the next Open skips recovery), and closes the files.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("file: close %s: %w", l.id, storage.ErrClosed)
	}
	l.closed = true
	failed := l.failed
	l.mu.Unlock()
	defer l.b.forget(l)
	l.flushes.Wait()
	var err error
	if failed == nil {
		active := l.segs[len(l.segs)-1]
		v := active.v
		appendTime(&v, active.base)
		err = active.writeIndexes(&v, true)
		l.mu.Lock()
		active.v = v
		l.mu.Unlock()
		if err == nil {
			err = l.flushTo(l.end)
		}
		if err == nil {
			err = writeFileSync(filepath.Join(l.dir, cleanShutdownFile), nil)
		}
		if err == nil {
			err = syncDir(l.dir)
		}
	}
	for _, s := range l.segs {
		s.release()
	}
	l.delMu.Lock()
	for t, paths := range l.pending {
		if t.Stop() {
			removeAll(paths)
		}
	}
	l.pending = nil
	l.delMu.Unlock()
	if err != nil {
		return fmt.Errorf("file: close %s: %w", l.id, err)
	}
	return nil
}
