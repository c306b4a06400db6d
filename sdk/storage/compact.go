package storage

import (
	"context"
	"errors"
)

// ErrSegmentChanged means Compact found the segment gone, cut or no longer
// sealed when it came to replace it (a concurrent DeleteBefore, Truncate,
// or a segment that is still the active one). Nothing was changed; the
// caller may try again later.
var ErrSegmentChanged = errors.New("storage: segment changed during compaction")

// Compactor is implemented by logs that can rewrite a sealed segment in
// place, which log compaction (cleanup.policy=compact) needs. It is
// optional: the broker leaves logs that lack it uncompacted. The broker
// decides what to keep (it reads the records); the log only rewrites.
type Compactor interface {
	// Compact rewrites the sealed segment whose base offset is base. For
	// each batch stored in it, in order, keep gets the batch's bytes
	// (valid only during the call) and returns what to store instead: the
	// same bytes, another whole valid v2 batch whose offsets lie within
	// the original's (fewer records, same base offset), or nil to drop
	// the batch. A keep error stops Compact, which then changes nothing
	// and returns it; a bad batch from keep wraps ErrInvalidBatch.
	//
	// The segment keeps its base offset (its name), its creation and
	// last-modified times and its place in the log, even when it ends up
	// empty. Offsets are never renumbered, so the log has gaps afterwards,
	// which Read steps over. Readers and appends go on meanwhile; only the
	// swap of the new contents for the old briefly holds appends, and a
	// reader that started on the old contents finishes on them. After a
	// crash the segment holds either the old contents or the new.
	Compact(ctx context.Context, base int64, keep func(batch []byte) ([]byte, error)) (CompactResult, error)
}

// CompactResult describes what a Compact changed.
type CompactResult struct {
	BatchesBefore, BatchesAfter int
	BytesBefore, BytesAfter     int64
}
