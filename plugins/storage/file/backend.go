package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

// Backend keeps partition logs in directories of Kafka-layout segment files.
type Backend struct {
	root string

	mu     sync.Mutex
	open   map[string]*Log                // by partition directory; nil while opening
	dirs   map[storage.PartitionID]string // the root each partition was last opened under
	closed bool
}

var _ storage.Backend = (*Backend)(nil)

// New returns a backend whose default root directory is root (Kafka's
// log.dirs); Config.Dir overrides it per partition.
func New(root string) *Backend {
	return &Backend{root: root, open: map[string]*Log{}, dirs: map[storage.PartitionID]string{}}
}

// Name returns "file".
func (b *Backend) Name() string { return "file" }

// Open opens the partition's log in <root>/<topic>-<partition>/, creating
// it when missing and recovering it after an unclean shutdown.
func (b *Backend) Open(ctx context.Context, p storage.PartitionID, cfg storage.Config) (storage.Log, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file: open %s: %w", p, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("file: open: %w", err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("file: open %s: %w", p, err)
	}
	root := cfg.Dir
	if root == "" {
		root = b.root
	}
	if root == "" {
		return nil, fmt.Errorf("file: open %s: %w: no data directory", p, storage.ErrInvalidConfig)
	}
	dir := filepath.Join(root, p.String())
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("file: open %s: %w", p, storage.ErrClosed)
	}
	if _, busy := b.open[dir]; busy {
		b.mu.Unlock()
		return nil, fmt.Errorf("file: open %s: %w", p, storage.ErrAlreadyOpen)
	}
	b.open[dir] = nil
	b.dirs[p] = root
	b.mu.Unlock()

	l, err := openLog(b, p, dir, cfg)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		delete(b.open, dir)
		return nil, fmt.Errorf("file: open %s: %w", p, err)
	}
	if b.closed {
		delete(b.open, dir)
		b.mu.Unlock()
		_ = l.Close()
		b.mu.Lock()
		return nil, fmt.Errorf("file: open %s: %w", p, storage.ErrClosed)
	}
	b.open[dir] = l
	return l, nil
}

func (b *Backend) forget(l *Log) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open[l.dir] == l {
		delete(b.open, l.dir)
	}
}

// Delete closes the partition's log if open, renames its directory to
// "<topic>-<partition>.<random>-delete" (as Kafka marks a deleted
// partition, so a crash mid-way leaves no half-deleted live directory)
// and removes it.
func (b *Backend) Delete(ctx context.Context, p storage.PartitionID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: delete %s: %w", p, err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("file: delete: %w", err)
	}
	b.mu.Lock()
	root, ok := b.dirs[p]
	if !ok {
		root = b.root
	}
	dir := filepath.Join(root, p.String())
	l := b.open[dir]
	delete(b.dirs, p)
	b.mu.Unlock()
	if l != nil {
		if err := l.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			return fmt.Errorf("file: delete %s: %w", p, err)
		}
	}
	if root == "" {
		return nil
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	doomed := dir + "." + hex.EncodeToString(rnd[:]) + "-delete"
	if err := os.Rename(dir, doomed); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("file: delete %s: %w", p, err)
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("file: delete %s: %w", p, err)
	}
	return nil
}

// Close closes every open log (cleanly, so the next Open skips recovery).
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	var logs []*Log
	for _, l := range b.open {
		if l != nil {
			logs = append(logs, l)
		}
	}
	b.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseBase reads the base offset from a segment file name.
func parseBase(name, suffix string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	return base, err == nil && base >= 0
}

// openLog loads a partition directory. After a clean shutdown it trusts
// the index files (after a sanity check); otherwise it rescans every
// segment from the one holding the recovery point, rebuilding indexes and
// cutting a torn or corrupt tail. Segments after a cut are removed.
func openLog(b *Backend, p storage.PartitionID, dir string, cfg storage.Config) (*Log, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var bases []int64
	logs := map[int64]bool{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, deletedSuffix) || strings.HasSuffix(name, tmpSuffix) {
			_ = os.Remove(filepath.Join(dir, name))
		} else if base, ok := parseBase(name, logSuffix); ok {
			bases = append(bases, base)
			logs[base] = true
		}
	}
	for _, e := range entries {
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if base, ok := parseBase(e.Name(), suf); ok && !logs[base] {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	_, err = os.Stat(filepath.Join(dir, cleanShutdownFile))
	clean := err == nil
	start, hasStart, err := readCheckpoint(dir, startCheckpoint, p)
	if err != nil {
		return nil, err
	}
	rp, _, err := readCheckpoint(dir, recoveryCheckpoint, p)
	if err != nil {
		rp = 0 // only costs a longer recovery
	}

	l := &Log{b: b, id: p, dir: dir, cfg: cfg, pending: map[*time.Timer][]string{}}
	now := cfg.Now()
	fail := func(err error) (*Log, error) {
		for _, s := range l.segs {
			_ = s.f.Close()
		}
		return nil, err
	}
	for i, base := range bases {
		s, err := openSegment(dir, base, false, now)
		if err != nil {
			return fail(err)
		}
		l.segs = append(l.segs, s)
		fi, err := s.f.Stat()
		if err != nil {
			return fail(fmt.Errorf("stat %s: %w", s.stem+logSuffix, err))
		}
		trusted := clean || i+1 < len(bases) && bases[i+1] <= rp
		if !trusted || !s.load(fi.Size(), cfg.IndexIntervalBytes) {
			good, err := s.recover(fi.Size(), cfg.IndexIntervalBytes)
			if err != nil {
				return fail(err)
			}
			if good < fi.Size() && i+1 < len(bases) {
				// Everything after a cut is suspect: drop later segments.
				for _, later := range bases[i+1:] {
					stem := filepath.Join(dir, segmentName(later))
					removeAll([]string{stem + logSuffix, stem + indexSuffix, stem + timeIndexSuffix})
				}
				s.v.modified = fi.ModTime()
				break
			}
			if i+1 < len(bases) {
				// A sealed segment's time index ends with its max timestamp,
				// as rolling wrote it.
				appendTime(&s.v, s.base)
				if err := s.writeIndexes(&s.v, false); err != nil {
					return fail(err)
				}
			}
		}
		s.v.modified = fi.ModTime()
		if i > 0 && s.base < l.segs[i-1].v.next {
			return fail(fmt.Errorf("%w: segment %d overlaps the previous one, which ends at %d", storage.ErrCorrupt, s.base, l.segs[i-1].v.next))
		}
	}
	if len(l.segs) == 0 {
		s, err := openSegment(dir, start, true, now)
		if err != nil {
			return fail(err)
		}
		l.segs = []*segment{s}
	}
	if !hasStart || start < l.segs[0].base {
		start = l.segs[0].base
	}
	l.start, l.end = start, l.segs[len(l.segs)-1].v.next
	var drop []*segment
	if l.start > l.end {
		// The data ends below the recorded start (a crash after a
		// DeleteBefore, or a truncation inside a batch): restart at start.
		s, err := openSegment(dir, start, true, now)
		if err != nil {
			return fail(err)
		}
		drop, l.segs = l.segs, []*segment{s}
		l.end = start
	} else {
		n := 0
		for n < len(l.segs)-1 && l.segs[n].v.next <= l.start {
			n++
		}
		drop, l.segs = l.segs[:n], l.segs[n:]
	}
	l.recoveryPoint = rp
	if err := os.Remove(filepath.Join(dir, cleanShutdownFile)); err != nil && !os.IsNotExist(err) {
		return fail(fmt.Errorf("remove clean shutdown marker: %w", err))
	}
	l.retire(drop)
	return l, nil
}

// load fills the segment from its index files and a header walk of the
// tail after the last index entry. It reports false when the indexes are
// missing or insane, or the walk does not end at the file's end: the
// caller then rebuilds by recovery.
func (s *segment) load(size int64, interval int32) bool {
	idx, err := os.ReadFile(s.stem + indexSuffix)
	if err != nil {
		return false
	}
	tidx, err := os.ReadFile(s.stem + timeIndexSuffix)
	if err != nil || !checkIndexes(idx, tidx, size) {
		return false
	}
	v := view{next: s.base, maxTs: -1, maxTsOff: -1, idx: idx[:len(idx):len(idx)], tidx: tidx[:len(tidx):len(tidx)]}
	if n := len(tidx) / timeEntrySize; n > 0 {
		v.maxTs, v.maxTsOff = timeAt(tidx, n-1), s.base+timeRel(tidx, n-1)
	}
	from := int64(0)
	if n := len(idx) / offsetEntrySize; n > 0 {
		from = position(idx, n-1)
	}
	var since int64
	if !s.tail(&v, &since, from, size, interval) || v.maxTsOff >= v.next {
		return false
	}
	s.v, s.sinceIndex = v, since
	s.idxDisk, s.tidxDisk = len(idx), len(tidx)
	s.readFirstTimestamp()
	return true
}

// recover rebuilds the segment's view and indexes by scanning every batch,
// and cuts the file after the last good one. It returns that length.
func (s *segment) recover(size int64, interval int32) (int64, error) {
	v := view{next: s.base, maxTs: -1, maxTsOff: -1}
	var since int64
	s.firstTs = -1
	good, err := s.scan(&v, &since, 0, size, interval)
	if err != nil {
		return 0, err
	}
	if good < size {
		if err := s.f.Truncate(good); err != nil {
			return 0, fmt.Errorf("cut torn tail of %s: %w", s.stem+logSuffix, err)
		}
	}
	v.size = good
	s.v, s.sinceIndex = v, since
	s.idxDisk, s.tidxDisk = 0, 0
	s.synced.Store(false)
	if err := s.writeIndexes(&s.v, false); err != nil {
		return 0, err
	}
	return good, nil
}
