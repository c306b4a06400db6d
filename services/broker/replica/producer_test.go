package replica

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/config"
)

// idemBatch is testBatch as an idempotent producer sends it: n records from
// producer pid at epoch, starting at sequence seq.
func idemBatch(n int, pid int64, epoch int16, seq int32) []byte {
	b := testBatch(n, 1000, []byte("v"))
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	if err := storage.UpdateCRC(b); err != nil {
		panic(err)
	}
	return b
}

func appendIdem(t *testing.T, p *Partition, n int, pid int64, epoch int16, seq int32) (AppendResult, error) {
	t.Helper()
	b := idemBatch(n, pid, epoch, seq)
	info, err := ValidateProduce(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return p.Append(context.Background(), b, info, -1, 0)
}

func TestSequenceRules(t *testing.T) {
	_, p := newFixture(t, "memory", nil)
	must := func(res AppendResult, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res.BaseOffset
	}
	// Five batches in sequence: 0-1, 2-3, 4-4, 5-7, 8-8.
	offs := []int64{
		must(appendIdem(t, p, 2, 9, 0, 0)),
		must(appendIdem(t, p, 2, 9, 0, 2)),
		must(appendIdem(t, p, 1, 9, 0, 4)),
		must(appendIdem(t, p, 3, 9, 0, 5)),
		must(appendIdem(t, p, 1, 9, 0, 8)),
	}
	if want := []int64{0, 2, 4, 5, 8}; !equal64(offs, want) {
		t.Fatalf("offsets %v, want %v", offs, want)
	}
	// A retry of any of the last five batches is acknowledged where it
	// landed and not written again.
	for i, seq := range []int32{0, 2, 4, 5, 8} {
		n := []int{2, 2, 1, 3, 1}[i]
		if off := must(appendIdem(t, p, n, 9, 0, seq)); off != offs[i] {
			t.Fatalf("retry of sequence %d answered offset %d, want %d", seq, off, offs[i])
		}
	}
	if p.LogEndOffset() != 9 {
		t.Fatalf("log end %d after retries, want 9", p.LogEndOffset())
	}
	// A gap, a batch that overlaps but is not identical, and a repeat of
	// an older sequence than the last five are all out of order.
	for _, seq := range []int32{10, 7, 3} {
		if _, err := appendIdem(t, p, 1, 9, 0, seq); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("sequence %d after 8: %v, want out of order", seq, err)
		}
	}
	// The next in sequence is fine; the oldest remembered batch (0-1) is
	// now forgotten, so its retry is out of order.
	must(appendIdem(t, p, 1, 9, 0, 9))
	if _, err := appendIdem(t, p, 2, 9, 0, 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("retry of a forgotten batch: %v", err)
	}
	// A new epoch starts at 0; an older epoch is fenced.
	if _, err := appendIdem(t, p, 1, 9, 1, 5); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch at sequence 5: %v", err)
	}
	must(appendIdem(t, p, 1, 9, 1, 0))
	if _, err := appendIdem(t, p, 1, 9, 0, 10); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	// An unknown producer must start at 0.
	if _, err := appendIdem(t, p, 1, 77, 0, 3); !errors.Is(err, ErrUnknownProducerID) {
		t.Fatalf("unknown producer at sequence 3: %v", err)
	}
	must(appendIdem(t, p, 1, 77, 0, 0))
}

func TestSequenceWraps(t *testing.T) {
	if got := nextSequence(math.MaxInt32, 1); got != 0 {
		t.Fatalf("MaxInt32+1 = %d", got)
	}
	if got := nextSequence(math.MaxInt32-1, 3); got != 1 {
		t.Fatalf("MaxInt32-1+3 = %d", got)
	}
	for _, c := range [][2]int32{{5, 3}, {0, 1}, {1, 3}, {math.MaxInt32, 7}} {
		if got := prevSequence(nextSequence(c[0], c[1]), c[1]); got != c[0] {
			t.Fatalf("prev(next(%d,%d)) = %d", c[0], c[1], got)
		}
	}
	_, p := newFixture(t, "memory", nil)
	p.producers[3] = &producerState{epoch: 0, batches: []seenBatch{{firstSeq: math.MaxInt32 - 1, lastSeq: math.MaxInt32}}}
	if _, err := appendIdem(t, p, 2, 3, 0, 0); err != nil {
		t.Fatalf("sequence 0 after MaxInt32: %v", err)
	}
}

func equal64(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSnapshotFormat(t *testing.T) {
	entries := []snapshotEntry{{ProducerID: 1, Epoch: 2, LastSeq: 3, LastOffset: 4, OffsetDelta: 1, Timestamp: 5}}
	got := formatSnapshot(entries)
	// version 1, CRC, one entry, then the fields with coordinator epoch -1
	// and no open transaction (-1).
	body := "00000001" + "0000000000000001" + "0002" + "00000003" + "0000000000000004" + "00000001" +
		"0000000000000005" + "ffffffff" + "ffffffffffffffff"
	if hex.EncodeToString(got[:2]) != "0001" || hex.EncodeToString(got[6:]) != body {
		t.Fatalf("snapshot bytes %x", got)
	}
	back, err := parseSnapshot(got)
	if err != nil || len(back) != 1 || back[0] != entries[0] {
		t.Fatalf("parse: %+v %v", back, err)
	}
	bad := bytes.Clone(got)
	bad[len(bad)-1] ^= 1
	if _, err := parseSnapshot(bad); !errors.Is(err, ErrSnapshot) {
		t.Fatalf("bad CRC: %v", err)
	}
	if _, err := parseSnapshot(got[:len(got)-1]); !errors.Is(err, ErrSnapshot) {
		t.Fatalf("short: %v", err)
	}
}

func FuzzParseSnapshot(f *testing.F) {
	f.Add(formatSnapshot(nil))
	f.Add(formatSnapshot([]snapshotEntry{{ProducerID: 1, Epoch: 2, LastSeq: 3, LastOffset: 40, OffsetDelta: 3, Timestamp: 5}}))
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("error %v does not wrap ErrSnapshot", err)
			}
			return
		}
		if again := formatSnapshot(entries); len(again) != len(b) {
			t.Fatalf("re-encoded %d bytes, parsed %d", len(again), len(b))
		}
	})
}

// reopen closes the fixture's manager (a clean stop) unless crash is set,
// and hosts the same partition again from the same directory.
func reopenFile(t *testing.T, f *fixture, dir string, crash bool) *Partition {
	t.Helper()
	if !crash {
		if err := f.m.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		// A crash writes no snapshot: forget every snapshot file so the
		// state must come from the log.
		f.m.Close()
		offs := snapshotOffsets(filepath.Join(dir, "t-0"))
		if len(offs) == 0 {
			t.Fatal("no snapshot was written at close")
		}
		for _, off := range offs {
			os.Remove(filepath.Join(dir, "t-0", snapshotName(off)))
		}
	}
	bc, _ := config.NewBroker(nil)
	b := file.New(dir)
	t.Cleanup(func() { b.Close() })
	f.m = NewManager(Params{BrokerID: 1, DataDir: dir, Backend: b, Broker: bc})
	t.Cleanup(func() { f.m.Close() })
	f.sync(t, nil, 3)
	return f.m.Partition("t", 0)
}

func TestProducerStateSurvivesRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := map[bool]string{false: "clean stop", true: "crash"}[crash]
		t.Run(name, func(t *testing.T) {
			f, p := newFixture(t, "file", nil)
			dir := f.dir
			for seq := int32(0); seq < 12; seq += 2 {
				if _, err := appendIdem(t, p, 2, 5, 0, seq); err != nil {
					t.Fatal(err)
				}
			}
			if !crash {
				// A snapshot mid-way proves the log after it is replayed too.
				if err := p.SnapshotProducers(); err != nil {
					t.Fatal(err)
				}
			}
			p = reopenFile(t, f, dir, crash)
			if p.LogEndOffset() != 12 {
				t.Fatalf("log end %d after reopen", p.LogEndOffset())
			}
			res, err := appendIdem(t, p, 2, 5, 0, 10)
			if err != nil || res.BaseOffset != 10 {
				t.Fatalf("retry of the last batch after restart: %+v %v", res, err)
			}
			if _, err := appendIdem(t, p, 2, 5, 0, 14); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("gap after restart: %v", err)
			}
			if _, err := appendIdem(t, p, 2, 5, 0, 12); err != nil {
				t.Fatalf("next batch after restart: %v", err)
			}
			if p.LogEndOffset() != 14 {
				t.Fatalf("log end %d", p.LogEndOffset())
			}
		})
	}
}

func TestProducersExpire(t *testing.T) {
	_, p := newFixture(t, "memory", nil)
	if _, err := appendIdem(t, p, 1, 5, 0, 0); err != nil {
		t.Fatal(err)
	}
	// The batch's timestamp is 1000 ms; a day later the producer is gone.
	if n := p.expireProducers(1000+86400000-1, 86400000); n != 0 {
		t.Fatalf("expired %d producers too early", n)
	}
	if n := p.expireProducers(1000+86400000, 86400000); n != 1 {
		t.Fatalf("expired %d producers", n)
	}
	if _, err := appendIdem(t, p, 1, 5, 0, 1); !errors.Is(err, ErrUnknownProducerID) {
		t.Fatalf("after expiry: %v", err)
	}
}
