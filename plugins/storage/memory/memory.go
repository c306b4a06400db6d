// Package memory is the in-memory storage backend: the storage.Log contract
// with the file backend's semantics (segments, rolling, truncation,
// DeleteBefore, timestamp lookup) and nothing on disk. Data outlives a
// Log's Close (a later Open of the partition sees it) but not the Backend's
// process. It suits tests, development and caches.
//
// Batches live in large chunks of memory; Read hands out sub-slices of
// them without copying. Stored bytes are never overwritten: an append
// writes past every published byte, and a truncation retires the chunk it
// cut into, so a slice a reader holds stays valid and unchanged. Appends
// copy the caller's bytes before publishing them under a short write lock;
// readers take a read lock for a binary search, never for I/O.
package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

// chunkSize is the default size of a memory chunk; a larger batch gets a
// chunk of its own size. Reads return bytes from one chunk at a time.
const chunkSize = 1 << 20

// Backend keeps partition logs in memory.
type Backend struct {
	mu     sync.Mutex
	parts  map[storage.PartitionID]*partition
	closed bool
}

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{parts: make(map[storage.PartitionID]*partition)}
}

var _ storage.Backend = (*Backend)(nil)

// Name returns "memory".
func (b *Backend) Name() string { return "memory" }

// Open returns the partition's log, creating it empty the first time.
func (b *Backend) Open(ctx context.Context, p storage.PartitionID, cfg storage.Config) (storage.Log, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: open %s: %w", p, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("memory: open: %w", err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("memory: open %s: %w", p, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("memory: open %s: %w", p, storage.ErrClosed)
	}
	part := b.parts[p]
	if part == nil {
		part = &partition{}
		part.segs = []*segment{newSegment(0, cfg.Now())}
		b.parts[p] = part
	}
	if part.open != nil {
		return nil, fmt.Errorf("memory: open %s: %w", p, storage.ErrAlreadyOpen)
	}
	l := &Log{b: b, id: p, p: part, cfg: cfg}
	part.open = l
	return l, nil
}

// Delete drops the partition's data, closing its open Log first.
func (b *Backend) Delete(ctx context.Context, p storage.PartitionID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete %s: %w", p, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if part := b.parts[p]; part != nil {
		if part.open != nil {
			part.open.closed.Store(true)
			part.open = nil
		}
		delete(b.parts, p)
	}
	return nil
}

// Close closes every open Log and drops all data.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, part := range b.parts {
		if part.open != nil {
			part.open.closed.Store(true)
			part.open = nil
		}
	}
	b.parts = map[storage.PartitionID]*partition{}
	b.closed = true
	return nil
}

// partition is the data of one partition; it outlives its Log handles.
//
// Lock order: appendMu, then mu. appendMu serializes mutators, which read
// the state freely and change it under mu; readers hold mu.RLock only.
type partition struct {
	appendMu sync.Mutex
	mu       sync.RWMutex
	segs     []*segment
	start    int64
	end      int64
	open     *Log // guarded by Backend.mu
}

// segment is a run of batches. Its batch refs and chunks only grow by
// append while published (readers keep old slice headers safely);
// truncation reslices them with capped capacity so that later appends
// never write into memory a reader may still see.
type segment struct {
	base     int64
	next     int64
	size     int64
	maxTs    int64
	firstTs  int64
	created  time.Time
	modified time.Time
	batches  []batchRef
	chunks   [][]byte // each chunk's full capacity, never resliced
	used     int      // bytes used in the last chunk
}

// batchRef locates one stored batch.
type batchRef struct {
	base, last int64
	maxTs      int64
	prefMaxTs  int64 // max of maxTs over this and every earlier batch of the segment
	chunk      int32
	pos        int32
	size       int32
}

func newSegment(base int64, now time.Time) *segment {
	return &segment{base: base, next: base, maxTs: -1, firstTs: -1, created: now, modified: now}
}

// Log is an open handle on a partition's data.
type Log struct {
	b      *Backend
	id     storage.PartitionID
	p      *partition
	cfg    storage.Config
	closed atomic.Bool
}

var _ storage.Log = (*Log)(nil)

func (l *Log) check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s %s: %w", op, l.id, err)
	}
	if l.closed.Load() {
		return fmt.Errorf("memory: %s %s: %w", op, l.id, storage.ErrClosed)
	}
	return nil
}

// StartOffset returns the log start offset.
func (l *Log) StartOffset() int64 {
	l.p.mu.RLock()
	defer l.p.mu.RUnlock()
	return l.p.start
}

// EndOffset returns the log end offset.
func (l *Log) EndOffset() int64 {
	l.p.mu.RLock()
	defer l.p.mu.RUnlock()
	return l.p.end
}

// Append validates and stores whole batches.
func (l *Log) Append(ctx context.Context, batches []byte) (storage.AppendInfo, error) {
	p := l.p
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if err := l.check(ctx, "append"); err != nil {
		return storage.AppendInfo{}, err
	}
	info, err := storage.CheckAppend(batches, p.end, l.cfg.SegmentBytes)
	if err != nil {
		return info, fmt.Errorf("memory: append %s: %w", l.id, err)
	}
	// Copy into chunks first: nothing written past the published state is
	// visible to readers, so this needs no lock. Rolls create segments that
	// are published together with the batches.
	active := p.segs[len(p.segs)-1]
	work := *active // the appender's copy; published below
	var rolled []*segment
	now := l.cfg.Now()
	it := storage.Batches(batches, false)
	for it.Next() {
		h, b := it.Header(), it.Batch()
		state := storage.RollState{BaseOffset: work.base, Size: work.size, Empty: len(work.batches) == 0, FirstTimestamp: work.firstTs, Created: work.created}
		if storage.ShouldRoll(l.cfg, state, h.Size(), h.MaxTimestamp, h.LastOffset()) {
			done := work
			rolled = append(rolled, &done)
			work = *newSegment(h.BaseOffset, now)
		}
		work.add(h, b, now)
	}
	p.mu.Lock()
	if len(rolled) == 0 {
		*active = work
	} else {
		*active = *rolled[0]
		p.segs = append(p.segs, rolled[1:]...)
		last := work
		p.segs = append(p.segs, &last)
	}
	p.end = info.LastOffset + 1
	info.LogStartOffset = p.start
	p.mu.Unlock()
	return info, nil
}

// add copies one batch into the segment's chunks and records it.
func (s *segment) add(h storage.BatchHeader, b []byte, now time.Time) {
	if len(s.chunks) == 0 || len(s.chunks[len(s.chunks)-1])-s.used < len(b) {
		s.chunks = append(s.chunks, make([]byte, max(chunkSize, len(b))))
		s.used = 0
	}
	ci := len(s.chunks) - 1
	copy(s.chunks[ci][s.used:], b)
	pref := h.MaxTimestamp
	if n := len(s.batches); n > 0 {
		pref = max(pref, s.batches[n-1].prefMaxTs)
	} else {
		s.firstTs = h.MaxTimestamp
	}
	s.batches = append(s.batches, batchRef{
		base: h.BaseOffset, last: h.LastOffset(), maxTs: h.MaxTimestamp, prefMaxTs: pref,
		chunk: int32(ci), pos: int32(s.used), size: int32(len(b)),
	})
	s.used += len(b)
	s.size += int64(len(b))
	s.next = h.LastOffset() + 1
	s.maxTs = max(s.maxTs, h.MaxTimestamp)
	s.modified = now
}

func (s *segment) bytes(r batchRef) []byte {
	return s.chunks[r.chunk][r.pos : r.pos+r.size : r.pos+r.size]
}

// Read returns whole batches from one chunk, without copying.
func (l *Log) Read(ctx context.Context, offset int64, maxBytes int32, maxOffset int64) (storage.ReadResult, error) {
	if err := l.check(ctx, "read"); err != nil {
		return storage.ReadResult{}, err
	}
	p := l.p
	p.mu.RLock()
	defer p.mu.RUnlock()
	res := storage.ReadResult{NextOffset: offset, StartOffset: p.start, EndOffset: p.end}
	if offset < p.start || offset > p.end {
		return res, fmt.Errorf("memory: read %s at %d, log has [%d, %d): %w", l.id, offset, p.start, p.end, storage.ErrOffsetOutOfRange)
	}
	seg, i := p.locate(offset)
	if seg == nil || seg.batches[i].base >= maxOffset {
		return res, nil
	}
	first := seg.batches[i]
	limit := int64(first.pos) + int64(max(maxBytes, 0))
	// The last batch to return: same chunk, ends within limit, starts below maxOffset.
	j := i + sort.Search(len(seg.batches)-i-1, func(k int) bool {
		r := seg.batches[i+1+k]
		return r.chunk != first.chunk || int64(r.pos)+int64(r.size) > limit || r.base >= maxOffset
	})
	last := seg.batches[j]
	res.Batches = seg.chunks[first.chunk][first.pos : last.pos+last.size : last.pos+last.size]
	res.NextOffset = last.last + 1
	return res, nil
}

// locate finds the first batch holding an offset >= offset, or nil.
func (p *partition) locate(offset int64) (*segment, int) {
	si := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > offset }) - 1
	for si = max(si, 0); si < len(p.segs); si++ {
		s := p.segs[si]
		i := sort.Search(len(s.batches), func(i int) bool { return s.batches[i].last >= offset })
		if i < len(s.batches) {
			return s, i
		}
	}
	return nil, 0
}

// OffsetForTimestamp finds the first record at or after the start offset
// with a timestamp >= ts.
func (l *Log) OffsetForTimestamp(ctx context.Context, ts int64) (int64, int64, error) {
	if err := l.check(ctx, "offset for timestamp"); err != nil {
		return -1, -1, err
	}
	p := l.p
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, s := range p.segs {
		if s.maxTs < ts || s.next <= p.start {
			continue
		}
		// prefMaxTs never decreases: skip every batch whose prefix max is below ts.
		from := sort.Search(len(s.batches), func(i int) bool { return s.batches[i].prefMaxTs >= ts })
		for _, r := range s.batches[from:] {
			if r.maxTs < ts || r.last < p.start {
				continue
			}
			m, err := storage.FindTimestamp(s.bytes(r), ts, p.start)
			if err != nil {
				return -1, -1, fmt.Errorf("memory: offset for timestamp %s at %d: %w: %w", l.id, r.base, storage.ErrCorrupt, err)
			}
			if m.Found {
				return m.Offset, m.Timestamp, nil
			}
		}
	}
	return -1, -1, nil
}

// Truncate removes every batch holding an offset >= offset.
func (l *Log) Truncate(ctx context.Context, offset int64) error {
	p := l.p
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if err := l.check(ctx, "truncate"); err != nil {
		return err
	}
	if offset >= p.end {
		return nil
	}
	now := l.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset < p.segs[0].base {
		p.segs = []*segment{newSegment(offset, now)}
		p.start, p.end = offset, offset
		return nil
	}
	si := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > offset })
	p.segs = p.segs[:si:si]
	old := p.segs[si-1]
	s := *old
	k := sort.Search(len(s.batches), func(i int) bool { return s.batches[i].last >= offset })
	s.batches = s.batches[:k:k]
	s.chunks = s.chunks[:len(s.chunks):len(s.chunks)]
	s.size, s.next, s.maxTs = 0, s.base, -1
	if k > 0 {
		r := s.batches[k-1]
		s.chunks = s.chunks[: r.chunk+1 : r.chunk+1]
		s.next, s.maxTs = r.last+1, r.prefMaxTs
		for _, b := range s.batches {
			s.size += int64(b.size)
		}
	} else {
		s.chunks, s.firstTs = nil, -1
	}
	// Retire the chunk cut into: the next append starts a new one, so bytes
	// readers may hold are never overwritten.
	if len(s.chunks) > 0 {
		s.used = len(s.chunks[len(s.chunks)-1])
	}
	s.modified = now
	p.segs[si-1] = &s
	p.end = offset
	p.start = min(p.start, offset)
	return nil
}

// DeleteBefore advances the start offset and drops segments entirely below it.
func (l *Log) DeleteBefore(ctx context.Context, offset int64) error {
	p := l.p
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if err := l.check(ctx, "delete before"); err != nil {
		return err
	}
	if offset > p.end {
		return fmt.Errorf("memory: delete %s before %d, end offset is %d: %w", l.id, offset, p.end, storage.ErrOffsetOutOfRange)
	}
	if offset <= p.start {
		return nil
	}
	now := l.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start = offset
	if active := p.segs[len(p.segs)-1]; active.next <= offset && len(active.batches) > 0 {
		p.segs = append(p.segs, newSegment(p.end, now))
	}
	n := 0
	for n < len(p.segs)-1 && p.segs[n].next <= offset {
		n++
	}
	p.segs = append([]*segment(nil), p.segs[n:]...)
	return nil
}

// Segments lists the segments, oldest first.
func (l *Log) Segments() []storage.SegmentInfo {
	p := l.p
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]storage.SegmentInfo, len(p.segs))
	for i, s := range p.segs {
		out[i] = storage.SegmentInfo{
			BaseOffset: s.base, NextOffset: s.next, SizeBytes: s.size, MaxTimestamp: s.maxTs,
			Created: s.created, LastModified: s.modified, Active: i == len(p.segs)-1,
		}
	}
	return out
}

// Roll starts a new segment at the end offset unless the active one is empty.
func (l *Log) Roll(ctx context.Context) error {
	p := l.p
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if err := l.check(ctx, "roll"); err != nil {
		return err
	}
	if len(p.segs[len(p.segs)-1].batches) == 0 {
		return nil
	}
	s := newSegment(p.end, l.cfg.Now())
	p.mu.Lock()
	p.segs = append(p.segs, s)
	p.mu.Unlock()
	return nil
}

// Flush does nothing: memory has nothing to make durable.
func (l *Log) Flush(ctx context.Context) error { return l.check(ctx, "flush") }

// Close releases the handle; the data stays in the Backend.
func (l *Log) Close() error {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if l.closed.Swap(true) {
		return fmt.Errorf("memory: close %s: %w", l.id, storage.ErrClosed)
	}
	if l.p.open == l {
		l.p.open = nil
	}
	return nil
}
