package replica

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/runnel-io/runnel/sdk/storage"
)

func TestValidateProduce(t *testing.T) {
	good := testBatch(3, 100, []byte("abc"))
	info, err := ValidateProduce(good, 1<<20)
	if err != nil || info.Records != 3 || info.ProducerID != -1 || info.LastDelta != 2 {
		t.Fatalf("good batch: %+v %v", info, err)
	}
	mutate := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	cases := []struct {
		name string
		b    []byte
		max  int32
		want error
	}{
		{"empty", nil, 1 << 20, ErrCorruptBatch},
		{"short header", good[:30], 1 << 20, ErrCorruptBatch},
		{"truncated", good[:len(good)-1], 1 << 20, ErrCorruptBatch},
		{"crc", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 1 << 20, ErrCorruptBatch},
		{"magic", mutate(func(b []byte) []byte { b[16] = 1; return b }), 1 << 20, ErrMagic},
		{"two batches", append(append([]byte(nil), good...), good...), 1 << 20, ErrInvalidRecord},
		{"too large", good, int32(len(good) - 1), ErrBatchTooLarge},
		{"count mismatch", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 2)
			_ = storage.UpdateCRC(b)
			return b
		}), 1 << 20, ErrInvalidRecord},
		{"control batch", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[21:], storage.AttrControl)
			_ = storage.UpdateCRC(b)
			return b
		}), 1 << 20, ErrInvalidRecord},
	}
	for _, c := range cases {
		if _, err := ValidateProduce(c.b, c.max); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzValidateProduce: whatever validation accepts is one whole batch
// whose CRC the storage codec also accepts, so the append that follows
// cannot fail on the format.
func FuzzValidateProduce(f *testing.F) {
	f.Add(testBatch(1, 1, []byte("v")), int32(1<<20))
	f.Add(testBatch(5, 1_700_000_000_000, []byte("value")), int32(1<<20))
	f.Add(testBatch(2, 0, nil)[:40], int32(100))
	f.Fuzz(func(t *testing.T, b []byte, max int32) {
		info, err := ValidateProduce(b, max)
		if err != nil {
			return
		}
		h, err := storage.CheckBatch(b)
		if err != nil {
			t.Fatalf("accepted a batch the codec refuses: %v", err)
		}
		if h.Size() != int64(len(b)) || h.Size() > int64(max) || info.Records != h.RecordCount || h.RecordCount < 1 {
			t.Fatalf("accepted %+v (%d bytes, limit %d)", h, len(b), max)
		}
		// Append rewrites the base offset before storing, as here.
		b = append([]byte(nil), b...)
		_ = storage.SetBaseOffset(b, 0)
		if _, err := storage.CheckAppend(b, 0, 1<<30); err != nil {
			t.Fatalf("storage would refuse it: %v", err)
		}
	})
}
