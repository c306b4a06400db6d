//go:build linux

package txnlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// fdatasync flushes a file's data and the metadata needed to read it back,
// skipping timestamps, which fsync would also write.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	if serr != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), serr)
	}
	return nil
}

// preallocate extends f to size bytes of zeros, with fallocate where the file
// system supports it and by writing zeros otherwise.
func preallocate(f *os.File, from, size int64) error {
	if size <= from {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("preallocate %s: %w", f.Name(), err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Fallocate(int(fd), 0, from, size-from)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return fmt.Errorf("preallocate %s: %w", f.Name(), err)
	}
	if ferr == nil {
		return nil
	}
	if !errors.Is(ferr, syscall.EOPNOTSUPP) && !errors.Is(ferr, syscall.ENOSYS) && !errors.Is(ferr, syscall.EINVAL) {
		return fmt.Errorf("fallocate %s: %w", f.Name(), ferr)
	}
	return writeZeros(f, from, size)
}

// lockDir takes an exclusive, non-blocking flock on a file in dir, so that a
// second process opening the same log fails instead of interleaving writes.
// The kernel drops the lock when the process dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("txnlog: lock file: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("txnlog: lock file: %w", err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		f.Close()
		return nil, fmt.Errorf("txnlog: lock file: %w", err)
	}
	if lerr != nil {
		f.Close()
		if errors.Is(lerr, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("txnlog: flock %s: %w", dir, lerr)
	}
	return f, nil
}
