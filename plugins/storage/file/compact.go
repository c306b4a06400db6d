package file

import (
	"context"
	"fmt"
	"os"

	"github.com/runnel-io/runnel/sdk/storage"
)

var _ storage.Compactor = (*Log)(nil)

// cleanedSuffix names the files a compaction writes before they replace
// the segment's: "<base>.log.cleaned.tmp" and its indexes. Open removes
// *.tmp files, so a crash mid-compaction leaves the old segment as it was.
const cleanedSuffix = ".cleaned" + tmpSuffix

// Compact rewrites a sealed segment with what keep returns for each of its
// batches (see storage.Compactor).
//
// The new .log and its indexes are written to *.cleaned.tmp files from a
// pinned copy of the segment, without holding up appends or readers. The
// swap then, under the append lock: the old index files go first, then
// the new .log is renamed over the old one, then the new indexes take
// their names. A crash at any point leaves either the old .log or the new
// one, each either with its own indexes or with none (which Open
// rebuilds). Readers that pinned the old segment finish on its open file;
// it is closed after them.
func (l *Log) Compact(ctx context.Context, base int64, keep func(batch []byte) ([]byte, error)) (storage.CompactResult, error) {
	var res storage.CompactResult
	if err := l.state(ctx, "compact"); err != nil {
		return res, err
	}
	l.mu.RLock()
	var s *segment
	for i, c := range l.segs {
		if c.base == base && i < len(l.segs)-1 {
			s = c
		}
	}
	if s == nil {
		l.mu.RUnlock()
		return res, fmt.Errorf("file: compact %s segment %d: %w", l.id, base, storage.ErrSegmentChanged)
	}
	v := s.v
	s.mu.RLock()
	l.mu.RUnlock()
	ns, nv, err := l.writeCleaned(s, &v, keep, &res)
	s.mu.RUnlock()
	if err != nil {
		return res, err
	}
	discard := func() {
		_ = ns.f.Close()
		removeAll(cleanedFiles(s))
	}
	if err := ctx.Err(); err != nil {
		discard()
		return res, fmt.Errorf("file: compact %s: %w", l.id, err)
	}

	l.appendMu.Lock()
	if err := l.state(ctx, "compact"); err != nil {
		l.appendMu.Unlock()
		discard()
		return res, err
	}
	l.mu.RLock()
	idx := -1
	for i, c := range l.segs {
		if c == s && i < len(l.segs)-1 && c.v.size == v.size && c.v.next == v.next {
			idx = i
		}
	}
	l.mu.RUnlock()
	if idx < 0 {
		l.appendMu.Unlock()
		discard()
		return res, fmt.Errorf("file: compact %s segment %d: %w", l.id, base, storage.ErrSegmentChanged)
	}
	// Old indexes first: between here and the last rename, a crash leaves
	// a .log without indexes, which Open rebuilds from the .log itself.
	_ = os.Remove(s.stem + indexSuffix)
	_ = os.Remove(s.stem + timeIndexSuffix)
	err = os.Rename(s.stem+logSuffix+cleanedSuffix, s.stem+logSuffix)
	if err == nil {
		err = os.Rename(s.stem+indexSuffix+cleanedSuffix, s.stem+indexSuffix)
	}
	if err == nil {
		err = os.Rename(s.stem+timeIndexSuffix+cleanedSuffix, s.stem+timeIndexSuffix)
	}
	if err != nil {
		// The old .log may be gone under its name: stop serving rather
		// than guess; a restart recovers from whatever files are there.
		err = fmt.Errorf("file: compact %s segment %d: %w", l.id, base, err)
		l.fail(err)
		l.appendMu.Unlock()
		_ = ns.f.Close()
		return res, err
	}
	ns.idxDisk, ns.tidxDisk = len(nv.idx), len(nv.tidx)
	ns.v = nv
	l.mu.Lock()
	l.segs[idx] = ns
	l.mu.Unlock()
	l.appendMu.Unlock()
	_ = syncDir(l.dir)
	s.release() // once its last reader is done
	return res, nil
}

// cleanedFiles are a segment's compaction output files.
func cleanedFiles(s *segment) []string {
	return []string{s.stem + logSuffix + cleanedSuffix, s.stem + indexSuffix + cleanedSuffix, s.stem + timeIndexSuffix + cleanedSuffix}
}

// writeCleaned writes the kept batches of s (pinned by the caller) and
// their indexes to the *.cleaned.tmp files, fsynced, and returns the new
// segment (its file open) and its view.
func (l *Log) writeCleaned(s *segment, v *view, keep func([]byte) ([]byte, error), res *storage.CompactResult) (*segment, view, error) {
	f, err := os.OpenFile(s.stem+logSuffix+cleanedSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, view{}, fmt.Errorf("file: compact %s: %w", l.id, err)
	}
	ns := &segment{base: s.base, stem: s.stem, f: f, created: s.created, firstTs: -1}
	fail := func(err error) (*segment, view, error) {
		_ = f.Close()
		removeAll(cleanedFiles(s))
		return nil, view{}, err
	}
	nv := view{next: s.base, maxTs: -1, maxTsOff: -1, modified: v.modified}
	ix := indexer{interval: int64(l.cfg.IndexIntervalBytes), base: s.base}
	var since int64
	w := &window{f: s.f, limit: v.size, chunk: 1 << 20}
	for pos := int64(0); pos < v.size; {
		h, err := w.header(pos)
		if err != nil {
			return fail(fmt.Errorf("file: compact %s: %w", l.id, s.corrupt(pos, err)))
		}
		b, err := w.peek(pos, int(h.Size()))
		if err != nil {
			return fail(fmt.Errorf("file: compact %s: %w", l.id, s.corrupt(pos, err)))
		}
		res.BatchesBefore++
		res.BytesBefore += h.Size()
		kept, err := keep(b)
		if err != nil {
			return fail(err)
		}
		pos += h.Size()
		if kept == nil {
			continue
		}
		kh, err := storage.CheckBatch(kept)
		switch {
		case err != nil:
			return fail(fmt.Errorf("file: compact %s: kept batch at %d: %w", l.id, h.BaseOffset, err))
		case kh.Size() != int64(len(kept)) || kh.BaseOffset < h.BaseOffset || kh.LastOffset() > h.LastOffset() || kh.BaseOffset < nv.next:
			return fail(fmt.Errorf("file: compact %s: kept batch [%d, %d] is not within [%d, %d]: %w",
				l.id, kh.BaseOffset, kh.LastOffset(), h.BaseOffset, h.LastOffset(), storage.ErrInvalidBatch))
		}
		if _, err := f.WriteAt(kept, nv.size); err != nil {
			return fail(fmt.Errorf("file: compact %s: %w", l.id, err))
		}
		if nv.size == 0 {
			ns.firstTs = kh.MaxTimestamp
		}
		ix.add(&nv, &since, &kh, nv.size)
		res.BatchesAfter++
		res.BytesAfter += kh.Size()
	}
	// A sealed segment's time index ends with its max timestamp, as a
	// roll writes it.
	appendTime(&nv, s.base)
	ns.sinceIndex = since
	// The segment's age (its file's modification time after a restart)
	// decides when its tombstones may go: compaction must not renew it.
	_ = os.Chtimes(s.stem+logSuffix+cleanedSuffix, v.modified, v.modified)
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("file: compact %s: %w", l.id, err))
	}
	for _, ix := range []struct {
		path    string
		entries []byte
	}{{s.stem + indexSuffix + cleanedSuffix, nv.idx}, {s.stem + timeIndexSuffix + cleanedSuffix, nv.tidx}} {
		if _, err := writeIndexFile(ix.path, ix.entries, 0, true); err != nil {
			return fail(fmt.Errorf("file: compact %s: %w", l.id, err))
		}
	}
	ns.synced.Store(true)
	return ns, nv, nil
}
