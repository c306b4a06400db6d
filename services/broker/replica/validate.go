package replica

import (
	"errors"
	"fmt"

	"github.com/runnel-io/runnel/sdk/storage"
)

// Errors of produce validation, each mapped to a Kafka error code by the
// produce handler.
var (
	// ErrCorruptBatch means the record set is not a whole, well-formed magic
	// v2 batch or its CRC-32C does not match (CORRUPT_MESSAGE, 2).
	ErrCorruptBatch = errors.New("replica: corrupt record batch")
	// ErrBatchTooLarge means a batch exceeds max.message.bytes
	// (MESSAGE_TOO_LARGE, 10).
	ErrBatchTooLarge = errors.New("replica: record batch larger than max.message.bytes")
	// ErrInvalidRecord means a batch is well formed but not acceptable from
	// a producer: more than one batch, no records, a record count that
	// disagrees with the offset range, or a control batch (INVALID_RECORD, 87).
	ErrInvalidRecord = errors.New("replica: invalid record batch from a producer")
	// ErrMagic means the batch is not in the v2 format that produce v3+
	// requires (UNSUPPORTED_FOR_MESSAGE_FORMAT, 43).
	ErrMagic = errors.New("replica: record batch magic is not 2")
)

// BatchInfo is what validation learns from a produced batch's header.
type BatchInfo struct {
	Records       int32
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	LastDelta     int32
	MaxTimestamp  int64
	Transactional bool
}

// ValidateProduce checks the record set of one partition of a produce
// request the way Kafka's LogValidator does for v2 batches, looking only at
// the batch header and the CRC (never at individual records, which stay as
// the producer compressed them): exactly one whole batch, magic 2, a CRC-32C
// that matches, at most maxBytes bytes, at least one record and a record
// count equal to the offset range. It never modifies records.
func ValidateProduce(records []byte, maxBytes int32) (BatchInfo, error) {
	var info BatchInfo
	if len(records) == 0 {
		return info, fmt.Errorf("%w: empty record set", ErrCorruptBatch)
	}
	if len(records) > storage.BatchLogOverhead+4 && records[16] != storage.MagicV2 {
		return info, fmt.Errorf("%w: magic %d", ErrMagic, int8(records[16]))
	}
	h, err := storage.CheckBatch(records)
	if err != nil {
		if errors.Is(err, storage.ErrBatchMagic) {
			return info, fmt.Errorf("%w: %v", ErrMagic, err)
		}
		return info, fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	if h.Size() != int64(len(records)) {
		return info, fmt.Errorf("%w: %d bytes follow the first batch; a producer sends one batch per partition", ErrInvalidRecord, int64(len(records))-h.Size())
	}
	if h.Size() > int64(maxBytes) {
		return info, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBatchTooLarge, h.Size(), maxBytes)
	}
	if h.RecordCount == 0 || int64(h.RecordCount) != int64(h.LastOffsetDelta)+1 {
		return info, fmt.Errorf("%w: %d records for offset delta %d", ErrInvalidRecord, h.RecordCount, h.LastOffsetDelta)
	}
	if h.Attributes&storage.AttrControl != 0 {
		return info, fmt.Errorf("%w: control batches come from brokers only", ErrInvalidRecord)
	}
	info = BatchInfo{
		Records:       h.RecordCount,
		ProducerID:    h.ProducerID,
		ProducerEpoch: h.ProducerEpoch,
		BaseSequence:  h.BaseSequence,
		LastDelta:     h.LastOffsetDelta,
		MaxTimestamp:  h.MaxTimestamp,
		Transactional: h.Attributes&storage.AttrTransactional != 0,
	}
	return info, nil
}
