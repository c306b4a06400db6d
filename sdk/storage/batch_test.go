package storage_test

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

// kmsgBatch builds a batch directly with kmsg, independently of the
// conformance builder, so the codec is checked against a second encoder.
func kmsgBatch(t testing.TB, base int64, epoch int32, attrs int16, ts int64, values ...string) []byte {
	t.Helper()
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{TimestampDelta64: int64(i) * 10, OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		FirstOffset: base, PartitionLeaderEpoch: epoch, Magic: 2, Attributes: attrs,
		LastOffsetDelta: int32(len(values) - 1), FirstTimestamp: ts, MaxTimestamp: ts + int64(len(values)-1)*10,
		ProducerID: 7, ProducerEpoch: 3, FirstSequence: 11, NumRecords: int32(len(values)), Records: recs,
	}
	b.Length = int32(49 + len(recs))
	out := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

func TestParseBatchHeaderMatchesKmsg(t *testing.T) {
	raw := kmsgBatch(t, 1234, 9, storage.AttrTransactional, 1_700_000_000_000, "a", "bb", "ccc")
	h, err := storage.CheckBatch(raw)
	if err != nil {
		t.Fatalf("CheckBatch: %v", err)
	}
	var want kmsg.RecordBatch
	if err := want.ReadFrom(raw); err != nil {
		t.Fatalf("kmsg ReadFrom: %v", err)
	}
	got := []int64{h.BaseOffset, int64(h.BatchLength), int64(h.PartitionLeaderEpoch), int64(h.Magic), int64(int32(h.CRC)),
		int64(h.Attributes), int64(h.LastOffsetDelta), h.BaseTimestamp, h.MaxTimestamp, h.ProducerID,
		int64(h.ProducerEpoch), int64(h.BaseSequence), int64(h.RecordCount)}
	exp := []int64{want.FirstOffset, int64(want.Length), int64(want.PartitionLeaderEpoch), int64(want.Magic), int64(want.CRC),
		int64(want.Attributes), int64(want.LastOffsetDelta), want.FirstTimestamp, want.MaxTimestamp, want.ProducerID,
		int64(want.ProducerEpoch), int64(want.FirstSequence), int64(want.NumRecords)}
	for i := range got {
		if got[i] != exp[i] {
			t.Errorf("field %d: got %d, kmsg says %d", i, got[i], exp[i])
		}
	}
	if h.Size() != int64(len(raw)) || h.LastOffset() != 1236 || h.Compression() != 0 || h.LogAppendTime() {
		t.Errorf("derived: size %d last %d comp %d lat %v", h.Size(), h.LastOffset(), h.Compression(), h.LogAppendTime())
	}
}

func TestSettersKeepCRCValid(t *testing.T) {
	raw := kmsgBatch(t, 0, 0, 0, 1000, "x", "y")
	if err := storage.SetBaseOffset(raw, 500); err != nil {
		t.Fatal(err)
	}
	if err := storage.SetPartitionLeaderEpoch(raw, 42); err != nil {
		t.Fatal(err)
	}
	// Base offset and epoch are outside the CRC: still valid without UpdateCRC.
	h, err := storage.CheckBatch(raw)
	if err != nil {
		t.Fatalf("after base offset/epoch: %v", err)
	}
	if h.BaseOffset != 500 || h.PartitionLeaderEpoch != 42 {
		t.Fatalf("got base %d epoch %d", h.BaseOffset, h.PartitionLeaderEpoch)
	}
	if err := storage.SetLogAppendTime(raw, 99_000); err != nil {
		t.Fatal(err)
	}
	h, err = storage.CheckBatch(raw)
	if err != nil {
		t.Fatalf("after SetLogAppendTime: %v", err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != 99_000 {
		t.Fatalf("LogAppendTime %v max %d", h.LogAppendTime(), h.MaxTimestamp)
	}
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	if uint32(kb.CRC) != crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatal("stored CRC does not match an independent CRC-32C")
	}
	// A covered byte flipped without UpdateCRC must fail; UpdateCRC repairs it.
	raw[len(raw)-1] ^= 0xff
	if _, err := storage.CheckBatch(raw); !errors.Is(err, storage.ErrBatchCRC) || !errors.Is(err, storage.ErrInvalidBatch) {
		t.Fatalf("flipped byte: got %v, want ErrBatchCRC", err)
	}
	if err := storage.UpdateCRC(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.CheckBatch(raw); err != nil {
		t.Fatalf("after UpdateCRC: %v", err)
	}
	for _, f := range []func([]byte) error{
		func(b []byte) error { return storage.SetBaseOffset(b, 1) },
		func(b []byte) error { return storage.SetPartitionLeaderEpoch(b, 1) },
		func(b []byte) error { return storage.SetLogAppendTime(b, 1) },
		storage.UpdateCRC,
	} {
		if err := f(make([]byte, 60)); !errors.Is(err, storage.ErrShortBatch) {
			t.Errorf("setter on 60 bytes: got %v", err)
		}
	}
}

func TestParseBatchHeaderRejects(t *testing.T) {
	good := kmsgBatch(t, 10, 0, 0, 1, "v")
	mut := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, storage.ErrShortBatch},
		{"60 bytes", good[:60], storage.ErrShortBatch},
		{"magic 1", mut(func(b []byte) { b[16] = 1 }), storage.ErrBatchMagic},
		{"length below header", mut(func(b []byte) { b[8], b[9], b[10], b[11] = 0, 0, 0, 48 }), storage.ErrBatchLength},
		{"negative length", mut(func(b []byte) { b[8] = 0x80 }), storage.ErrBatchLength},
		{"negative lastOffsetDelta", mut(func(b []byte) { b[23] = 0xff }), storage.ErrBatchLength},
		{"negative record count", mut(func(b []byte) { b[57] = 0xff }), storage.ErrBatchLength},
		{"offset overflow", mut(func(b []byte) {
			b[0] = 0x7f
			b[1] = 0xff
			b[2] = 0xff
			b[3] = 0xff
			b[4] = 0xff
			b[5] = 0xff
			b[6] = 0xff
			b[7] = 0xff
		}), storage.ErrBatchLength},
		{"truncated body", good[:len(good)-1], storage.ErrShortBatch},
		{"crc", mut(func(b []byte) { b[20] ^= 1 }), storage.ErrBatchCRC},
	}
	for _, c := range cases {
		_, err := storage.CheckBatch(c.b)
		if !errors.Is(err, c.want) || !errors.Is(err, storage.ErrInvalidBatch) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestBatchIter(t *testing.T) {
	var all []byte
	var ends []int
	for i := int64(0); i < 5; i++ {
		all = append(all, kmsgBatch(t, i*3, 0, 0, 100, "a", "b", "c")...)
		ends = append(ends, len(all))
	}
	it := storage.Batches(all, true)
	n := 0
	for it.Next() {
		h := it.Header()
		if h.BaseOffset != int64(n)*3 || it.Pos()+len(it.Batch()) != ends[n] || it.Good() != ends[n] {
			t.Fatalf("batch %d: base %d pos %d len %d", n, h.BaseOffset, it.Pos(), len(it.Batch()))
		}
		n++
	}
	if it.Err() != nil || n != 5 {
		t.Fatalf("iterated %d batches, err %v", n, it.Err())
	}
	// A torn tail stops iteration with ErrShortBatch and Good at the last whole batch.
	for cut := ends[3] + 1; cut < ends[4]; cut++ {
		it := storage.Batches(all[:cut], false)
		n := 0
		for it.Next() {
			n++
		}
		if n != 4 || !errors.Is(it.Err(), storage.ErrShortBatch) || it.Good() != ends[3] {
			t.Fatalf("cut %d: %d batches, err %v, good %d", cut, n, it.Err(), it.Good())
		}
	}
	// A corrupt middle batch stops with ErrBatchCRC only when CRCs are checked.
	bad := bytes.Clone(all)
	bad[ends[1]+storage.BatchHeaderSize] ^= 0x55
	it = storage.Batches(bad, true)
	for it.Next() {
	}
	if !errors.Is(it.Err(), storage.ErrBatchCRC) || it.Good() != ends[1] {
		t.Fatalf("corrupt: err %v good %d", it.Err(), it.Good())
	}
	it = storage.Batches(bad, false)
	for it.Next() {
	}
	if it.Err() != nil {
		t.Fatalf("header-only walk of a CRC-bad batch: %v", it.Err())
	}
}

func TestParseAllocationFree(t *testing.T) {
	raw := kmsgBatch(t, 0, 0, 0, 1, "abc", "def")
	two := append(bytes.Clone(raw), raw...)
	allocs := testing.AllocsPerRun(100, func() {
		it := storage.Batches(two, true)
		for it.Next() {
		}
		_, _ = storage.FindTimestamp(raw, 5, 0)
		_ = storage.SetLogAppendTime(raw, 5)
	})
	if allocs != 0 {
		t.Fatalf("codec allocated %.1f times per run", allocs)
	}
}

func TestFindTimestamp(t *testing.T) {
	// kmsgBatch gives record i the timestamp ts + 10*i.
	raw := kmsgBatch(t, 100, 0, 0, 1000, "a", "b", "c", "d")
	cases := []struct {
		ts, min      int64
		off, rts     int64
		found, exact bool
	}{
		{0, 0, 100, 1000, true, true},
		{1000, 0, 100, 1000, true, true},
		{1001, 0, 101, 1010, true, true},
		{1030, 0, 103, 1030, true, true},
		{1031, 0, 0, 0, false, false},
		{0, 102, 102, 1020, true, true},
		{0, 104, 0, 0, false, false},
	}
	for _, c := range cases {
		m, err := storage.FindTimestamp(raw, c.ts, c.min)
		if err != nil {
			t.Fatal(err)
		}
		if m.Found != c.found || m.Found && (m.Offset != c.off || m.Timestamp != c.rts || m.Exact != c.exact) {
			t.Errorf("ts %d min %d: got %+v", c.ts, c.min, m)
		}
	}
	lat := conformance.BuildBatch(conformance.BatchSpec{BaseOffset: 5, BaseTimestamp: 1, Values: [][]byte{{1}, {2}}, UseAppendTime: true, LogAppendTime: 777})
	if m, _ := storage.FindTimestamp(lat, 700, 6); !m.Found || !m.Exact || m.Offset != 6 || m.Timestamp != 777 {
		t.Errorf("LogAppendTime: %+v", m)
	}
	comp := conformance.BuildBatch(conformance.BatchSpec{BaseOffset: 5, BaseTimestamp: 10, Timestamps: []int64{10, 50}, Values: [][]byte{{1}, {2}}, Compression: 1})
	if m, _ := storage.FindTimestamp(comp, 20, 0); !m.Found || m.Exact || m.Offset != 5 || m.Timestamp != 50 {
		t.Errorf("compressed: %+v", m)
	}
	// Records claiming more than the batch holds are malformed.
	bad := bytes.Clone(raw)
	bad[60] = 9 // record count 9
	if _, err := storage.FindTimestamp(bad, 1031, 0); err != nil {
		t.Errorf("max timestamp below target must not walk records: %v", err)
	}
	if _, err := storage.FindTimestamp(bad, 1000+35, 0); err != nil {
		t.Errorf("unexpected: %v", err)
	}
	bad[44-9] = 0x7f // max timestamp huge: forces a walk past the 4 real records
	if _, err := storage.FindTimestamp(bad, 1<<60, 0); !errors.Is(err, storage.ErrRecords) {
		t.Errorf("overlong record count: got %v, want ErrRecords", err)
	}
}

func TestCheckAppend(t *testing.T) {
	b1 := conformance.Batch(10, 5, []byte("a"), []byte("b"))
	b2 := conformance.Batch(12, 9, []byte("c"))
	info, err := storage.CheckAppend(append(bytes.Clone(b1), b2...), 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := storage.AppendInfo{FirstOffset: 10, LastOffset: 12, MaxTimestamp: 9, OffsetOfMaxTimestamp: 12, Batches: 2, Records: 3, Bytes: int64(len(b1) + len(b2))}
	if info != want {
		t.Fatalf("got %+v, want %+v", info, want)
	}
	if _, err := storage.CheckAppend(b1, 11, 1<<20); !errors.Is(err, storage.ErrNotContiguous) {
		t.Errorf("base below end: %v", err)
	}
	if _, err := storage.CheckAppend(append(bytes.Clone(b2), b1...), 0, 1<<20); !errors.Is(err, storage.ErrNotContiguous) {
		t.Errorf("decreasing: %v", err)
	}
	if _, err := storage.CheckAppend(b1, 0, int32(len(b1)-1)); !errors.Is(err, storage.ErrBatchTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := storage.CheckAppend(nil, 0, 1<<20); !errors.Is(err, storage.ErrInvalidBatch) {
		t.Errorf("empty: %v", err)
	}
	if _, err := storage.CheckAppend(append(bytes.Clone(b1), b2[:70]...), 0, 1<<20); !errors.Is(err, storage.ErrShortBatch) {
		t.Errorf("torn second batch: %v", err)
	}
}

func TestPartitionAndConfig(t *testing.T) {
	for _, p := range []storage.PartitionID{{"", 0}, {".", 0}, {"..", 0}, {"a/b", 0}, {"t", -1}, {string(make([]byte, 250)), 0}} {
		if err := p.Validate(); !errors.Is(err, storage.ErrInvalidPartition) {
			t.Errorf("%q/%d: got %v", p.Topic, p.Partition, err)
		}
	}
	if err := (storage.PartitionID{Topic: "orders.v1_x-y", Partition: 3}).Validate(); err != nil {
		t.Errorf("legal name: %v", err)
	}
	if s := (storage.PartitionID{Topic: "t", Partition: 3}).String(); s != "t-3" {
		t.Errorf("String: %q", s)
	}
	c := storage.DefaultConfig("/d")
	if c.SegmentBytes != 1<<30 || c.IndexIntervalBytes != 4096 || c.MaxIndexBytes != 10<<20 || c.FileDeleteDelayMs != 60000 || c.Validate() != nil {
		t.Errorf("defaults: %+v", c)
	}
	bad := c
	bad.SegmentBytes = 10
	if err := bad.Validate(); !errors.Is(err, storage.ErrInvalidConfig) {
		t.Errorf("tiny segment: %v", err)
	}
}
