package memory

import (
	"context"
	"fmt"

	"github.com/runnel-io/runnel/sdk/storage"
)

var _ storage.Compactor = (*Log)(nil)

// Compact rewrites a sealed segment with what keep returns for each of its
// batches (see storage.Compactor). A sealed segment's bytes never change,
// so the new segment is built from them without a lock and swapped in
// under the append lock; readers holding the old bytes keep them.
func (l *Log) Compact(ctx context.Context, base int64, keep func(batch []byte) ([]byte, error)) (storage.CompactResult, error) {
	var res storage.CompactResult
	if err := l.check(ctx, "compact"); err != nil {
		return res, err
	}
	p := l.p
	find := func() (*segment, int) {
		for i, s := range p.segs {
			if s.base == base && i < len(p.segs)-1 {
				return s, i
			}
		}
		return nil, -1
	}
	p.mu.RLock()
	old, _ := find()
	var snap segment
	if old != nil {
		snap = *old
	}
	p.mu.RUnlock()
	if old == nil {
		return res, fmt.Errorf("memory: compact %s segment %d: %w", l.id, base, storage.ErrSegmentChanged)
	}
	ns := newSegment(base, snap.created)
	ns.modified = snap.modified
	for _, ref := range snap.batches {
		res.BatchesBefore++
		res.BytesBefore += int64(ref.size)
		kept, err := keep(snap.bytes(ref))
		if err != nil {
			return res, err
		}
		if kept == nil {
			continue
		}
		h, err := storage.CheckBatch(kept)
		switch {
		case err != nil:
			return res, fmt.Errorf("memory: compact %s: kept batch at %d: %w", l.id, ref.base, err)
		case h.Size() != int64(len(kept)) || h.BaseOffset < ref.base || h.LastOffset() > ref.last || h.BaseOffset < ns.next:
			return res, fmt.Errorf("memory: compact %s: kept batch [%d, %d] is not within [%d, %d]: %w",
				l.id, h.BaseOffset, h.LastOffset(), ref.base, ref.last, storage.ErrInvalidBatch)
		}
		ns.add(h, kept, snap.modified)
		res.BatchesAfter++
		res.BytesAfter += h.Size()
	}
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if err := l.check(ctx, "compact"); err != nil {
		return res, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, i := find(); cur != old || cur.next != snap.next || len(cur.batches) != len(snap.batches) {
		return res, fmt.Errorf("memory: compact %s segment %d: %w", l.id, base, storage.ErrSegmentChanged)
	} else {
		p.segs[i] = ns
	}
	return res, nil
}
