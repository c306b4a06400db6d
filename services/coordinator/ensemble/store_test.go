package ensemble

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func openTestStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenStore(path, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openTestStore(t, path)
	// raft tells a missing key by this exact message.
	if _, err := s.Get([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get(missing) error = %v, want \"not found\"", err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GetUint64(missing) error = %v, want ErrKeyNotFound", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	val := []byte("3")
	if err := s.Set([]byte("LastVoteCand"), val); err != nil {
		t.Fatal(err)
	}
	val[0] = 'x' // the store must have copied it
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path)
	defer s.Close()
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64 = %d, %v; want 42", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "3" {
		t.Fatalf("Get = %q, %v; want \"3\"", v, err)
	}
	// Raft's own check that a fresh member has no state.
	snaps := raft.NewInmemSnapshotStore()
	logs, err := OpenFileLog(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	if has, err := raft.HasExistingState(logs, s, snaps); err != nil || !has {
		t.Fatalf("HasExistingState = %v, %v; want true (a term is stored)", has, err)
	}
	empty := openTestStore(t, filepath.Join(t.TempDir(), "empty.db"))
	defer empty.Close()
	if has, err := raft.HasExistingState(logs, empty, snaps); err != nil || has {
		t.Fatalf("HasExistingState(empty) = %v, %v; want false", has, err)
	}
}

func TestStoreLockedByAnotherOpen(t *testing.T) {
	defer func(d time.Duration) { storeLockTimeout = d }(storeLockTimeout)
	storeLockTimeout = 50 * time.Millisecond
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openTestStore(t, path)
	defer s.Close()
	// bbolt's flock makes a second member on the same directory fail
	// instead of corrupting the log.
	if s2, err := OpenStore(path, false); err == nil {
		s2.Close()
		t.Fatal("a second OpenStore of the same file succeeded")
	}
}
