package ensemble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// ErrKeyNotFound is returned by Store.Get and Store.GetUint64 for a key that
// was never set. Its text is exactly "not found" because hashicorp/raft
// recognises a missing stable key by that message, not by identity.
var ErrKeyNotFound = errors.New("not found")

// ErrCorruptLog means a stored raft log entry could not be decoded.
var ErrCorruptLog = errors.New("ensemble: corrupt raft log entry")

// storeLockTimeout is how long OpenStore waits for another process's lock
// on the file.
var storeLockTimeout = 2 * time.Second

var (
	bucketLogs   = []byte("logs")
	bucketStable = []byte("stable")
)

// Store keeps raft's log and its stable state (current term, vote) in one
// bbolt file. Every StoreLogs call is one bbolt transaction, so a batch of
// entries costs one commit (two fsyncs) however large it is: raft's own
// batching becomes the group commit.
type Store struct {
	db *bolt.DB
}

// OpenStore opens or creates the store at path. noSync skips fsync (tests
// and benchmarks of the CPU path only: a crash can lose acknowledged
// writes).
func OpenStore(path string, noSync bool) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// Another process holding the file means a second member was started
		// on the same data directory: fail instead of waiting forever.
		Timeout: storeLockTimeout,
		NoSync:  noSync,
		// The freelist is rebuilt on open instead of written on every
		// commit, which keeps commits small for an append-mostly log.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketLogs); err != nil {
			return err
		}
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

// FirstIndex implements raft.LogStore.
func (s *Store) FirstIndex() (uint64, error) {
	var idx uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketLogs).Cursor().First(); k != nil {
			idx = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return idx, err
}

// LastIndex implements raft.LogStore.
func (s *Store) LastIndex() (uint64, error) {
	var idx uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketLogs).Cursor().Last(); k != nil {
			idx = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return idx, err
}

// GetLog implements raft.LogStore; a missing entry is raft.ErrLogNotFound.
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	return s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLogs).Get(indexKey(index))
		if v == nil {
			return raft.ErrLogNotFound
		}
		// v is only valid inside the transaction; decodeLog copies.
		if err := decodeLog(v, out); err != nil {
			return fmt.Errorf("raft log entry %d: %w", index, err)
		}
		return nil
	})
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore: all entries in one transaction.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	var buf []byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		for _, l := range logs {
			// bbolt keeps a reference to the value until commit, so every
			// entry needs its own slice of buf; size it once up front.
			need := encodedLogSize(l)
			if cap(buf)-len(buf) < need {
				buf = make([]byte, 0, max(need, 64<<10))
			}
			start := len(buf)
			buf = appendLog(buf, l)
			if err := b.Put(indexKey(l.Index), buf[start:len(buf):len(buf)]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store raft log entries: %w", err)
	}
	return nil
}

// DeleteRange implements raft.LogStore: removes [lo, hi] inclusive.
func (s *Store) DeleteRange(lo, hi uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLogs).Cursor()
		for k, _ := c.Seek(indexKey(lo)); k != nil; k, _ = c.Next() {
			if binary.BigEndian.Uint64(k) > hi {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete raft log entries %d-%d: %w", lo, hi, err)
	}
	return nil
}

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

// indexKey is big-endian so that bbolt's byte order is index order.
func indexKey(i uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), i) }

// The on-disk form of one raft.Log:
//
//	version   1 byte (logFormat)
//	index     8 bytes
//	term      8 bytes
//	type      1 byte
//	appended  8 bytes, Unix nanoseconds (0 for the zero time)
//	data      4-byte length, bytes
//	ext       4-byte length, bytes
const (
	logFormat     = 1
	logHeaderSize = 1 + 8 + 8 + 1 + 8
)

func encodedLogSize(l *raft.Log) int { return logHeaderSize + 4 + len(l.Data) + 4 + len(l.Extensions) }

func appendLog(b []byte, l *raft.Log) []byte {
	b = append(b, logFormat)
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
	return append(b, l.Extensions...)
}

// decodeLog parses an entry written by appendLog into out, copying every
// byte slice (the input may be memory-mapped).
func decodeLog(b []byte, out *raft.Log) error {
	if len(b) < logHeaderSize {
		return fmt.Errorf("%w: %d bytes, shorter than the header", ErrCorruptLog, len(b))
	}
	if b[0] != logFormat {
		return fmt.Errorf("%w: unknown format %d", ErrCorruptLog, b[0])
	}
	out.Index = binary.BigEndian.Uint64(b[1:])
	out.Term = binary.BigEndian.Uint64(b[9:])
	out.Type = raft.LogType(b[17])
	if at := int64(binary.BigEndian.Uint64(b[18:])); at != 0 {
		out.AppendedAt = time.Unix(0, at)
	} else {
		out.AppendedAt = time.Time{}
	}
	rest := b[logHeaderSize:]
	var err error
	if out.Data, rest, err = cutBytes(rest); err != nil {
		return fmt.Errorf("%w: data: %w", ErrCorruptLog, err)
	}
	if out.Extensions, rest, err = cutBytes(rest); err != nil {
		return fmt.Errorf("%w: extensions: %w", ErrCorruptLog, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorruptLog, len(rest))
	}
	return nil
}

// cutBytes takes a 4-byte length and that many bytes (copied; nil when
// empty) from the front of b.
func cutBytes(b []byte) ([]byte, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errors.New("length cut short")
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("length %d exceeds the %d bytes left", n, len(b))
	}
	var v []byte
	if n > 0 {
		v = append([]byte(nil), b[:n]...)
	}
	return v, b[n:], nil
}
