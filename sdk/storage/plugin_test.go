package storage

import (
	"os"
	"testing"
	"time"
)

// TestWatchParentNoticesReparenting checks the guard that stops a plugin
// whose host died without stopping it: a parent id that is no longer the
// process's parent.
func TestWatchParentNoticesReparenting(t *testing.T) {
	gone := make(chan struct{})
	go watchParent(os.Getppid()+1_000_000, func() { close(gone) })
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("a changed parent went unnoticed")
	}
}
