package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// Errors every backend reports, so that the broker can map them to Kafka
// error codes without knowing which backend it talks to. Backends wrap them
// with context (fmt.Errorf("...: %w", ErrX)); test with errors.Is.
var (
	// ErrOffsetOutOfRange means an offset lies below the log start offset or
	// above the log end offset. The broker answers OFFSET_OUT_OF_RANGE (1).
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")

	// ErrInvalidBatch means bytes handed to Append are not a sequence of
	// whole, valid magic v2 record batches (short, wrong magic, bad length,
	// CRC mismatch, no batches at all). The broker answers CORRUPT_MESSAGE (2).
	// The codec's specific errors (ErrShortBatch, ErrBatchMagic,
	// ErrBatchLength, ErrBatchCRC) all wrap it.
	ErrInvalidBatch = errors.New("storage: invalid record batch")

	// ErrNotContiguous means an appended batch's base offset is below the
	// log end offset, or batches in one Append do not have increasing
	// offsets. For a leader this is a broker bug; a follower treats it as
	// divergence and truncates.
	ErrNotContiguous = errors.New("storage: batch offsets do not follow the log end offset")

	// ErrBatchTooLarge means one batch is larger than the segment size
	// (segment.bytes), so no segment could ever hold it. The broker answers
	// RECORD_LIST_TOO_LARGE (18), as Kafka does.
	ErrBatchTooLarge = errors.New("storage: record batch larger than segment.bytes")

	// ErrCorrupt means stored data failed validation when it was read back
	// (a bad batch header inside a segment, an unreadable checkpoint). The
	// log's files need attention; the broker answers KAFKA_STORAGE_ERROR (56).
	ErrCorrupt = errors.New("storage: stored data is corrupt")

	// ErrClosed means the Log or Backend was closed (or the partition was
	// deleted) before or during the call.
	ErrClosed = errors.New("storage: closed")

	// ErrAlreadyOpen means Open was called for a partition whose Log is
	// still open in this Backend: a partition has at most one Log at a time.
	ErrAlreadyOpen = errors.New("storage: partition already open")

	// ErrInvalidPartition means a PartitionID is not a legal Kafka topic
	// name and partition number, so no storage can be named after it.
	ErrInvalidPartition = errors.New("storage: invalid topic or partition")

	// ErrInvalidConfig means a Config value is out of its legal range.
	ErrInvalidConfig = errors.New("storage: invalid config")
)

// PartitionID names one partition of one topic.
type PartitionID struct {
	Topic     string
	Partition int32
}

// String returns Kafka's directory name for the partition, "<topic>-<partition>".
func (p PartitionID) String() string { return fmt.Sprintf("%s-%d", p.Topic, p.Partition) }

// MaxTopicLength is Kafka's limit on topic name length (249), which keeps
// "<topic>-<partition>" and its deletion suffix within a file name.
const MaxTopicLength = 249

// Validate reports whether p is a legal Kafka topic name (1 to 249 of
// [a-zA-Z0-9._-], not "." or "..") and a non-negative partition. Backends
// call it before using the name in a path or key.
func (p PartitionID) Validate() error {
	if p.Partition < 0 {
		return fmt.Errorf("%w: partition %d is negative", ErrInvalidPartition, p.Partition)
	}
	if p.Topic == "" || len(p.Topic) > MaxTopicLength || p.Topic == "." || p.Topic == ".." {
		return fmt.Errorf("%w: topic name %q", ErrInvalidPartition, p.Topic)
	}
	for i := 0; i < len(p.Topic); i++ {
		c := p.Topic[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: topic name %q has illegal character %q", ErrInvalidPartition, p.Topic, c)
		}
	}
	return nil
}

// Kafka's defaults for the settings in Config.
const (
	DefaultSegmentBytes       = 1 << 30         // segment.bytes: 1 GiB
	DefaultSegmentMs          = 7 * 24 * 3600e3 // segment.ms: 7 days
	DefaultIndexIntervalBytes = 4096            // index.interval.bytes
	DefaultMaxIndexBytes      = 10 << 20        // segment.index.bytes: 10 MiB
	DefaultFileDeleteDelayMs  = 60000           // file.delete.delay.ms: 1 minute
	minSegmentBytes           = BatchHeaderSize // smaller could not hold one batch
	minMaxIndexBytes          = 4 * timeIndexEntrySize
	offsetIndexEntrySize      = 8
	timeIndexEntrySize        = 12
	maxIndexBytesLimit        = 1<<31 - 1
)

// Config holds the per-partition log settings. Names follow Kafka's topic
// and broker settings, given in each field's comment. A zero field means
// Kafka's default (WithDefaults fills them in; backends call it in Open).
type Config struct {
	// Dir is the root data directory (one entry of Kafka's log.dirs). The
	// file backend keeps the partition in Dir/<topic>-<partition>/. Empty
	// means the backend's own default root. Backends without files ignore it.
	Dir string

	// SegmentBytes is segment.bytes: a segment rolls before an append
	// would take it past this size. A batch larger than this is refused
	// with ErrBatchTooLarge.
	SegmentBytes int32

	// SegmentMs is segment.ms: a segment rolls once the incoming batch's
	// max timestamp is this much later than the first batch's in the
	// segment (or, for batches without timestamps, once the segment is this
	// old by the clock), as Kafka does.
	SegmentMs int64

	// IndexIntervalBytes is index.interval.bytes: the sparse offset and time
	// indexes get an entry after at least this many bytes of batches.
	IndexIntervalBytes int32

	// MaxIndexBytes is segment.index.bytes: a segment rolls when its offset
	// index (8 bytes an entry) or time index (12 bytes an entry) is full.
	MaxIndexBytes int32

	// FileDeleteDelayMs is file.delete.delay.ms: how long a removed
	// segment's files linger (renamed with a ".deleted" suffix) before they
	// are unlinked. Zero means the default; a negative value unlinks at once.
	FileDeleteDelayMs int64

	// FlushMessages is flush.messages: when positive, Append forces an
	// fsync once this many records were appended since the last flush.
	// Zero (the default, as in Kafka) leaves flushing to the OS and to
	// explicit Flush calls.
	FlushMessages int64

	// Now is the clock used for segment.ms when batches carry no timestamps
	// and for SegmentInfo times; nil means time.Now. It is not carried
	// across the plugin process boundary.
	Now func() time.Time
}

// DefaultConfig returns Kafka's defaults with the given root directory.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir}.WithDefaults()
}

// WithDefaults returns c with every unset field set to Kafka's default.
func (c Config) WithDefaults() Config {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentMs == 0 {
		c.SegmentMs = DefaultSegmentMs
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.MaxIndexBytes == 0 {
		c.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if c.FileDeleteDelayMs == 0 {
		c.FileDeleteDelayMs = DefaultFileDeleteDelayMs
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a value out of Kafka's legal range, wrapping
// ErrInvalidConfig. Call it on the result of WithDefaults.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < minSegmentBytes:
		return fmt.Errorf("%w: segment.bytes %d is below %d", ErrInvalidConfig, c.SegmentBytes, minSegmentBytes)
	case c.SegmentMs < 1:
		return fmt.Errorf("%w: segment.ms %d is below 1", ErrInvalidConfig, c.SegmentMs)
	case c.IndexIntervalBytes < 1:
		return fmt.Errorf("%w: index.interval.bytes %d is below 1", ErrInvalidConfig, c.IndexIntervalBytes)
	case c.MaxIndexBytes < minMaxIndexBytes:
		return fmt.Errorf("%w: segment.index.bytes %d is below %d", ErrInvalidConfig, c.MaxIndexBytes, minMaxIndexBytes)
	case c.FlushMessages < 0:
		return fmt.Errorf("%w: flush.messages %d is negative", ErrInvalidConfig, c.FlushMessages)
	}
	return nil
}

// Backend opens partition logs. One Backend serves many partitions; its
// methods are safe for concurrent use.
type Backend interface {
	// Name is the backend's short name ("file", "memory"), as used by the
	// broker's --storage flag.
	Name() string

	// Open returns the partition's log, creating it when it does not exist
	// and recovering it when it was not closed cleanly. A partition has at
	// most one open Log (ErrAlreadyOpen otherwise).
	Open(ctx context.Context, p PartitionID, cfg Config) (Log, error)

	// Delete removes a partition's data for good (a deleted topic or a
	// partition moved away). An open Log of it is closed first. Deleting a
	// partition that has no data is not an error.
	Delete(ctx context.Context, p PartitionID) error

	// Close closes every open Log. Data of persistent backends stays.
	Close() error
}

// Log is one partition's log: a sequence of magic v2 record batches with
// increasing offsets, split into segments. Its methods are safe for
// concurrent use; mutating calls (Append, Truncate, DeleteBefore, Roll) are
// serialized, reads run alongside them. Every method that takes a context
// returns its error (wrapped) when it is already done.
type Log interface {
	// Append stores one or more whole v2 batches whose offsets the caller
	// already set. The first batch's base offset must be at least
	// EndOffset (equal for a leader; larger only when the leader's log has
	// a gap, as after compaction) and offsets must increase across the
	// batches. Every batch is validated (header, length, CRC-32C) and
	// stored byte for byte; on error nothing is appended. When Append
	// returns, the batches are readable and written to the backend (for
	// the file backend: handed to the OS, see the package doc on flushing).
	// The caller may reuse batches afterwards.
	Append(ctx context.Context, batches []byte) (AppendInfo, error)

	// Read returns whole batches, starting with the batch that contains
	// offset (or the first after it, when offset falls in a gap). It returns
	// at least one batch when one exists at or after offset, even if that
	// batch alone is larger than maxBytes (Kafka's KIP-74), and adds further
	// batches while the total stays within maxBytes. It stops before any
	// batch whose base offset is >= maxOffset (pass the high watermark, or
	// math.MaxInt64 for no limit). It may return less than maxBytes at an
	// internal boundary (a segment's end); read on from NextOffset. Offsets
	// below StartOffset or above EndOffset give ErrOffsetOutOfRange; offset
	// == EndOffset gives an empty result. The first batch may hold offsets
	// below the requested one (clients skip them, as with Kafka).
	Read(ctx context.Context, offset int64, maxBytes int32, maxOffset int64) (ReadResult, error)

	// StartOffset is the log start offset: the first offset a reader may ask
	// for. It only moves forward, through DeleteBefore (or Truncate below it).
	StartOffset() int64

	// EndOffset is the log end offset: the offset the next batch will get.
	EndOffset() int64

	// OffsetForTimestamp returns the first offset at or after StartOffset
	// whose record timestamp is >= ts, and that record's timestamp; (-1, -1)
	// when there is none. It uses the time index to skip ahead. Inside a
	// compressed CreateTime batch the backend cannot see the records, so it
	// answers with the batch (its first offset not below StartOffset, and
	// the batch's max timestamp); the broker, which has the codecs, may
	// refine that answer by reading the batch. LogAppendTime batches and
	// uncompressed batches are answered exactly.
	OffsetForTimestamp(ctx context.Context, ts int64) (offset, timestamp int64, err error)

	// Truncate removes every batch that holds an offset >= offset (a
	// follower's divergent tail): a batch straddling offset goes whole.
	// EndOffset becomes offset, as in Kafka; after a reopen it is
	// recomputed from the stored batches, so it can be lower when offset
	// was not a batch boundary. An offset at or past EndOffset does
	// nothing. StartOffset becomes min(StartOffset, offset); an offset below
	// the first segment empties the log and restarts it at offset.
	Truncate(ctx context.Context, offset int64) error

	// DeleteBefore advances the log start offset to offset (DeleteRecords,
	// retention) and removes every segment whose batches all lie below it.
	// A lower offset than StartOffset does nothing; an offset above
	// EndOffset is ErrOffsetOutOfRange. DeleteBefore(EndOffset) empties the
	// log (the active segment is rolled first, as in Kafka).
	DeleteBefore(ctx context.Context, offset int64) error

	// Segments lists the segments, oldest first. The broker makes its
	// retention decisions (retention.ms, retention.bytes) from this list,
	// then calls DeleteBefore with the next segment's base offset.
	Segments() []SegmentInfo

	// Roll seals the active segment and starts a new one at EndOffset. It
	// does nothing when the active segment is empty.
	Roll(ctx context.Context) error

	// Flush makes everything appended so far durable (fsync) and records
	// the recovery point. Backends without durability return nil.
	Flush(ctx context.Context) error

	// Close flushes and releases the log. Later calls return ErrClosed.
	Close() error
}

// FileReader is implemented by logs whose segments are files, so that the
// broker can send fetch data straight from the page cache (sendfile)
// instead of copying it through user space.
type FileReader interface {
	// ReadFile selects the same batches Read would, as a byte range of one
	// segment file. The region pins that segment until Close: it cannot be
	// truncated or closed under the caller. Close the region promptly, and
	// before calling Truncate, DeleteBefore or Close on the same Log from the
	// same goroutine (those wait for open regions of the segments they change).
	ReadFile(ctx context.Context, offset int64, maxBytes int32, maxOffset int64) (*FileRegion, error)
}

// AppendInfo describes what an Append stored.
type AppendInfo struct {
	FirstOffset          int64 // base offset of the first batch
	LastOffset           int64 // last offset of the last batch
	MaxTimestamp         int64 // largest batch max timestamp (-1 when none)
	OffsetOfMaxTimestamp int64 // last offset of the batch carrying MaxTimestamp (-1 when none)
	LogStartOffset       int64 // the log start offset after the append
	Batches              int32 // number of batches
	Records              int64 // sum of the batches' record counts
	Bytes                int64 // total size of the batches
}

// ReadResult is what Read returns.
type ReadResult struct {
	// Batches holds whole batches, concatenated, as stored. It may share
	// memory with the backend: do not modify it. Empty when nothing was
	// found at or after the offset (below maxOffset).
	Batches []byte

	// NextOffset is where to continue reading: one past the last returned
	// batch's last offset (or, after an offset gap, the next batch's base).
	// When Batches is empty it is the requested offset.
	NextOffset int64

	// StartOffset and EndOffset are the log's start and end offsets as the
	// read saw them (for the fetch response's log start offset).
	StartOffset int64
	EndOffset   int64
}

// SegmentInfo describes one segment.
type SegmentInfo struct {
	BaseOffset   int64     // offset of the segment's first batch (its name)
	NextOffset   int64     // one past the segment's last offset; BaseOffset when empty
	SizeBytes    int64     // bytes of batches in the segment
	MaxTimestamp int64     // largest batch max timestamp in it; -1 when none has one
	Created      time.Time // when this process created or loaded the segment (as Kafka's segment "created" time)
	LastModified time.Time // last append (file backends: the file's modification time)
	Active       bool      // the segment appends go to (the last one)
}

// FileRegion is a byte range of a segment file holding whole batches,
// pinned until Close.
type FileRegion struct {
	// File is the segment file. Read it only at explicit positions (ReadAt,
	// or sendfile/copy_file_range with an offset argument): its seek
	// position is shared with other readers and must not be used or moved.
	// Nil when Len is 0.
	File *os.File
	// Pos and Len give the byte range of whole batches in File.
	Pos int64
	Len int64
	// NextOffset, StartOffset and EndOffset mean what they mean in ReadResult.
	NextOffset  int64
	StartOffset int64
	EndOffset   int64

	release func()
}

// NewFileRegion is for backends: it returns a region that calls release
// once, on Close.
func NewFileRegion(f *os.File, pos, n int64, release func()) *FileRegion {
	return &FileRegion{File: f, Pos: pos, Len: n, release: release}
}

// Close releases the segment. It is safe to call more than once.
func (r *FileRegion) Close() error {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return nil
}

// WriteTo copies the region to w through a positional reader. Callers that
// can use sendfile with an explicit offset should do so instead; this is
// the portable fallback.
func (r *FileRegion) WriteTo(w io.Writer) (int64, error) {
	if r.Len == 0 {
		return 0, nil
	}
	n, err := io.Copy(w, io.NewSectionReader(r.File, r.Pos, r.Len))
	if err != nil {
		return n, fmt.Errorf("storage: copy file region: %w", err)
	}
	return n, nil
}

// RollState is what ShouldRoll needs to know about the active segment.
type RollState struct {
	BaseOffset int64
	Size       int64
	Empty      bool
	// FirstTimestamp is the max timestamp of the segment's first batch, or
	// -1 when it had none; Created is when the segment was created or loaded.
	FirstTimestamp int64
	Created        time.Time
}

// ShouldRoll applies Kafka's rules for rolling the active segment before
// appending a batch of batchSize bytes with the given max timestamp and last
// offset: never for an empty segment; when the batch would take the segment
// past segment.bytes; when the batch's timestamp is more than segment.ms
// past the segment's first batch's (by the clock when the segment has no
// timestamps); when the last offset no longer fits a 32-bit offset relative
// to the base. Backends with indexes add their own "index full" rule.
func ShouldRoll(cfg Config, seg RollState, batchSize, batchMaxTimestamp, batchLastOffset int64) bool {
	if seg.Empty {
		return false
	}
	if seg.Size+batchSize > int64(cfg.SegmentBytes) {
		return true
	}
	if batchLastOffset-seg.BaseOffset > math.MaxInt32 {
		return true
	}
	if seg.FirstTimestamp >= 0 {
		return batchMaxTimestamp-seg.FirstTimestamp > cfg.SegmentMs
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	return now().Sub(seg.Created).Milliseconds() > cfg.SegmentMs
}
