package replica

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/runnel-io/runnel/sdk/storage"
)

// AppendReplicated appends batches a follower fetched from its leader,
// byte for byte, with the offsets and leader epochs the leader gave them,
// then takes the leader's high watermark (capped at its own log end) and
// log start offset. It returns the number of records appended. The leader
// epoch cache and the idempotent producers' state follow the batches, so
// that this replica can lead with them after a failover.
//
// Batches the log has already are skipped, and a trailing batch cut short
// by the fetch's byte limit is left for the next fetch. A batch that does
// not follow the log end offset (storage.ErrNotContiguous) means the logs
// diverged: the caller truncates again (see TruncationOffset).
func (p *Partition) AppendReplicated(ctx context.Context, batches []byte, leaderHW, leaderStart int64) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Load().Leader == p.self || p.deleted.Load() {
		return 0, ErrNotLeader // leader now: the fetch is stale
	}
	leo := p.Log().EndOffset()
	var (
		from, to   = -1, 0
		records    int64
		epochsDirt bool
	)
	it := storage.Batches(batches, false)
	for it.Next() {
		h := it.Header()
		if h.LastOffset() < leo {
			continue
		}
		if from < 0 {
			from = it.Pos()
			if h.BaseOffset < leo {
				// The log ends inside this batch (a truncation that was
				// not at a batch boundary): take it whole again.
				if err := p.Log().Truncate(ctx, h.BaseOffset); err != nil {
					return 0, fmt.Errorf("replica: %s: %w", p.id, err)
				}
			}
		}
		to = it.Good()
	}
	if from >= 0 {
		data := batches[from:to]
		if _, err := p.Log().Append(ctx, data); err != nil {
			return 0, fmt.Errorf("replica: append replicated batches to %s: %w", p.id, err)
		}
		it := storage.Batches(data, false)
		for it.Next() {
			h := it.Header()
			records += int64(h.RecordCount)
			if e := h.PartitionLeaderEpoch; e >= 0 {
				if n := len(p.epochs); n == 0 || p.epochs[n-1].Epoch < e {
					p.epochs = append(p.epochs, EpochEntry{Epoch: e, StartOffset: h.BaseOffset})
					epochsDirt = true
				}
			}
			if h.ProducerID >= 0 && h.Attributes&storage.AttrControl == 0 {
				p.recordProducer(h.ProducerID, h.ProducerEpoch, seenBatch{firstSeq: h.BaseSequence,
					lastSeq: nextSequence(h.BaseSequence, h.LastOffsetDelta), firstOffset: h.BaseOffset, lastOffset: h.LastOffset()}, h.MaxTimestamp)
			}
		}
		if epochsDirt {
			if err := writeFileAtomic(filepath.Join(p.dir, LeaderEpochFile), FormatEpochs(p.epochs)); err != nil {
				return records, err
			}
		}
	}
	leo = p.Log().EndOffset()
	if leaderStart > p.Log().StartOffset() && leaderStart <= leo {
		// The leader deleted records (retention, DeleteRecords): so does
		// its follower.
		if err := p.Log().DeleteBefore(ctx, leaderStart); err != nil {
			return records, fmt.Errorf("replica: %s: follow the leader's log start offset: %w", p.id, err)
		}
		p.trimEpochs()
	}
	if p.raiseHW(min(leaderHW, leo)) {
		p.wake()
	}
	return records, nil
}

// LatestEpoch is the newest leader epoch in the epoch cache, -1 when the
// cache is empty.
func (p *Partition) LatestEpoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.epochs); n > 0 {
		return p.epochs[n-1].Epoch
	}
	return -1
}

// TruncationOffset decides where a follower truncates, from the leader's
// answer to OffsetForLeaderEpoch for this replica's latest epoch (KIP-101,
// KIP-279): the leader's end offset for the largest epoch both know, or
// this replica's own end of that epoch when that is lower; without an
// epoch in common (-1), the high watermark, the offset known to be
// committed.
func (p *Partition) TruncationOffset(leaderEpoch int32, leaderEnd int64) int64 {
	leo := p.Log().EndOffset()
	if leaderEpoch < 0 || leaderEnd < 0 {
		return min(p.hw.Load(), leo)
	}
	e, end := p.EndOffsetForEpoch(leaderEpoch)
	if e < 0 {
		// Every epoch here is newer than any the leader knows: all of
		// them diverged.
		p.mu.Lock()
		end = leo
		if len(p.epochs) > 0 {
			end = p.epochs[0].StartOffset
		}
		p.mu.Unlock()
	}
	return min(leaderEnd, end, leo)
}

// FetchOffset is where a follower fetches next: its log end offset, or
// after ResetTo the leader's log start offset until it has reached it.
func (p *Partition) FetchOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if leo := p.Log().EndOffset(); leo >= p.resetAt {
		return leo
	}
	return p.resetAt
}

// TruncateTo removes every record from offset on (a divergent suffix a
// former leader wrote that the new leader does not have), with its leader
// epochs, and rebuilds the idempotent producers' state. The high
// watermark comes down to offset when it was above.
func (p *Partition) TruncateTo(ctx context.Context, offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset >= p.Log().EndOffset() {
		return nil
	}
	if err := p.Log().Truncate(ctx, offset); err != nil {
		return fmt.Errorf("replica: truncate %s to %d: %w", p.id, offset, err)
	}
	i := len(p.epochs)
	for i > 0 && p.epochs[i-1].StartOffset >= offset {
		i--
	}
	if i != len(p.epochs) {
		p.epochs = slices.Clone(p.epochs[:i])
		if err := writeFileAtomic(filepath.Join(p.dir, LeaderEpochFile), FormatEpochs(p.epochs)); err != nil {
			return err
		}
	}
	for {
		hw := p.hw.Load()
		if hw <= offset || p.hw.CompareAndSwap(hw, offset) {
			break
		}
	}
	clear(p.producers)
	p.producersDirty = true
	return p.loadProducers(ctx)
}

// ResetTo empties the log and restarts it at offset, for a follower so
// far behind that the leader no longer has the records it would fetch
// next (they went to retention): what it holds is all below the leader's
// log start, so none of it is needed.
func (p *Partition) ResetTo(ctx context.Context, offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.Log().Truncate(ctx, 0); err != nil {
		return fmt.Errorf("replica: reset %s: %w", p.id, err)
	}
	p.epochs = nil
	if err := writeFileAtomic(filepath.Join(p.dir, LeaderEpochFile), FormatEpochs(p.epochs)); err != nil {
		return err
	}
	p.hw.Store(0)
	clear(p.producers)
	p.producersDirty = true
	p.resetAt = offset
	return nil
}
