package ensemble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrKeyNotFound is returned by Store.Get and Store.GetUint64 for a key that
// was never set. Its text is exactly "not found" because hashicorp/raft
// recognises a missing stable key by that message, not by identity.
var ErrKeyNotFound = errors.New("not found")

// storeLockTimeout is how long OpenStore waits for another process's lock
// on the file.
var storeLockTimeout = 2 * time.Second

var bucketStable = []byte("stable")

// Store is raft's stable state (current term, last vote) in a bbolt file.
// It changes only on elections, so a transactional B+tree's cost does not
// matter here; the log, written on every commit, is a FileLog.
type Store struct {
	db *bolt.DB
}

// OpenStore opens or creates the store at path. noSync skips fsync (tests
// and benchmarks only: a crash can then forget a vote).
func OpenStore(path string, noSync bool) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// Another process holding the file means a second member was started
		// on the same data directory: fail instead of waiting forever.
		Timeout: storeLockTimeout,
		NoSync:  noSync,
	})
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketStable)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise raft store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close releases the file.
func (s *Store) Close() error { return s.db.Close() }

// Set implements raft.StableStore.
func (s *Store) Set(key, val []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStable).Put(key, append([]byte(nil), val...))
	})
	if err != nil {
		return fmt.Errorf("store raft state %q: %w", key, err)
	}
	return nil
}

// Get implements raft.StableStore; a missing key is ErrKeyNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketStable).Get(key)
		if v == nil {
			return ErrKeyNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// SetUint64 implements raft.StableStore.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft state %q: %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
