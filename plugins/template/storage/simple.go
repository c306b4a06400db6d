// Package simple is a Runnel storage backend plugin: the skeleton to copy
// when writing your own (see README.md). It keeps each partition's log in
// memory, as a list of segments holding copies of the appended batches,
// with one lock per partition: the plainest code that passes the
// conformance suite. Replace the storage (the segment type and what
// Append, Read, Truncate and DeleteBefore do with it) with yours; keep the
// checks, the offsets bookkeeping and the errors.
package simple

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage"
)

// Version is this plugin's version, reported by describe.
const Version = "0.1.0"

// Plugin is what main serves; a host could also link New in-process.
var Plugin = storage.Plugin{
	Info: plugin.Description{
		Name:    "simple", // the binary must be called runnel-storage-simple
		Version: Version,
		// Declare storage.CapPersistent when your data outlives the process.
		Summary: "template: partition logs in memory, one lock per partition",
	},
	New: func() (storage.Backend, error) { return New(), nil },
}

// Backend holds every partition's data. One Backend serves all the
// partitions of a broker, from many goroutines at once.
type Backend struct {
	mu     sync.Mutex
	parts  map[storage.PartitionID]*partition
	closed bool
}

// New returns an empty backend.
func New() *Backend { return &Backend{parts: map[storage.PartitionID]*partition{}} }

var _ storage.Backend = (*Backend)(nil)

// Name is the name topics use in runnel.storage.backend.
func (b *Backend) Name() string { return "simple" }

// Open returns the partition's log, creating the partition the first time.
// Every contract rule about arguments lives here: a bad name, a bad config,
// a second open handle and a closed backend are errors.
func (b *Backend) Open(ctx context.Context, id storage.PartitionID, cfg storage.Config) (storage.Log, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("simple: open %s: %w", id, err)
	}
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("simple: open: %w", err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("simple: open %s: %w", id, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("simple: open %s: %w", id, storage.ErrClosed)
	}
	p := b.parts[id]
	if p == nil {
		p = &partition{segs: []*segment{newSegment(0, cfg.Now())}}
		b.parts[id] = p
	}
	if p.open != nil {
		return nil, fmt.Errorf("simple: open %s: %w", id, storage.ErrAlreadyOpen)
	}
	l := &Log{b: b, id: id, p: p, cfg: cfg}
	p.open = l
	return l, nil
}

// Delete drops a partition's data, closing its open log first.
func (b *Backend) Delete(ctx context.Context, id storage.PartitionID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("simple: delete %s: %w", id, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.parts[id]; p != nil {
		if p.open != nil {
			p.open.closed.Store(true)
		}
		delete(b.parts, id)
	}
	return nil
}

// Close closes every open log. A persistent backend would keep its data.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.parts {
		if p.open != nil {
			p.open.closed.Store(true)
			p.open = nil
		}
	}
	b.parts = map[storage.PartitionID]*partition{}
	b.closed = true
	return nil
}

// partition is one partition's data; it outlives its Log handles.
type partition struct {
	mu         sync.RWMutex // writers: Append, Truncate, DeleteBefore, Roll
	segs       []*segment   // oldest first; the last one is active
	start, end int64
	open       *Log // guarded by Backend.mu
}

// segment is a run of batches, named by its base offset.
type segment struct {
	base, next        int64 // next: one past the last offset; base when empty
	size              int64
	maxTs, firstTs    int64 // -1 when no batch carried a timestamp
	created, modified time.Time
	batches           []stored
}

// stored is one batch, copied (the caller may reuse its buffer). Stored
// bytes are never changed, so a Read can hand them out.
type stored struct {
	h storage.BatchHeader
	b []byte
}

func newSegment(base int64, now time.Time) *segment {
	return &segment{base: base, next: base, maxTs: -1, firstTs: -1, created: now, modified: now}
}

func (s *segment) add(h storage.BatchHeader, b []byte, now time.Time) {
	if len(s.batches) == 0 {
		s.firstTs = h.MaxTimestamp
	}
	s.batches = append(s.batches, stored{h: h, b: append([]byte(nil), b...)})
	s.size += h.Size()
	s.next = h.LastOffset() + 1
	s.maxTs = max(s.maxTs, h.MaxTimestamp)
	s.modified = now
}

// Log is an open handle on a partition.
type Log struct {
	b      *Backend
	id     storage.PartitionID
	p      *partition
	cfg    storage.Config
	closed atomic.Bool
}

var _ storage.Log = (*Log)(nil)

// check is the start of every method with a context: a done context and a
// closed log are errors, wrapped so that errors.Is finds them.
func (l *Log) check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("simple: %s %s: %w", op, l.id, err)
	}
	if l.closed.Load() {
		return fmt.Errorf("simple: %s %s: %w", op, l.id, storage.ErrClosed)
	}
	return nil
}

// StartOffset is the first offset a reader may ask for.
func (l *Log) StartOffset() int64 {
	l.p.mu.RLock()
	defer l.p.mu.RUnlock()
	return l.p.start
}

// EndOffset is the offset the next batch gets.
func (l *Log) EndOffset() int64 {
	l.p.mu.RLock()
	defer l.p.mu.RUnlock()
	return l.p.end
}

// Append validates every batch first (storage.CheckAppend), so that a bad
// Append stores nothing, then stores them, rolling segments by Kafka's
// rules (storage.ShouldRoll).
func (l *Log) Append(ctx context.Context, batches []byte) (storage.AppendInfo, error) {
	if err := l.check(ctx, "append"); err != nil {
		return storage.AppendInfo{}, err
	}
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	info, err := storage.CheckAppend(batches, p.end, l.cfg.SegmentBytes)
	if err != nil {
		return info, fmt.Errorf("simple: append %s: %w", l.id, err)
	}
	now := l.cfg.Now()
	it := storage.Batches(batches, false)
	for it.Next() {
		h := it.Header()
		s := p.segs[len(p.segs)-1]
		state := storage.RollState{BaseOffset: s.base, Size: s.size, Empty: len(s.batches) == 0, FirstTimestamp: s.firstTs, Created: s.created}
		if storage.ShouldRoll(l.cfg, state, h.Size(), h.MaxTimestamp, h.LastOffset()) {
			s = newSegment(h.BaseOffset, now)
			p.segs = append(p.segs, s)
		}
		s.add(h, it.Batch(), now)
	}
	p.end = info.LastOffset + 1
	info.LogStartOffset = p.start
	return info, nil
}

// Read returns whole batches from one segment: the one holding offset (or
// the first after it), then more while they fit in maxBytes and start
// below maxOffset.
func (l *Log) Read(ctx context.Context, offset int64, maxBytes int32, maxOffset int64) (storage.ReadResult, error) {
	if err := l.check(ctx, "read"); err != nil {
		return storage.ReadResult{NextOffset: offset}, err
	}
	p := l.p
	p.mu.RLock()
	defer p.mu.RUnlock()
	res := storage.ReadResult{NextOffset: offset, StartOffset: p.start, EndOffset: p.end}
	if offset < p.start || offset > p.end {
		return res, fmt.Errorf("simple: read %s at %d, log has [%d, %d): %w", l.id, offset, p.start, p.end, storage.ErrOffsetOutOfRange)
	}
	s, i := p.locate(offset)
	if s == nil || s.batches[i].h.BaseOffset >= maxOffset {
		return res, nil
	}
	var out []byte
	for j := i; j < len(s.batches); j++ {
		b := s.batches[j]
		if j > i && (int64(len(out))+b.h.Size() > int64(maxBytes) || b.h.BaseOffset >= maxOffset) {
			break
		}
		out = append(out, b.b...)
		res.NextOffset = b.h.LastOffset() + 1
	}
	res.Batches = out
	return res, nil
}

// locate finds the first batch holding an offset >= offset.
func (p *partition) locate(offset int64) (*segment, int) {
	for _, s := range p.segs {
		if s.next <= offset {
			continue
		}
		for i, b := range s.batches {
			if b.h.LastOffset() >= offset {
				return s, i
			}
		}
	}
	return nil, 0
}

// OffsetForTimestamp finds the first record at or after the start offset
// with a timestamp >= ts; storage.FindTimestamp looks inside a batch.
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
		for _, b := range s.batches {
			if b.h.MaxTimestamp < ts || b.h.LastOffset() < p.start {
				continue
			}
			m, err := storage.FindTimestamp(b.b, ts, p.start)
			if err != nil {
				return -1, -1, fmt.Errorf("simple: offset for timestamp %s: %w: %w", l.id, storage.ErrCorrupt, err)
			}
			if m.Found {
				return m.Offset, m.Timestamp, nil
			}
		}
	}
	return -1, -1, nil
}

// Truncate removes every batch holding an offset >= offset; a batch
// straddling it goes whole.
func (l *Log) Truncate(ctx context.Context, offset int64) error {
	if err := l.check(ctx, "truncate"); err != nil {
		return err
	}
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset >= p.end {
		return nil
	}
	var keep []*segment
	for _, s := range p.segs {
		n := 0
		for n < len(s.batches) && s.batches[n].h.LastOffset() < offset {
			n++
		}
		if n == 0 && s.base >= offset {
			break // this segment and every later one go
		}
		if n < len(s.batches) {
			s.batches = s.batches[:n:n]
			s.size, s.maxTs, s.next = 0, -1, s.base
			for _, b := range s.batches {
				s.size += b.h.Size()
				s.maxTs = max(s.maxTs, b.h.MaxTimestamp)
				s.next = b.h.LastOffset() + 1
			}
		}
		keep = append(keep, s)
	}
	if len(keep) == 0 {
		keep = []*segment{newSegment(offset, l.cfg.Now())}
	}
	p.segs = keep
	p.end = offset
	p.start = min(p.start, offset)
	return nil
}

// DeleteBefore advances the start offset and drops the segments wholly
// below it; DeleteBefore(EndOffset) rolls first, so the log empties.
func (l *Log) DeleteBefore(ctx context.Context, offset int64) error {
	if err := l.check(ctx, "delete before"); err != nil {
		return err
	}
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset > p.end {
		return fmt.Errorf("simple: delete before %d in %s, log ends at %d: %w", offset, l.id, p.end, storage.ErrOffsetOutOfRange)
	}
	if offset <= p.start {
		return nil
	}
	if offset == p.end {
		l.roll()
	}
	p.start = offset
	for len(p.segs) > 1 && p.segs[0].next <= offset {
		p.segs = p.segs[1:]
	}
	return nil
}

// Segments lists the segments, oldest first.
func (l *Log) Segments() []storage.SegmentInfo {
	p := l.p
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]storage.SegmentInfo, len(p.segs))
	for i, s := range p.segs {
		out[i] = storage.SegmentInfo{BaseOffset: s.base, NextOffset: s.next, SizeBytes: s.size, MaxTimestamp: s.maxTs,
			Created: s.created, LastModified: s.modified, Active: i == len(p.segs)-1}
	}
	return out
}

// Roll starts a new segment at the end offset, unless the active one is
// empty.
func (l *Log) Roll(ctx context.Context) error {
	if err := l.check(ctx, "roll"); err != nil {
		return err
	}
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	l.roll()
	return nil
}

// roll is Roll with the partition's lock held.
func (l *Log) roll() {
	p := l.p
	if len(p.segs[len(p.segs)-1].batches) > 0 {
		p.segs = append(p.segs, newSegment(p.end, l.cfg.Now()))
	}
}

// Flush makes the appended data durable; nothing to do in memory. A
// persistent backend syncs its files here.
func (l *Log) Flush(ctx context.Context) error { return l.check(ctx, "flush") }

// Close releases the handle; the data stays for the next Open.
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.b.mu.Lock()
	if l.p.open == l {
		l.p.open = nil
	}
	l.b.mu.Unlock()
	return nil
}
