package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// NewTailCache wraps l with a cache of its most recent batches, at most
// about maxBytes of them, so that reads near the end of the log (consumers
// and followers that keep up) are answered without calling l. It is meant
// for logs behind a plugin process, where every call crosses the process
// boundary; a log that implements FileReader is better read with sendfile
// and should not be wrapped (the wrapper does not implement FileReader).
//
// The cache learns batches from the Appends made through it, so it always
// holds a contiguous run of the log's newest batches. Truncate and
// DeleteBefore through it drop what they remove. It checks before every
// read that l's end offset (and, for a plugin log, the process generation)
// is still what it last saw, and steps aside otherwise, so a plugin restart
// or a change made behind its back never serves stale bytes.
//
// Cached bytes are copied once, on Append, into append-only arenas that are
// never overwritten; reads return sub-slices of them, which stay valid
// after eviction. A read stops at an arena's end, as reads of a backend
// stop at a segment's end.
func NewTailCache(l Log, maxBytes int) Log {
	c := &tailCache{Log: l, max: maxBytes, arenaSize: min(max(maxBytes/4, 64<<10), 4<<20)}
	if g, ok := l.(interface{ generation() uint64 }); ok {
		c.generation = g.generation
	}
	if g, ok := l.(interface{ isClosed() bool }); ok {
		c.innerClosed = g.isClosed
	}
	return c
}

type tailCache struct {
	Log
	max        int
	arenaSize  int
	generation func() uint64 // nil for logs that are never reopened
	// innerClosed tells, for logs that know without a call, that the log
	// was closed (by its Backend's Delete or Close); closed is set by
	// CachedBackend for the others. A closed log's reads go to it, for
	// its ErrClosed.
	innerClosed func() bool
	closed      atomic.Bool

	// wmu serializes the mutating calls made through the cache, so that
	// the end offset read before one is the one it appended after.
	wmu sync.Mutex

	mu     sync.RWMutex
	arenas []*arena // oldest first; appends go to the last one
	sealed bool     // the last arena takes no more appends (after a truncation)
	ents   []cacheEntry
	end    int64  // the log end offset the entries lead up to
	gen    uint64 // the log generation the entries belong to
	used   int    // arena capacity held

	hits, misses atomic.Int64
}

type arena struct{ buf []byte }

// cacheEntry is one cached batch.
type cacheEntry struct {
	base, last int64
	a          *arena
	pos, size  int
}

func (c *tailCache) curGen() uint64 {
	if c.generation == nil {
		return 0
	}
	return c.generation()
}

// reset forgets everything cached; the caller holds mu.
func (c *tailCache) reset() {
	c.arenas, c.ents, c.used, c.sealed = nil, nil, 0, false
}

func (c *tailCache) resetLocked() {
	c.mu.Lock()
	c.reset()
	c.mu.Unlock()
}

// definitelyNotStored reports whether a failed Append certainly stored
// nothing: the backend refused the batches. Other failures (a plugin that
// died mid-call, a context that ended) leave the log's tail unknown.
func definitelyNotStored(err error) bool {
	return errors.Is(err, ErrInvalidBatch) || errors.Is(err, ErrBatchTooLarge) || errors.Is(err, ErrNotContiguous)
}

func (c *tailCache) Append(ctx context.Context, batches []byte) (AppendInfo, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	before := c.Log.EndOffset()
	info, err := c.Log.Append(ctx, batches)
	if err != nil {
		if !definitelyNotStored(err) {
			c.resetLocked()
		}
		return info, err
	}
	c.add(batches, before)
	return info, nil
}

// add caches the batches just appended at before.
func (c *tailCache) add(batches []byte, before int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := c.curGen()
	if c.end != before || c.gen != gen {
		c.reset() // what is cached no longer leads up to these batches
	}
	c.end, c.gen = c.Log.EndOffset(), gen
	if len(batches) > c.max {
		c.reset()
		return
	}
	var a *arena
	if n := len(c.arenas); n > 0 && !c.sealed {
		a = c.arenas[n-1]
	}
	if a == nil || cap(a.buf)-len(a.buf) < len(batches) {
		a = &arena{buf: make([]byte, 0, max(c.arenaSize, len(batches)))}
		c.arenas = append(c.arenas, a)
		c.used += cap(a.buf)
		c.sealed = false
	}
	pos := len(a.buf)
	a.buf = append(a.buf, batches...)
	it := Batches(a.buf[pos:], false)
	for it.Next() {
		h := it.Header()
		c.ents = append(c.ents, cacheEntry{base: h.BaseOffset, last: h.LastOffset(), a: a, pos: pos + it.Pos(), size: int(h.Size())})
	}
	c.evict()
}

// evict drops the oldest arenas, and the entries in them, until the cache
// fits its budget; the newest arena always stays.
func (c *tailCache) evict() {
	for c.used > c.max && len(c.arenas) > 1 {
		old := c.arenas[0]
		c.arenas[0] = nil
		c.arenas = c.arenas[1:]
		c.used -= cap(old.buf)
		i := 0
		for i < len(c.ents) && c.ents[i].a == old {
			i++
		}
		c.ents = c.ents[i:]
	}
	c.compact()
}

// compact copies the live entries to a fresh slice once the dead prefix
// outweighs them, so the entry slice does not grow without bound.
func (c *tailCache) compact() {
	if cap(c.ents) > 64 && len(c.ents) < cap(c.ents)/4 {
		c.ents = append(make([]cacheEntry, 0, 2*len(c.ents)), c.ents...)
	}
}

func (c *tailCache) Read(ctx context.Context, offset int64, maxBytes int32, maxOffset int64) (ReadResult, error) {
	if err := ctx.Err(); err != nil {
		return ReadResult{NextOffset: offset}, fmt.Errorf("tail cache: read: %w", err)
	}
	if r, ok := c.cached(offset, maxBytes, maxOffset); ok {
		c.hits.Add(1)
		return r, nil
	}
	c.misses.Add(1)
	return c.Log.Read(ctx, offset, maxBytes, maxOffset)
}

// cached answers a read from the cache when it can: the offset lies within
// the cached run (or at its end) and the log has not changed behind the
// cache's back. Out-of-range offsets go to the log, for its error.
func (c *tailCache) cached(offset int64, maxBytes int32, maxOffset int64) (ReadResult, bool) {
	if c.closed.Load() || c.innerClosed != nil && c.innerClosed() {
		return ReadResult{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.ents) == 0 || offset < c.ents[0].base {
		return ReadResult{}, false
	}
	start, end := c.Log.StartOffset(), c.Log.EndOffset()
	if end != c.end || c.gen != c.curGen() || offset < start || offset > end {
		return ReadResult{}, false
	}
	res := ReadResult{NextOffset: offset, StartOffset: start, EndOffset: end}
	i := sort.Search(len(c.ents), func(k int) bool { return c.ents[k].last >= offset })
	if i == len(c.ents) || c.ents[i].base >= maxOffset {
		return res, true
	}
	first := c.ents[i]
	limit := first.pos + int(max(maxBytes, 0))
	j := i
	for j+1 < len(c.ents) {
		n, p := c.ents[j+1], c.ents[j]
		if n.a != first.a || n.pos != p.pos+p.size || n.pos+n.size > limit || n.base >= maxOffset {
			break
		}
		j++
	}
	last := c.ents[j]
	stop := last.pos + last.size
	res.Batches = first.a.buf[first.pos:stop:stop]
	res.NextOffset = last.last + 1
	return res, true
}

func (c *tailCache) Truncate(ctx context.Context, offset int64) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Log.Truncate(ctx, offset); err != nil {
		c.resetLocked()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := sort.Search(len(c.ents), func(k int) bool { return c.ents[k].last >= offset })
	if n == 0 {
		c.reset()
	} else {
		c.ents = c.ents[:n:n] // later appends must not write over the dropped entries' slots
		c.sealed = true       // nor next to the dropped bytes
	}
	c.end, c.gen = c.Log.EndOffset(), c.curGen()
	return nil
}

func (c *tailCache) DeleteBefore(ctx context.Context, offset int64) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Log.DeleteBefore(ctx, offset); err != nil {
		if !errors.Is(err, ErrOffsetOutOfRange) {
			c.resetLocked()
		}
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	start := c.Log.StartOffset()
	i := sort.Search(len(c.ents), func(k int) bool { return c.ents[k].last >= start })
	c.ents = c.ents[i:]
	for len(c.arenas) > 1 && (len(c.ents) == 0 || c.ents[0].a != c.arenas[0]) {
		c.used -= cap(c.arenas[0].buf)
		c.arenas[0] = nil
		c.arenas = c.arenas[1:]
	}
	c.compact()
	return nil
}

func (c *tailCache) Roll(ctx context.Context) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Log.Roll(ctx)
}

func (c *tailCache) Close() error {
	c.closed.Store(true)
	err := c.Log.Close()
	c.resetLocked()
	return err
}

// CachedBackend wraps every log b opens with a tail cache of maxBytes
// (NewTailCache).
func CachedBackend(b Backend, maxBytes int) Backend {
	return &cachedBackend{Backend: b, max: maxBytes, open: map[*tailCache]PartitionID{}}
}

// cachedBackend keeps its caches so that Delete and Close, which close
// the logs underneath, stop them from answering reads.
type cachedBackend struct {
	Backend
	max int

	mu   sync.Mutex
	open map[*tailCache]PartitionID
}

func (b *cachedBackend) Open(ctx context.Context, p PartitionID, cfg Config) (Log, error) {
	l, err := b.Backend.Open(ctx, p, cfg)
	if err != nil {
		return nil, err
	}
	c := NewTailCache(l, b.max).(*tailCache)
	b.mu.Lock()
	for o, id := range b.open {
		if o.closed.Load() || id == p {
			delete(b.open, o) // closed by its user, or an earlier handle Delete closed
		}
	}
	b.open[c] = p
	b.mu.Unlock()
	return c, nil
}

func (b *cachedBackend) Delete(ctx context.Context, p PartitionID) error {
	if err := b.Backend.Delete(ctx, p); err != nil {
		return err
	}
	b.mu.Lock()
	for c, id := range b.open {
		if id == p {
			c.closed.Store(true)
			c.resetLocked()
			delete(b.open, c)
		}
	}
	b.mu.Unlock()
	return nil
}

func (b *cachedBackend) Close() error {
	err := b.Backend.Close()
	b.mu.Lock()
	for c := range b.open {
		c.closed.Store(true)
		c.resetLocked()
	}
	b.open = map[*tailCache]PartitionID{}
	b.mu.Unlock()
	return err
}
