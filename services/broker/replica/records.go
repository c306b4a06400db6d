package replica

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/sdk/storage"
)

// KeyValue is a record the broker writes itself (the group coordinator's
// __consumer_offsets records). A nil Value is a null value: a tombstone.
type KeyValue struct {
	Key, Value []byte
}

// BuildBatch returns one uncompressed v2 batch holding records, as the
// broker writes its own records: base offset 0 (Append assigns the real
// one), every record stamped ts, no producer id, a valid CRC-32C.
func BuildBatch(ts int64, records []KeyValue) []byte {
	var body []byte
	for i, kv := range records {
		r := kmsg.Record{OffsetDelta: int32(i), Key: kv.Key, Value: kv.Value}
		// The length prefix counts what follows it, so encode once to
		// learn it (a zero length takes one byte), then for real.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	n := len(records)
	b := kmsg.RecordBatch{
		Length:          int32(storage.BatchHeaderSize - storage.BatchLogOverhead + len(body)),
		Magic:           storage.MagicV2,
		LastOffsetDelta: int32(max(n-1, 0)),
		FirstTimestamp:  ts,
		MaxTimestamp:    ts,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(n),
		Records:         body,
	}
	out := b.AppendTo(make([]byte, 0, storage.BatchHeaderSize+len(body)))
	_ = storage.UpdateCRC(out)
	return out
}

// Record is one record of a stored batch. Key and Value are nil when null;
// they alias the batch (or its decompressed copy) and are valid only
// during the callback that receives them.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	// raw is the whole record, its length prefix included.
	raw []byte
}

// EachRecord calls fn with every record of one whole batch, decompressing
// the batch when it is compressed. Control batches are skipped. It stops
// at fn's first error and returns it.
func EachRecord(batch []byte, fn func(Record) error) error {
	h, err := storage.ParseBatchHeader(batch)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	if h.Attributes&storage.AttrControl != 0 {
		return nil
	}
	view, err := uncompressedView(batch)
	if err != nil {
		return err
	}
	return walkRecords(&h, view[storage.BatchHeaderSize:], fn)
}

// walkRecords parses the uncompressed records section of a batch with
// header h.
func walkRecords(h *storage.BatchHeader, recs []byte, fn func(Record) error) error {
	for i := int32(0); i < h.RecordCount; i++ {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || length > int64(len(recs)-n) {
			return fmt.Errorf("%w: record %d of the batch at %d: bad length", ErrCorruptBatch, i, h.BaseOffset)
		}
		raw := recs[:n+int(length)]
		recs = recs[n+int(length):]
		var r kmsg.Record
		if err := r.UnsafeReadFrom(raw); err != nil {
			return fmt.Errorf("%w: record %d of the batch at %d: %v", ErrCorruptBatch, i, h.BaseOffset, err)
		}
		ts := h.BaseTimestamp + r.TimestampDelta64
		if h.LogAppendTime() {
			ts = h.MaxTimestamp
		}
		if err := fn(Record{Offset: h.BaseOffset + int64(r.OffsetDelta), Timestamp: ts, Key: r.Key, Value: r.Value, raw: raw}); err != nil {
			return err
		}
	}
	return nil
}

// CheckKeys reports ErrInvalidRecord when a record of the batch has no key,
// which a compacted topic cannot keep (Kafka refuses such a produce).
func CheckKeys(batch []byte) error {
	return EachRecord(batch, func(r Record) error {
		if r.Key == nil {
			return fmt.Errorf("%w: a compacted topic cannot accept a record without a key (offset delta %d)", ErrInvalidRecord, r.Offset)
		}
		return nil
	})
}
