package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Layout of the magic v2 record batch header (Kafka's DefaultRecordBatch).
// All integers are big-endian. The CRC-32C covers everything from the
// attributes to the end of the batch, so the base offset and the partition
// leader epoch can be rewritten without recomputing it.
const (
	offBaseOffset           = 0
	offBatchLength          = 8
	offPartitionLeaderEpoch = 12
	offMagic                = 16
	offCRC                  = 17
	offAttributes           = 21
	offLastOffsetDelta      = 23
	offBaseTimestamp        = 27
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offRecordCount          = 57

	// BatchHeaderSize is the size of a v2 batch header; records follow it.
	BatchHeaderSize = 61
	// BatchLogOverhead is the part of the header that batchLength does not
	// count: the base offset and batchLength itself.
	BatchLogOverhead = 12
	// MagicV2 is the only batch format the storage layer accepts.
	MagicV2 = 2
)

// Attribute bits of a v2 batch.
const (
	AttrCompressionMask = 0x07 // 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	AttrLogAppendTime   = 0x08 // timestamp type: set for LogAppendTime
	AttrTransactional   = 0x10
	AttrControl         = 0x20
)

// Errors of the batch codec. Each wraps ErrInvalidBatch, so one errors.Is
// test covers them all; the codec wraps them further with the batch's byte
// position.
var (
	// ErrShortBatch means the bytes end before the header or before the
	// length the header announces: a truncated (torn) batch.
	ErrShortBatch = fmt.Errorf("%w: truncated batch", ErrInvalidBatch)
	// ErrBatchMagic means the magic byte is not 2.
	ErrBatchMagic = fmt.Errorf("%w: magic is not 2", ErrInvalidBatch)
	// ErrBatchLength means a header field is out of range: a batchLength
	// too small to hold the header, a negative record count or
	// lastOffsetDelta, or a base offset whose last offset overflows.
	ErrBatchLength = fmt.Errorf("%w: header field out of range", ErrInvalidBatch)
	// ErrBatchCRC means the CRC-32C does not match the batch contents.
	ErrBatchCRC = fmt.Errorf("%w: CRC-32C mismatch", ErrInvalidBatch)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is a decoded v2 batch header.
type BatchHeader struct {
	BaseOffset           int64
	BatchLength          int32 // bytes after this field: Size() - BatchLogOverhead
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the whole batch's size in bytes, header included.
func (h *BatchHeader) Size() int64 { return int64(h.BatchLength) + BatchLogOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression is the compression codec number (0 none ... 4 zstd).
func (h *BatchHeader) Compression() int { return int(h.Attributes & AttrCompressionMask) }

// LogAppendTime reports whether the batch's timestamps are the broker's
// append time (then every record's timestamp is MaxTimestamp).
func (h *BatchHeader) LogAppendTime() bool { return h.Attributes&AttrLogAppendTime != 0 }

// ParseBatchHeader decodes and checks the header at the start of b: at
// least BatchHeaderSize bytes, magic 2, a batchLength that covers the
// header, non-negative lastOffsetDelta and record count, and a last offset
// below math.MaxInt64 (so LastOffset()+1 never overflows). It checks neither that the whole batch is present
// nor its CRC (see CheckBatch). It does not allocate.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < BatchHeaderSize {
		return h, ErrShortBatch
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	h.BatchLength = int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[offPartitionLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offBaseSequence:]))
	h.RecordCount = int32(binary.BigEndian.Uint32(b[offRecordCount:]))
	if h.Magic != MagicV2 {
		return h, ErrBatchMagic
	}
	if h.BatchLength < BatchHeaderSize-BatchLogOverhead || h.LastOffsetDelta < 0 || h.RecordCount < 0 ||
		h.BaseOffset >= math.MaxInt64-int64(h.LastOffsetDelta) {
		return h, ErrBatchLength
	}
	return h, nil
}

// CheckBatch parses the header at the start of b, checks that the whole
// batch is present and that its CRC-32C matches, and returns the header.
// b may continue past the batch; h.Size() tells where the next one starts.
func CheckBatch(b []byte) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if int64(len(b)) < h.Size() {
		return h, ErrShortBatch
	}
	if crc32.Checksum(b[offAttributes:h.Size()], castagnoli) != h.CRC {
		return h, ErrBatchCRC
	}
	return h, nil
}

// ComputeCRC returns the CRC-32C the batch at the start of b should carry.
// b must hold the whole batch and nothing after it.
func ComputeCRC(batch []byte) uint32 {
	if len(batch) < BatchHeaderSize {
		return 0
	}
	return crc32.Checksum(batch[offAttributes:], castagnoli)
}

// SetBaseOffset rewrites the batch's base offset (not covered by the CRC).
func SetBaseOffset(batch []byte, offset int64) error {
	if len(batch) < BatchHeaderSize {
		return ErrShortBatch
	}
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(offset))
	return nil
}

// SetPartitionLeaderEpoch rewrites the batch's partition leader epoch (not
// covered by the CRC).
func SetPartitionLeaderEpoch(batch []byte, epoch int32) error {
	if len(batch) < BatchHeaderSize {
		return ErrShortBatch
	}
	binary.BigEndian.PutUint32(batch[offPartitionLeaderEpoch:], uint32(epoch))
	return nil
}

// SetLogAppendTime marks the batch as LogAppendTime with max timestamp ts,
// as a broker does for topics with message.timestamp.type=LogAppendTime,
// and recomputes the CRC. batch must be exactly one whole batch.
func SetLogAppendTime(batch []byte, ts int64) error {
	if len(batch) < BatchHeaderSize {
		return ErrShortBatch
	}
	attrs := binary.BigEndian.Uint16(batch[offAttributes:]) | AttrLogAppendTime
	binary.BigEndian.PutUint16(batch[offAttributes:], attrs)
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(ts))
	return UpdateCRC(batch)
}

// UpdateCRC recomputes and stores the batch's CRC-32C after its covered
// fields changed. batch must be exactly one whole batch.
func UpdateCRC(batch []byte) error {
	if len(batch) < BatchHeaderSize {
		return ErrShortBatch
	}
	binary.BigEndian.PutUint32(batch[offCRC:], ComputeCRC(batch))
	return nil
}

// BatchIter walks concatenated batches without allocating:
//
//	it := storage.Batches(buf, true)
//	for it.Next() {
//		h, b := it.Header(), it.Batch()
//	}
//	if err := it.Err(); err != nil { ... }
//
// Iteration stops at the first bad batch; Err then wraps the codec error
// with the batch's byte position, and Good tells where the good prefix ends.
type BatchIter struct {
	buf      []byte
	pos      int
	next     int
	checkCRC bool
	hdr      BatchHeader
	err      error
}

// Batches returns an iterator over b. With checkCRC it verifies each
// batch's CRC-32C too (CheckBatch); without, only headers and lengths.
func Batches(b []byte, checkCRC bool) BatchIter {
	return BatchIter{buf: b, checkCRC: checkCRC}
}

// Next advances to the next batch; it returns false at the end of the
// bytes or at a bad batch (see Err).
func (it *BatchIter) Next() bool {
	if it.err != nil || it.next >= len(it.buf) {
		return false
	}
	it.pos = it.next
	rest := it.buf[it.pos:]
	var h BatchHeader
	var err error
	if it.checkCRC {
		h, err = CheckBatch(rest)
	} else {
		h, err = ParseBatchHeader(rest)
		if err == nil && int64(len(rest)) < h.Size() {
			err = ErrShortBatch
		}
	}
	if err != nil {
		it.err = fmt.Errorf("batch at byte %d: %w", it.pos, err)
		return false
	}
	it.hdr = h
	it.next = it.pos + int(h.Size())
	return true
}

// Header returns the current batch's header.
func (it *BatchIter) Header() BatchHeader { return it.hdr }

// Batch returns the current batch's bytes (a subslice of the input).
func (it *BatchIter) Batch() []byte { return it.buf[it.pos:it.next:it.next] }

// Pos returns the byte position of the current batch.
func (it *BatchIter) Pos() int { return it.pos }

// Good returns the end of the last good batch: after Next returned false
// with an error, where the bad batch starts (the point to truncate a torn
// log at).
func (it *BatchIter) Good() int { return it.next }

// Err returns the error that stopped iteration, or nil at a clean end.
func (it *BatchIter) Err() error { return it.err }
