package txnlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// scanResult is what scanning one segment file found.
type scanResult struct {
	seg      segment
	records  int64
	headerOK bool
	stop     error // why the scan stopped before a clean end; nil at a clean end
}

// recover rebuilds the segment list from the directory, repairs the tail of
// the last segment and opens the active segment for appending.
func (l *Log) recover() error {
	bases, err := listSegments(l.opts.Dir)
	if err != nil {
		return err
	}
	results := make([]scanResult, 0, len(bases))
	prev := int64(0)
	for i, base := range bases {
		path := filepath.Join(l.opts.Dir, segmentName(base))
		res, err := scanSegment(path, base, prev)
		if err != nil {
			return err
		}
		if i < len(bases)-1 {
			// Sealed segments were fdatasynced before the next one was
			// created, so damage here is not a torn write.
			if res.stop != nil {
				return fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, path, res.seg.end, res.stop)
			}
			if res.records == 0 {
				return fmt.Errorf("%w: %s: sealed segment holds no records", ErrCorrupt, path)
			}
		}
		if res.records > 0 {
			prev = res.seg.last
		}
		results = append(results, res)
	}

	// A last segment without a complete record goes away, so that the next
	// Append can start a segment named after its own zxid.
	for len(results) > 0 && results[len(results)-1].records == 0 {
		res := results[len(results)-1]
		path := filepath.Join(l.opts.Dir, segmentName(res.seg.base))
		from := int64(0)
		if res.headerOK {
			from = segmentHeaderLen
		}
		cut, err := nonZeroTail(path, from)
		if err != nil {
			return err
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("txnlog: remove empty segment: %w", err)
		}
		if err := l.syncDir(); err != nil {
			return err
		}
		l.recovery.RemovedFiles = append(l.recovery.RemovedFiles, filepath.Base(path))
		if cut > 0 {
			l.noteCut(path, from, cut, res.stop)
		}
		results = results[:len(results)-1]
	}

	for _, res := range results {
		l.segs = append(l.segs, res.seg)
		l.recovery.Records += res.records
	}
	l.recovery.Segments = len(l.segs)
	if len(results) == 0 {
		return nil
	}
	return l.activate(results[len(results)-1])
}

// activate opens the last segment for appending. Everything after its last
// complete record must read as zeros before new records go there: leftovers
// of an unacknowledged write could otherwise line up with the new records
// and come back as if they had been written after them.
func (l *Log) activate(res scanResult) error {
	path := filepath.Join(l.opts.Dir, segmentName(res.seg.base))
	end := res.seg.end
	cut, err := nonZeroTail(path, end)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("txnlog: open segment: %w", err)
	}
	l.f = f // closed by Open on error
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("txnlog: stat segment: %w", err)
	}
	size, changed := fi.Size(), false
	if cut > 0 {
		l.noteCut(path, end, cut, res.stop)
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("txnlog: truncate %s: %w", path, err)
		}
		size, changed = end, true
	}
	if l.opts.Preallocate && size < l.opts.SegmentBytes {
		if err := preallocate(f, size, l.opts.SegmentBytes); err != nil {
			return err
		}
		changed = true
	}
	if changed && !l.opts.NoSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("txnlog: fsync %s: %w", path, err)
		}
	}
	l.off = end
	l.lastZxid = res.seg.last
	return nil
}

func (l *Log) noteCut(path string, offset, n int64, reason error) {
	l.recovery.TruncatedBytes += n
	l.recovery.TruncatedFiles = append(l.recovery.TruncatedFiles, filepath.Base(path))
	if reason == nil {
		reason = errors.New("non-zero bytes after the end of the data")
	}
	l.logger.Warn("txnlog: discarded a torn or corrupt log tail",
		"file", path, "offset", offset, "bytes", n, "reason", reason.Error())
}

// scanSegment checks one segment file. prev is the last zxid of the segments
// before it. I/O errors are returned; damage is reported in stop.
func scanSegment(path string, base, prev int64) (scanResult, error) {
	res := scanResult{seg: segment{base: base}}
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("txnlog: open segment: %w", err)
	}
	defer f.Close()
	var h [segmentHeaderLen]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			return res, fmt.Errorf("txnlog: read %s: %w", path, err)
		}
		res.stop = fmt.Errorf("short segment header: %w", err)
		return res, nil
	}
	if err := parseSegmentHeader(h[:], base); err != nil {
		res.stop = err
		return res, nil
	}
	res.headerOK = true
	rr := newRecordReader(f, segmentHeaderLen, -1, prev)
	rr.want = base
	for {
		zxid, _, err := rr.next()
		if err == errCleanEnd {
			break
		}
		if err != nil {
			res.stop = err
			break
		}
		res.records++
		res.seg.last = zxid
	}
	res.seg.end = rr.off
	return res, nil
}

// nonZeroTail returns how many bytes from offset from up to and including
// the last non-zero byte of the file hold something other than zero fill.
func nonZeroTail(path string, from int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("txnlog: open segment: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	last := from // one past the last non-zero byte seen
	for off := from; ; {
		n, err := f.ReadAt(buf, off)
		for i := n - 1; i >= 0; i-- {
			if buf[i] != 0 {
				last = off + int64(i) + 1
				break
			}
		}
		off += int64(n)
		if err == io.EOF {
			return last - from, nil
		}
		if err != nil {
			return 0, fmt.Errorf("txnlog: read %s: %w", path, err)
		}
	}
}

// listSegments returns the bases of the segment files in dir, ascending.
// Names that are not exactly log.<16 lowercase hex digits> are not ours and
// are ignored.
func listSegments(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("txnlog: list dir: %w", err)
	}
	var bases []int64
	for _, e := range entries {
		base, ok := parseName(e.Name(), "log.")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if base <= 0 {
			return nil, fmt.Errorf("%w: segment %s has a non-positive zxid", ErrCorrupt, e.Name())
		}
		bases = append(bases, base)
	}
	slices.Sort(bases)
	return bases, nil
}

// parseName parses prefix followed by a zxid in 16 lowercase hex digits.
func parseName(name, prefix string) (int64, bool) {
	hex, ok := strings.CutPrefix(name, prefix)
	if !ok || len(hex) != 16 || strings.ToLower(hex) != hex {
		return 0, false
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, false
	}
	return int64(v), true
}
