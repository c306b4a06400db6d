package txnlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	snapshotHeaderLen  = 16
	snapshotTrailerLen = 12
	snapshotVersion    = 1
	snapshotPrefix     = "snapshot."
	snapshotTempSuffix = ".tmp"
)

var snapshotMagic = [4]byte{'R', 'N', 'S', 'N'}

// WriteSnapshot stores a snapshot of the state at zxid, whose bytes the
// write callback produces. The snapshot appears atomically: it is written to
// a temporary file that is fsynced, renamed into place, and the directory
// fsynced. An error from write is returned wrapped and leaves no file behind.
// A snapshot already stored for zxid is replaced.
func (l *Log) WriteSnapshot(zxid int64, write func(w io.Writer) error) (err error) {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if zxid < 0 {
		return fmt.Errorf("txnlog: snapshot zxid %d is negative", zxid)
	}
	name := snapshotName(zxid)
	tmp, err := os.CreateTemp(l.opts.Dir, name+".*"+snapshotTempSuffix)
	if err != nil {
		return fmt.Errorf("txnlog: create snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	bw := bufio.NewWriterSize(tmp, 1<<20)
	sum := crc32.New(castagnoli)
	out := io.MultiWriter(bw, sum)
	if _, err := out.Write(appendSnapshotHeader(nil, zxid)); err != nil {
		return fmt.Errorf("txnlog: write snapshot: %w", err)
	}
	body := &countingWriter{w: out}
	if err := write(body); err != nil {
		return fmt.Errorf("txnlog: snapshot callback: %w", err)
	}
	var trailer [snapshotTrailerLen]byte
	binary.BigEndian.PutUint64(trailer[0:8], uint64(body.n))
	sum.Write(trailer[0:8])
	binary.BigEndian.PutUint32(trailer[8:12], sum.Sum32())
	if _, err := bw.Write(trailer[:]); err != nil {
		return fmt.Errorf("txnlog: write snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("txnlog: write snapshot: %w", err)
	}
	if !l.opts.NoSync {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("txnlog: fsync snapshot: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("txnlog: close snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(l.opts.Dir, name)); err != nil {
		return fmt.Errorf("txnlog: install snapshot: %w", err)
	}
	if !l.opts.NoSync {
		// The rename is done, so the deferred cleanup finds no temp file to
		// remove; the error says the snapshot may not survive a power loss.
		if serr := syncDir(l.opts.Dir); serr != nil {
			return serr
		}
	}
	return nil
}

// OpenLatestSnapshot returns the newest snapshot whose checksum verifies,
// falling back to older ones past damaged files (each logged as a warning).
// With no snapshot files it returns zxid 0, a nil reader and a nil error.
// When snapshot files exist but none verifies it returns an error wrapping
// ErrCorrupt: silently starting from an empty state could lose data whose
// log segments were purged. The whole snapshot is read and verified before
// it returns; the reader serves it from memory.
func (l *Log) OpenLatestSnapshot() (zxid int64, r io.ReadCloser, err error) {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	if l.closed.Load() {
		return 0, nil, ErrClosed
	}
	zxids, err := listSnapshots(l.opts.Dir)
	if err != nil {
		return 0, nil, err
	}
	var errs []error
	for i := len(zxids) - 1; i >= 0; i-- {
		path := filepath.Join(l.opts.Dir, snapshotName(zxids[i]))
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, nil, fmt.Errorf("txnlog: read snapshot: %w", err)
		}
		body, err := parseSnapshot(data, zxids[i])
		if err != nil {
			l.logger.Warn("txnlog: skipping a damaged snapshot", "file", path, "reason", err.Error())
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		return zxids[i], io.NopCloser(bytes.NewReader(body)), nil
	}
	if len(errs) > 0 {
		return 0, nil, fmt.Errorf("txnlog: no valid snapshot: %w", errors.Join(errs...))
	}
	return 0, nil, nil
}

// PurgeSnapshots deletes all snapshots older than the newest keep ones that
// verify. Damaged snapshots do not count towards keep, so a bad newest file
// never causes the last good one to be deleted; they are left in place for
// inspection until they become older than keep good ones. keep must be at
// least 1.
func (l *Log) PurgeSnapshots(keep int) error {
	if keep < 1 {
		return fmt.Errorf("txnlog: PurgeSnapshots(%d): must keep at least one", keep)
	}
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	zxids, err := listSnapshots(l.opts.Dir)
	if err != nil {
		return err
	}
	valid, removed := 0, false
	for i := len(zxids) - 1; i >= 0; i-- {
		path := filepath.Join(l.opts.Dir, snapshotName(zxids[i]))
		if valid >= keep {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("txnlog: purge snapshot: %w", err)
			}
			removed = true
			continue
		}
		err := verifySnapshotFile(path, zxids[i])
		switch {
		case err == nil:
			valid++
		case errors.Is(err, ErrCorrupt):
			l.logger.Warn("txnlog: damaged snapshot does not count as kept", "file", path, "reason", err.Error())
		default:
			return err
		}
	}
	if removed {
		return l.syncDir()
	}
	return nil
}

// parseSnapshot verifies a whole snapshot file held in memory and returns
// its body, which aliases data.
func parseSnapshot(data []byte, zxid int64) ([]byte, error) {
	if len(data) < snapshotHeaderLen+snapshotTrailerLen {
		return nil, fmt.Errorf("%w: snapshot of %d bytes is shorter than its framing", ErrCorrupt, len(data))
	}
	if err := parseSnapshotHeader(data[:snapshotHeaderLen], zxid); err != nil {
		return nil, err
	}
	t := data[len(data)-snapshotTrailerLen:]
	bodyLen := uint64(len(data) - snapshotHeaderLen - snapshotTrailerLen)
	if n := binary.BigEndian.Uint64(t[0:8]); n != bodyLen {
		return nil, fmt.Errorf("%w: snapshot body length %d, file holds %d", ErrCorrupt, n, bodyLen)
	}
	got := crc32.Checksum(data[:len(data)-4], castagnoli)
	if want := binary.BigEndian.Uint32(t[8:12]); got != want {
		return nil, fmt.Errorf("%w: snapshot checksum %#08x, want %#08x", ErrCorrupt, got, want)
	}
	return data[snapshotHeaderLen : len(data)-snapshotTrailerLen], nil
}

// verifySnapshotFile is parseSnapshot without holding the file in memory.
func verifySnapshotFile(path string, zxid int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("txnlog: open snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("txnlog: stat snapshot: %w", err)
	}
	size := fi.Size()
	if size < snapshotHeaderLen+snapshotTrailerLen {
		return fmt.Errorf("%w: snapshot of %d bytes is shorter than its framing", ErrCorrupt, size)
	}
	var h [snapshotHeaderLen]byte
	var t [snapshotTrailerLen]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("txnlog: read snapshot: %w", err)
	}
	if _, err := f.ReadAt(t[:], size-snapshotTrailerLen); err != nil {
		return fmt.Errorf("txnlog: read snapshot: %w", err)
	}
	if err := parseSnapshotHeader(h[:], zxid); err != nil {
		return err
	}
	bodyLen := uint64(size - snapshotHeaderLen - snapshotTrailerLen)
	if n := binary.BigEndian.Uint64(t[0:8]); n != bodyLen {
		return fmt.Errorf("%w: snapshot body length %d, file holds %d", ErrCorrupt, n, bodyLen)
	}
	sum := crc32.New(castagnoli)
	if _, err := io.Copy(sum, io.NewSectionReader(f, 0, size-4)); err != nil {
		return fmt.Errorf("txnlog: read snapshot: %w", err)
	}
	if got, want := sum.Sum32(), binary.BigEndian.Uint32(t[8:12]); got != want {
		return fmt.Errorf("%w: snapshot checksum %#08x, want %#08x", ErrCorrupt, got, want)
	}
	return nil
}

func appendSnapshotHeader(dst []byte, zxid int64) []byte {
	dst = append(dst, snapshotMagic[:]...)
	dst = binary.BigEndian.AppendUint32(dst, snapshotVersion)
	return binary.BigEndian.AppendUint64(dst, uint64(zxid))
}

func parseSnapshotHeader(h []byte, zxid int64) error {
	if [4]byte(h[0:4]) != snapshotMagic {
		return fmt.Errorf("%w: bad snapshot magic %q", ErrCorrupt, h[0:4])
	}
	if v := binary.BigEndian.Uint32(h[4:8]); v != snapshotVersion {
		return fmt.Errorf("%w: unsupported snapshot version %d", ErrCorrupt, v)
	}
	if z := int64(binary.BigEndian.Uint64(h[8:16])); z != zxid {
		return fmt.Errorf("%w: snapshot header zxid %#x does not match file name %#x", ErrCorrupt, z, zxid)
	}
	return nil
}

// listSnapshots returns the zxids of the snapshot files in dir, ascending.
func listSnapshots(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("txnlog: list dir: %w", err)
	}
	var zxids []int64
	for _, e := range entries {
		if z, ok := parseName(e.Name(), snapshotPrefix); ok && z >= 0 && e.Type().IsRegular() {
			zxids = append(zxids, z)
		}
	}
	slices.Sort(zxids)
	return zxids, nil
}

// removeSnapshotTemps deletes temporary files of snapshot writes that a
// crash interrupted. Open calls it while it holds the directory lock, so no
// write can be in progress.
func removeSnapshotTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("txnlog: list dir: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, snapshotPrefix) && strings.HasSuffix(n, snapshotTempSuffix) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("txnlog: remove stale snapshot temp: %w", err)
			}
		}
	}
	return nil
}

func snapshotName(zxid int64) string { return fmt.Sprintf("%s%016x", snapshotPrefix, uint64(zxid)) }

// countingWriter counts the body bytes the snapshot callback writes.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
