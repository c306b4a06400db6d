package ensemble

import (
	"bytes"
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

func mkLog(i uint64) *raft.Log {
	return &raft.Log{Index: i, Term: i/10 + 1, Type: raft.LogCommand, Data: []byte{byte(i), byte(i >> 8)},
		AppendedAt: time.Unix(1700000000, int64(i))}
}

func TestStoreLogs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openTestStore(t, path)

	for _, f := range []func() (uint64, error){s.FirstIndex, s.LastIndex} {
		if i, err := f(); err != nil || i != 0 {
			t.Fatalf("empty store index = %d, %v; want 0, nil", i, err)
		}
	}
	var l raft.Log
	if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog on an empty store = %v, want raft.ErrLogNotFound", err)
	}

	var batch []*raft.Log
	for i := uint64(1); i <= 300; i++ {
		batch = append(batch, mkLog(i))
	}
	if err := s.StoreLogs(batch[:299]); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(batch[299]); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 1 || last != 300 {
		t.Fatalf("indexes = %d..%d, want 1..300", first, last)
	}
	for _, want := range []*raft.Log{batch[0], batch[150], batch[299]} {
		if err := s.GetLog(want.Index, &l); err != nil {
			t.Fatal(err)
		}
		if l.Index != want.Index || l.Term != want.Term || l.Type != want.Type ||
			!bytes.Equal(l.Data, want.Data) || !l.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", want.Index, l, *want)
		}
	}

	// Compaction removes a prefix, truncation a suffix.
	if err := s.DeleteRange(1, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(251, 300); err != nil {
		t.Fatal(err)
	}
	first, _ = s.FirstIndex()
	last, _ = s.LastIndex()
	if first != 101 || last != 250 {
		t.Fatalf("after deletes indexes = %d..%d, want 101..250", first, last)
	}
	if err := s.GetLog(100, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(100) after compaction = %v, want raft.ErrLogNotFound", err)
	}

	// Everything survives a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path)
	defer s.Close()
	first, _ = s.FirstIndex()
	last, _ = s.LastIndex()
	if first != 101 || last != 250 {
		t.Fatalf("after reopen indexes = %d..%d, want 101..250", first, last)
	}
	if err := s.GetLog(200, &l); err != nil || !bytes.Equal(l.Data, batch[199].Data) {
		t.Fatalf("GetLog(200) after reopen = %+v, %v", l, err)
	}
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
	if has, err := raft.HasExistingState(s, s, snaps); err != nil || !has {
		t.Fatalf("HasExistingState = %v, %v; want true (a term is stored)", has, err)
	}
	empty := openTestStore(t, filepath.Join(t.TempDir(), "empty.db"))
	defer empty.Close()
	if has, err := raft.HasExistingState(empty, empty, snaps); err != nil || has {
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

func TestDecodeLogRejectsDamage(t *testing.T) {
	good := appendLog(nil, mkLog(7))
	var l raft.Log
	if err := decodeLog(good, &l); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":          nil,
		"short header":   good[:10],
		"unknown format": append([]byte{9}, good[1:]...),
		"cut data":       good[:len(good)-5],
		"trailing bytes": append(append([]byte(nil), good...), 0),
	}
	for name, b := range cases {
		if err := decodeLog(b, &l); !errors.Is(err, ErrCorruptLog) {
			t.Errorf("%s: decodeLog error = %v, want ErrCorruptLog", name, err)
		}
	}
}

func FuzzDecodeLog(f *testing.F) {
	f.Add(appendLog(nil, mkLog(1)))
	f.Add(appendLog(nil, &raft.Log{Index: 9, Term: 2, Type: raft.LogConfiguration, Extensions: []byte("ext")}))
	f.Add(appendLog(nil, &raft.Log{}))
	f.Add([]byte{logFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			if !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("error %v is not ErrCorruptLog", err)
			}
			return
		}
		// Whatever decodes must encode back to the same bytes.
		if again := appendLog(nil, &l); !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the entry:\n in  %x\n out %x", b, again)
		}
	})
}
