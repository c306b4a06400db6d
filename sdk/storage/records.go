package storage

import (
	"encoding/binary"
	"fmt"
)

// ErrRecords means the records inside an uncompressed batch do not parse
// (a bad varint, a length past the batch's end, fewer records than the
// header counts). It wraps ErrInvalidBatch.
var ErrRecords = fmt.Errorf("%w: malformed records", ErrInvalidBatch)

// TimestampMatch is FindTimestamp's answer.
type TimestampMatch struct {
	Offset    int64
	Timestamp int64
	// Found is false when no record of the batch qualifies.
	Found bool
	// Exact is false when the batch is compressed with CreateTime
	// timestamps: the match is then the batch itself (its first offset not
	// below minOffset, and its max timestamp).
	Exact bool
}

// FindTimestamp looks inside one whole batch for the first record whose
// offset is >= minOffset and whose timestamp is >= ts. It walks the records
// of uncompressed batches (reading only each record's length, timestamp
// delta and offset delta, without allocating); LogAppendTime batches give
// every record the batch's max timestamp; compressed CreateTime batches
// are answered at batch granularity (Exact false). The CRC is not checked.
func FindTimestamp(batch []byte, ts, minOffset int64) (TimestampMatch, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return TimestampMatch{}, err
	}
	if int64(len(batch)) < h.Size() {
		return TimestampMatch{}, ErrShortBatch
	}
	if h.MaxTimestamp < ts || h.LastOffset() < minOffset {
		return TimestampMatch{}, nil
	}
	first := max(h.BaseOffset, minOffset)
	if h.LogAppendTime() {
		return TimestampMatch{Offset: first, Timestamp: h.MaxTimestamp, Found: true, Exact: true}, nil
	}
	if h.Compression() != 0 {
		return TimestampMatch{Offset: first, Timestamp: h.MaxTimestamp, Found: true}, nil
	}
	recs := batch[BatchHeaderSize:h.Size()]
	for i := int32(0); i < h.RecordCount; i++ {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || length > int64(len(recs)-n) {
			return TimestampMatch{}, fmt.Errorf("record %d: length: %w", i, ErrRecords)
		}
		body := recs[n : n+int(length)]
		recs = recs[n+int(length):]
		// attributes (1 byte), timestampDelta (varlong), offsetDelta (varint)
		if len(body) < 1 {
			return TimestampMatch{}, fmt.Errorf("record %d: attributes: %w", i, ErrRecords)
		}
		body = body[1:]
		tsDelta, n := binary.Varint(body)
		if n <= 0 {
			return TimestampMatch{}, fmt.Errorf("record %d: timestamp delta: %w", i, ErrRecords)
		}
		offDelta, m := binary.Varint(body[n:])
		if m <= 0 || offDelta < 0 || offDelta > int64(h.LastOffsetDelta) {
			return TimestampMatch{}, fmt.Errorf("record %d: offset delta: %w", i, ErrRecords)
		}
		off := h.BaseOffset + offDelta
		rts := h.BaseTimestamp + tsDelta
		if off >= minOffset && rts >= ts {
			return TimestampMatch{Offset: off, Timestamp: rts, Found: true, Exact: true}, nil
		}
	}
	return TimestampMatch{}, nil
}

// CheckAppend validates the bytes of an Append: one or more whole batches,
// each with a valid header and CRC-32C, no larger than maxBatch bytes, the
// first based at or after endOffset and each after the previous one's last
// offset. It returns the summary every backend reports (LogStartOffset is
// left for the caller). Backends call it before storing anything, so that a
// bad Append stores nothing.
func CheckAppend(batches []byte, endOffset int64, maxBatch int32) (AppendInfo, error) {
	info := AppendInfo{FirstOffset: -1, LastOffset: -1, MaxTimestamp: -1, OffsetOfMaxTimestamp: -1}
	if len(batches) == 0 {
		return info, fmt.Errorf("%w: no batches", ErrInvalidBatch)
	}
	next := endOffset
	it := Batches(batches, true)
	for it.Next() {
		h := it.Header()
		if h.BaseOffset < next {
			return info, fmt.Errorf("batch at byte %d has base offset %d, expected at least %d: %w",
				it.Pos(), h.BaseOffset, next, ErrNotContiguous)
		}
		if h.Size() > int64(maxBatch) {
			return info, fmt.Errorf("batch at byte %d is %d bytes, segment.bytes is %d: %w",
				it.Pos(), h.Size(), maxBatch, ErrBatchTooLarge)
		}
		if info.Batches == 0 {
			info.FirstOffset = h.BaseOffset
		}
		if h.MaxTimestamp > info.MaxTimestamp {
			info.MaxTimestamp = h.MaxTimestamp
			info.OffsetOfMaxTimestamp = h.LastOffset()
		}
		info.LastOffset = h.LastOffset()
		info.Batches++
		info.Records += int64(h.RecordCount)
		info.Bytes += h.Size()
		next = h.LastOffset() + 1
	}
	if err := it.Err(); err != nil {
		return info, err
	}
	return info, nil
}
