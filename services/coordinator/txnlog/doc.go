// Package txnlog is the standalone coordinator's durable transaction log and
// snapshot store. Records are opaque payloads (serialized transactions) keyed
// by a strictly increasing, positive int64 zxid; snapshots are opaque bytes
// written by a callback. Ensemble mode replicates through hashicorp/raft and
// does not use this package.
//
// # Usage
//
// A committer does group commit: it calls Append for every record of a
// batch, calls Sync once, and only then acknowledges the batch:
//
//	l, err := txnlog.Open(txnlog.DefaultOptions(dir))
//	...
//	zxid, snap, err := l.OpenLatestSnapshot() // restore the tree from snap
//	err = l.Replay(zxid, apply)                // then the newer transactions
//	...
//	for _, t := range batch { err = l.Append(t.Zxid, t.Bytes) }
//	err = l.Sync() // now acknowledge every record of the batch
//	...
//	err = l.WriteSnapshot(tree.Zxid(), tree.Serialize)
//	err = l.PurgeSnapshots(3)
//	err = l.PurgeBefore(oldestKeptSnapshotZxid + 1)
//
// # Durability contract
//
// Append only copies the record into a memory buffer (written to the
// operating system when the buffer fills); a record is durable once a later
// Sync has returned nil. Sync writes whatever is buffered and calls
// fdatasync on the active segment, so after it returns every record appended
// before it survives a process crash, a kernel crash or a power loss (as far
// as the disk honours flushes). Records appended but not yet synced may or may
// not survive, and may survive only in part: recovery keeps a prefix of them.
//
// Rolling to a new segment flushes and fdatasyncs the old one first, and a new
// segment file and its directory entry are fsynced when it is created, so Sync
// needs to flush only the active segment. Every segment but the last is
// therefore complete on disk, and damage inside one is reported as an error by
// Open rather than repaired: it cannot be a torn write, and dropping the
// records after it would lose acknowledged transactions.
//
// When Sync (or a write) fails, the Log refuses all later writes with the same
// error. After a failed fdatasync the kernel may have dropped the dirty pages
// and a retry could report success for data that never reached the disk, so
// the only safe continuation is to close the Log and recover with Open.
//
// Segments are preallocated by default (fallocate, or writing zeros where the
// file system lacks it), so that appends do not grow the file and fdatasync
// need not update the file size. Some file systems still record the first
// write into a fallocated range as a metadata change; writing zeros avoids
// that but costs a full write of the segment.
//
// The data directory is locked with flock on Linux, so two processes cannot
// open the same log.
//
// # Recovery
//
// Open scans every segment in zxid order and checks each record's length
// bound, CRC-32C and zxid order. The last segment ends at its first frame that
// is all zeros (the preallocated tail) or at the end of the file; a torn or
// corrupt record there, and everything after it, is cut: the file is
// truncated after the last complete record and preallocated again, so that
// stale bytes of unacknowledged records can never be mistaken for records
// written later. Recovery reports what it cut through Log.Recovery and a
// warning on the Options.Logger. A last segment left with no complete record
// is removed, so the next Append starts a segment named after its own zxid.
//
// Why not look past a bad record for valid ones? A crash without fdatasync may
// persist the pages of a write out of order, so valid-looking records after a
// hole are normal after a crash, and they were never acknowledged.
//
// An empty log has LastZxid 0. A caller that restores from a snapshot treats
// the larger of the snapshot's zxid and LastZxid as the last applied one.
//
// # Segment format
//
// Segments are files named log.<first zxid as 16 lowercase hex digits>, like
// ZooKeeper's. Integers are big-endian. A segment starts with a 16-byte
// header:
//
//	magic   [4]byte  "RNTX"
//	version uint32   1
//	base    int64    zxid of the first record, equal to the file name
//
// followed by records, each framed as:
//
//	length  uint32   payload length, at most MaxPayload
//	crc     uint32   CRC-32C (Castagnoli) of the zxid field and the payload
//	zxid    int64    > 0, greater than the previous record's
//	payload [length]byte
//
// then zero bytes up to the preallocated size. Zxids are positive, so a frame
// of 16 zero bytes is never a record and marks the end of the data.
//
// # Snapshot format
//
// Snapshots live in the same directory, named snapshot.<zxid as 16 hex
// digits>. Each is written to a temporary file, fsynced, renamed into place,
// and the directory fsynced, so a snapshot is either absent or complete. The
// file is a 16-byte header, the callback's bytes, and a 12-byte trailer:
//
//	magic   [4]byte  "RNSN"
//	version uint32   1
//	zxid    int64    equal to the file name
//	body    []byte   what the write callback wrote
//	length  uint64   length of body
//	crc     uint32   CRC-32C of every byte before it (header, body, length)
//
// # Concurrency
//
// All methods are safe for concurrent use. Append and Sync serialize on one
// mutex; Replay holds it only to flush the buffer and capture the segment
// list, so its callback may call back into the Log. Snapshot methods use a
// separate mutex and never block Append.
package txnlog
