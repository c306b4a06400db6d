package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/runnel-io/runnel/sdk/storage"
)

// Errors of the idempotent producer checks (Kafka's ProducerStateManager
// rules of the 2.x line), each mapped to its Kafka error code by the
// produce handler.
var (
	// ErrOutOfOrderSequence means a batch's first sequence does not follow
	// the producer's last one in this partition, or a new producer epoch
	// does not start at sequence 0 (OUT_OF_ORDER_SEQUENCE_NUMBER, 45).
	ErrOutOfOrderSequence = errors.New("replica: out of order sequence number")
	// ErrInvalidProducerEpoch means a batch carries an older epoch than the
	// producer already wrote with: a fenced, zombie producer
	// (INVALID_PRODUCER_EPOCH, 47).
	ErrInvalidProducerEpoch = errors.New("replica: producer epoch is older than the current one")
	// ErrUnknownProducerID means the partition keeps no state for the
	// producer (it expired, or its records were deleted) and the batch does
	// not start at sequence 0 (UNKNOWN_PRODUCER_ID, 59); the client resets
	// its sequence and retries.
	ErrUnknownProducerID = errors.New("replica: no state for this producer id")
	// ErrSnapshot means a producer state snapshot file is malformed.
	ErrSnapshot = errors.New("replica: malformed producer state snapshot")
)

// retainedBatches is how many of a producer's latest batches a partition
// remembers for duplicate detection: the most a producer has in flight
// (max.in.flight.requests.per.connection is at most 5 with idempotence).
const retainedBatches = 5

// producerState is what a partition knows of one idempotent producer: its
// epoch and its latest batches, oldest first.
type producerState struct {
	epoch   int16
	batches []seenBatch
	// lastTimestamp is the max timestamp of the producer's last batch, by
	// which the state expires (producer.id.expiration.ms).
	lastTimestamp int64
}

// seenBatch is one batch a producer wrote: its sequence range and where it
// landed.
type seenBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// nextSequence is Kafka's sequence arithmetic: sequences wrap from
// MaxInt32 to 0.
func nextSequence(seq, inc int32) int32 {
	if seq > math.MaxInt32-inc {
		return inc - (math.MaxInt32 - seq) - 1
	}
	return seq + inc
}

// prevSequence undoes nextSequence: the sequence dec steps before seq.
func prevSequence(seq, dec int32) int32 {
	if seq < dec {
		return math.MaxInt32 - (dec - seq) + 1
	}
	return seq - dec
}

// checkSequence applies Kafka's idempotence rules to a batch about to be
// appended. It reports the first offset of an identical batch already
// written (a retry) or an error; on (0, false, nil) the batch is new and
// in sequence. Called with p.mu held.
func (p *Partition) checkSequence(info BatchInfo) (int64, bool, error) {
	ps := p.producers[info.ProducerID]
	lastSeq := nextSequence(info.BaseSequence, info.LastDelta)
	if ps == nil {
		if info.BaseSequence != 0 {
			return 0, false, fmt.Errorf("%w: producer %d starts at sequence %d", ErrUnknownProducerID, info.ProducerID, info.BaseSequence)
		}
		return 0, false, nil
	}
	switch {
	case info.ProducerEpoch < ps.epoch:
		return 0, false, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, info.ProducerID, info.ProducerEpoch, ps.epoch)
	case info.ProducerEpoch > ps.epoch:
		if info.BaseSequence != 0 {
			return 0, false, fmt.Errorf("%w: producer %d's new epoch %d starts at sequence %d, not 0", ErrOutOfOrderSequence, info.ProducerID, info.ProducerEpoch, info.BaseSequence)
		}
		return 0, false, nil
	}
	for _, b := range ps.batches {
		if b.firstSeq == info.BaseSequence && b.lastSeq == lastSeq {
			return b.firstOffset, true, nil
		}
	}
	if n := len(ps.batches); n == 0 {
		if info.BaseSequence != 0 {
			return 0, false, fmt.Errorf("%w: producer %d has no batch in epoch %d, got sequence %d", ErrOutOfOrderSequence, info.ProducerID, ps.epoch, info.BaseSequence)
		}
	} else if last := ps.batches[n-1].lastSeq; info.BaseSequence != nextSequence(last, 1) {
		return 0, false, fmt.Errorf("%w: producer %d sent sequence %d after %d", ErrOutOfOrderSequence, info.ProducerID, info.BaseSequence, last)
	}
	return 0, false, nil
}

// recordProducer remembers a batch written by an idempotent producer.
// Called with p.mu held (or while the partition is being opened).
func (p *Partition) recordProducer(pid int64, epoch int16, b seenBatch, maxTs int64) {
	ps := p.producers[pid]
	if ps == nil || ps.epoch != epoch {
		ps = &producerState{epoch: epoch}
		p.producers[pid] = ps
	}
	if len(ps.batches) == retainedBatches {
		copy(ps.batches, ps.batches[1:])
		ps.batches = ps.batches[:retainedBatches-1]
	}
	ps.batches = append(ps.batches, b)
	ps.lastTimestamp = maxTs
	p.producersDirty = true
}

// expireProducers forgets producers whose last batch is older than
// producer.id.expiration.ms, as Kafka does; their next batch must then
// start a new sequence (UNKNOWN_PRODUCER_ID otherwise).
func (p *Partition) expireProducers(nowMs, expirationMs int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for pid, ps := range p.producers {
		if nowMs-ps.lastTimestamp >= expirationMs {
			delete(p.producers, pid)
			n++
		}
	}
	if n > 0 {
		p.producersDirty = true
	}
	return n
}

// Producer state snapshots, in Kafka's format and file naming: a
// "<offset>.snapshot" file in the partition directory holds every
// producer's state as of that log end offset, as Kafka's
// ProducerStateManager writes it:
//
//	version int16 (1) | crc uint32 (CRC-32C of what follows) |
//	count int32 | count × {producerId int64, epoch int16, lastSequence int32,
//	lastOffset int64, offsetDelta int32, timestamp int64,
//	coordinatorEpoch int32, currentTxnFirstOffset int64}
//
// Only each producer's last batch is kept (as in Kafka), so after a restart
// a retry of that batch is still recognised.
const (
	snapshotSuffix    = ".snapshot"
	snapshotVersion   = 1
	snapshotEntrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8
	snapshotHeader    = 2 + 4 + 4
	snapshotsKept     = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshotEntry is one producer in a snapshot file.
type snapshotEntry struct {
	ProducerID  int64
	Epoch       int16
	LastSeq     int32
	LastOffset  int64
	OffsetDelta int32
	Timestamp   int64
}

// FormatSnapshot renders producer state entries in Kafka's snapshot format.
func formatSnapshot(entries []snapshotEntry) []byte {
	out := make([]byte, snapshotHeader, snapshotHeader+len(entries)*snapshotEntrySize)
	binary.BigEndian.PutUint16(out, snapshotVersion)
	binary.BigEndian.PutUint32(out[6:], uint32(len(entries)))
	for _, e := range entries {
		out = binary.BigEndian.AppendUint64(out, uint64(e.ProducerID))
		out = binary.BigEndian.AppendUint16(out, uint16(e.Epoch))
		out = binary.BigEndian.AppendUint32(out, uint32(e.LastSeq))
		out = binary.BigEndian.AppendUint64(out, uint64(e.LastOffset))
		out = binary.BigEndian.AppendUint32(out, uint32(e.OffsetDelta))
		out = binary.BigEndian.AppendUint64(out, uint64(e.Timestamp))
		out = binary.BigEndian.AppendUint32(out, math.MaxUint32) // coordinator epoch: -1, no transactions
		out = binary.BigEndian.AppendUint64(out, math.MaxUint64) // current transaction's first offset: -1
	}
	binary.BigEndian.PutUint32(out[2:], crc32.Checksum(out[6:], castagnoli))
	return out
}

// parseSnapshot decodes a snapshot file, checking its version, length and
// CRC.
func parseSnapshot(b []byte) ([]snapshotEntry, error) {
	if len(b) < snapshotHeader {
		return nil, fmt.Errorf("%w: %d bytes", ErrSnapshot, len(b))
	}
	if v := int16(binary.BigEndian.Uint16(b)); v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d", ErrSnapshot, v)
	}
	if crc := binary.BigEndian.Uint32(b[2:]); crc != crc32.Checksum(b[6:], castagnoli) {
		return nil, fmt.Errorf("%w: CRC mismatch", ErrSnapshot)
	}
	n := int32(binary.BigEndian.Uint32(b[6:]))
	if n < 0 || int64(n)*snapshotEntrySize != int64(len(b)-snapshotHeader) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrSnapshot, n, len(b))
	}
	out := make([]snapshotEntry, n)
	r := b[snapshotHeader:]
	for i := range out {
		out[i] = snapshotEntry{
			ProducerID:  int64(binary.BigEndian.Uint64(r)),
			Epoch:       int16(binary.BigEndian.Uint16(r[8:])),
			LastSeq:     int32(binary.BigEndian.Uint32(r[10:])),
			LastOffset:  int64(binary.BigEndian.Uint64(r[14:])),
			OffsetDelta: int32(binary.BigEndian.Uint32(r[22:])),
			Timestamp:   int64(binary.BigEndian.Uint64(r[26:])),
		}
		if out[i].OffsetDelta < 0 || out[i].LastOffset < int64(out[i].OffsetDelta) {
			return nil, fmt.Errorf("%w: entry %d has offset delta %d at offset %d", ErrSnapshot, i, out[i].OffsetDelta, out[i].LastOffset)
		}
		r = r[snapshotEntrySize:]
	}
	return out, nil
}

func snapshotName(offset int64) string { return fmt.Sprintf("%020d%s", offset, snapshotSuffix) }

// snapshotOffsets lists the offsets of the snapshot files in dir, ascending.
func snapshotOffsets(dir string) []int64 {
	entries, _ := os.ReadDir(dir)
	var out []int64
	for _, e := range entries {
		stem, ok := strings.CutSuffix(e.Name(), snapshotSuffix)
		if !ok || len(stem) != 20 {
			continue
		}
		if off, err := strconv.ParseInt(stem, 10, 64); err == nil && off >= 0 {
			out = append(out, off)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// SnapshotProducers writes the producer state as of the log end offset to
// "<leo>.snapshot" (when it changed since the last snapshot) and removes
// all but the latest snapshots. Appends wait meanwhile, so the state and
// the offset agree.
func (p *Partition) SnapshotProducers() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snapshotLocked()
}

func (p *Partition) snapshotLocked() error {
	if !p.producersDirty {
		return nil
	}
	leo := p.Log().EndOffset()
	entries := make([]snapshotEntry, 0, len(p.producers))
	for pid, ps := range p.producers {
		if len(ps.batches) == 0 {
			continue
		}
		b := ps.batches[len(ps.batches)-1]
		entries = append(entries, snapshotEntry{ProducerID: pid, Epoch: ps.epoch, LastSeq: b.lastSeq,
			LastOffset: b.lastOffset, OffsetDelta: int32(b.lastOffset - b.firstOffset), Timestamp: ps.lastTimestamp})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].ProducerID < entries[j].ProducerID })
	if err := writeFileAtomic(filepath.Join(p.dir, snapshotName(leo)), formatSnapshot(entries)); err != nil {
		return fmt.Errorf("replica: producer snapshot of %s: %w", p.id, err)
	}
	p.producersDirty = false
	offs := snapshotOffsets(p.dir)
	for i, off := range offs {
		if i < len(offs)-snapshotsKept || off > leo {
			_ = os.Remove(filepath.Join(p.dir, snapshotName(off)))
		}
	}
	return nil
}

// loadProducers rebuilds the producer state when a partition opens: from
// the latest snapshot at or below the log end offset, then from the batch
// headers after it (all of them when there is no usable snapshot), as
// Kafka rebuilds its state after a crash. Snapshots past the log end (a
// truncated or lost log) are removed.
func (p *Partition) loadProducers(ctx context.Context) error {
	leo, start := p.Log().EndOffset(), p.Log().StartOffset()
	from := start
	offs := snapshotOffsets(p.dir)
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		path := filepath.Join(p.dir, snapshotName(off))
		if off > leo {
			_ = os.Remove(path)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		entries, err := parseSnapshot(data)
		if err != nil {
			_ = os.Remove(path) // a torn snapshot: an older one or the log will do
			continue
		}
		for _, e := range entries {
			p.producers[e.ProducerID] = &producerState{epoch: e.Epoch, lastTimestamp: e.Timestamp, batches: []seenBatch{{
				firstSeq: prevSequence(e.LastSeq, e.OffsetDelta), lastSeq: e.LastSeq,
				firstOffset: e.LastOffset - int64(e.OffsetDelta), lastOffset: e.LastOffset,
			}}}
		}
		from = max(off, start)
		break
	}
	for from < leo {
		r, err := p.Log().Read(ctx, from, 1<<20, math.MaxInt64)
		if err != nil {
			return fmt.Errorf("replica: rebuild producer state of %s at %d: %w", p.id, from, err)
		}
		if len(r.Batches) == 0 {
			break
		}
		it := storage.Batches(r.Batches, false)
		for it.Next() {
			h := it.Header()
			if h.ProducerID < 0 || h.Attributes&storage.AttrControl != 0 || h.LastOffset() < from {
				continue
			}
			p.recordProducer(h.ProducerID, h.ProducerEpoch, seenBatch{firstSeq: h.BaseSequence,
				lastSeq: nextSequence(h.BaseSequence, h.LastOffsetDelta), firstOffset: h.BaseOffset, lastOffset: h.LastOffset()}, h.MaxTimestamp)
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("replica: rebuild producer state of %s: %w", p.id, err)
		}
		from = r.NextOffset
	}
	return nil
}
