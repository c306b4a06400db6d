package conformance

import (
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/sdk/storage"
)

// BatchSpec describes a record batch to build for a test.
type BatchSpec struct {
	BaseOffset    int64
	LeaderEpoch   int32
	BaseTimestamp int64
	// Timestamps gives each record's timestamp; missing entries repeat
	// BaseTimestamp. The batch's max timestamp is their maximum.
	Timestamps []int64
	// Values are the records' values, one record each; keys are nil.
	Values [][]byte
	// LogAppendTime stamps the batch with this time (as a broker would).
	LogAppendTime int64
	UseAppendTime bool
	// Compression sets the codec bits without compressing: the records
	// become an opaque payload, as a storage layer sees a compressed batch.
	Compression int16
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Batch builds an uncompressed CreateTime batch at base with one record per
// value, every record stamped ts.
func Batch(base, ts int64, values ...[]byte) []byte {
	return BuildBatch(BatchSpec{BaseOffset: base, BaseTimestamp: ts, Values: values})
}

// BuildBatch encodes spec as a magic v2 batch with franz-go's kmsg types,
// so the bytes are what a real Kafka client would send.
func BuildBatch(spec BatchSpec) []byte {
	var records []byte
	maxTs := spec.BaseTimestamp
	if len(spec.Values) == 0 {
		maxTs = spec.BaseTimestamp
	}
	for i, v := range spec.Values {
		ts := spec.BaseTimestamp
		if i < len(spec.Timestamps) {
			ts = spec.Timestamps[i]
		}
		if i == 0 || ts > maxTs {
			maxTs = ts
		}
		rec := kmsg.Record{TimestampDelta64: ts - spec.BaseTimestamp, OffsetDelta: int32(i), Value: v}
		// Length counts the bytes after the length varint itself, so encode
		// once to measure (the zero length takes one byte), then for real.
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		records = rec.AppendTo(records)
	}
	attrs := spec.Compression & storage.AttrCompressionMask
	if spec.UseAppendTime {
		attrs |= storage.AttrLogAppendTime
		maxTs = spec.LogAppendTime
	}
	lastDelta := int32(len(spec.Values) - 1)
	if lastDelta < 0 {
		lastDelta = 0
	}
	b := kmsg.RecordBatch{
		FirstOffset:          spec.BaseOffset,
		PartitionLeaderEpoch: spec.LeaderEpoch,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      lastDelta,
		FirstTimestamp:       spec.BaseTimestamp,
		MaxTimestamp:         maxTs,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(spec.Values)),
		Records:              records,
	}
	b.Length = int32(storage.BatchHeaderSize - storage.BatchLogOverhead + len(records))
	out := b.AppendTo(nil)
	crc := crc32.Checksum(out[21:], crcTable)
	out[17], out[18], out[19], out[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return out
}

// Value returns a deterministic value of n bytes for record seq, so that a
// test can check the bytes it reads back.
func Value(seq int64, n int) []byte {
	v := make([]byte, n)
	x := uint64(seq)*0x9E3779B97F4A7C15 + 1
	for i := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[i] = byte(x)
	}
	return v
}
