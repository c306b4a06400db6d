// Package file is the storage backend that keeps each partition's log in
// Apache Kafka's on-disk layout, so that operators find what they know:
//
//	<dir>/<topic>-<partition>/
//	    00000000000000000000.log         record batches (magic v2), as appended
//	    00000000000000000000.index       sparse offset index
//	    00000000000000000000.timeindex   sparse time index
//	    00000000000000012345.log ...     the next segment, named by its base offset
//	    log-start-offset-checkpoint      the log start offset
//	    recovery-point-offset-checkpoint offsets below this are on disk (fsynced)
//	    .kafka_cleanshutdown             present only while the log is closed cleanly
//
// The offset index holds 8-byte entries (4-byte offset relative to the
// segment's base, 4-byte file position), one after every
// index.interval.bytes of batches, pointing at the batch whose last offset
// it names. The time index holds 12-byte entries (8-byte timestamp, 4-byte
// relative offset): the largest batch max timestamp so far and the batch
// that carried it, added with the offset entries when it grew, and once
// more when the segment rolls. Both are big-endian, as Kafka writes them,
// and are kept in memory and written out when a segment rolls or the log
// closes. The checkpoint files use Kafka's offset checkpoint text format,
// one file per partition.
//
// # Flush policy
//
// As Kafka does by default, appends are positional writes into the OS page
// cache, with no fsync: an acknowledged append survives a crash of the
// process (kill -9) but not of the machine; replication covers that.
// Flush fsyncs the log and moves the recovery point; so does Append every
// Config.FlushMessages records (flush.messages), and Close. A rolled segment
// is fsynced in the background, as Kafka schedules a flush on roll, so the
// recovery point keeps up without slowing appends.
//
// # Recovery
//
// Open after a clean Close trusts the index files once they pass a sanity
// check (whole entries, increasing offsets and positions inside the file,
// non-decreasing timestamps) and a header walk from the last index entry to
// the end of the file. After a crash it rescans every segment from the one
// holding the recovery point: each batch's header, length, CRC-32C and
// offset order are checked, indexes are rebuilt, and the file is cut after
// the last good batch (a torn tail); segments after a cut are removed.
// Missing or corrupt index files of any segment are rebuilt the same way.
//
// # Concurrency
//
// One writer at a time (Append, Truncate, DeleteBefore, Roll); readers run
// beside it. A reader copies the segment list and the segment's published
// view under a read lock held for nanoseconds, then reads with pread
// outside any log-wide lock, so reads of sealed segments never wait for
// appends and appends never wait for reads. The segment it reads is pinned
// (a per-segment read lock) so that a truncation or deletion cannot cut or
// close the file under it; those wait for pinned readers. See locks.txt.
//
// # Zero copy
//
// Log implements storage.FileReader: ReadFile returns the byte range of
// whole batches in a segment file for sendfile. Reads and region reads
// stop at a segment's end, as Kafka's do.
package file
