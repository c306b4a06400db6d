// Package storage is the contract between Runnel's Kafka-protocol broker and
// the backends that keep its partition logs, plus the codec for the unit
// they store: the Kafka record batch (magic v2).
//
// # The unit: record batches
//
// Every call moves whole record batches, never single records, so that a
// backend running as a separate plugin process costs one call per batch
// group rather than one per record. The broker validates a producer's batch,
// assigns its offsets (SetBaseOffset), stamps its partition leader epoch and,
// for LogAppendTime topics, its time (SetLogAppendTime), and then appends the
// bytes. A follower appends the batches exactly as the leader stored them.
// Backends store batches byte for byte and hand them back the same way, so a
// fetch can return them to clients without re-encoding.
//
// # Offsets
//
// A Log holds offsets in [StartOffset, EndOffset). EndOffset is the offset
// the next batch gets; StartOffset moves forward through DeleteBefore
// (DeleteRecords, retention). Offsets of stored batches increase; they may
// have gaps (a compacted leader's batches, or a Truncate inside a batch),
// and a read of an offset in a gap returns the next batch after it.
//
// # Segments
//
// A log is a sequence of segments, each named by the base offset of its
// first batch. Appends go to the last (active) segment, which rolls as
// Kafka's does: before an append would take it past segment.bytes, when the
// incoming batch's timestamp is segment.ms past the segment's first
// batch's, when its indexes are full, or when offsets no longer fit the
// index's 32-bit relative form. Retention works by whole segments: the
// broker reads Segments, decides by retention.ms and retention.bytes, and
// calls DeleteBefore. Reads return bytes from one segment at a time.
//
// # Errors
//
// Backends report the sentinel errors of this package, wrapped with
// context. The broker maps them to Kafka error codes:
//
//	ErrOffsetOutOfRange  OFFSET_OUT_OF_RANGE (1)
//	ErrInvalidBatch      CORRUPT_MESSAGE (2) (ErrShortBatch, ErrBatchMagic,
//	                     ErrBatchLength, ErrBatchCRC, ErrRecords wrap it)
//	ErrBatchTooLarge     RECORD_LIST_TOO_LARGE (18)
//	ErrCorrupt           KAFKA_STORAGE_ERROR (56)
//	ErrClosed            NOT_LEADER_OR_FOLLOWER (6), retriable: the partition
//	                     moved or its backend is restarting
//	ErrNotContiguous     a broker bug on a leader; divergence on a follower
//
// Context errors come back wrapped, so errors.Is(err, context.Canceled)
// works.
//
// # Durability
//
// Append returns once the batches are readable and handed to the backend.
// For the file backend that means written to the OS page cache, which
// survives a crash of the broker process (kill -9) but not of the machine;
// Kafka makes the same trade by default (flush.messages and flush.ms unset)
// and relies on replication for durability. Flush forces an fsync, and
// Config.FlushMessages makes Append do so every N records.
//
// # Zero copy
//
// A backend whose segments are files also implements FileReader, so the
// broker can send fetch data with sendfile. The returned FileRegion pins
// its segment until Close.
//
// # Conformance
//
// Package storage/conformance holds the test suite every backend runs
// against itself, and benchmarks with the same shape for all backends.
package storage
