//go:build !linux

package txnlog

import (
	"fmt"
	"os"
	"path/filepath"
)

// fdatasync falls back to fsync where fdatasync is not available.
func fdatasync(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return nil
}

// preallocate writes zeros: the portable way to reserve the blocks.
func preallocate(f *os.File, from, size int64) error {
	return writeZeros(f, from, size)
}

// lockDir does not lock outside Linux; the file only marks the directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("txnlog: lock file: %w", err)
	}
	return f, nil
}
