package replica

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/config"
)

// Errors of partition operations.
var (
	// ErrNotLeader means this broker does not lead the partition
	// (NOT_LEADER_OR_FOLLOWER, 6).
	ErrNotLeader = errors.New("replica: not the leader of the partition")
	// ErrNotEnoughReplicas means acks=all found the ISR smaller than
	// min.insync.replicas (NOT_ENOUGH_REPLICAS, 19).
	ErrNotEnoughReplicas = errors.New("replica: ISR smaller than min.insync.replicas")
	// ErrOffsetOutOfRange means an offset is outside [log start, high
	// watermark] where that is required (OFFSET_OUT_OF_RANGE, 1).
	ErrOffsetOutOfRange = errors.New("replica: offset out of range")
	// ErrNotEnoughReplicasAfterAppend means an acks=all write reached
	// every ISR member, but the ISR had shrunk below min.insync.replicas
	// meanwhile (NOT_ENOUGH_REPLICAS_AFTER_APPEND, 20).
	ErrNotEnoughReplicasAfterAppend = errors.New("replica: ISR shrank below min.insync.replicas after the append")
)

// State is a partition's replication state as the metadata describes it.
type State struct {
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	// Version is the state znode's version (-1 before the first state):
	// a state older than the one held is ignored.
	Version int32
}

// Bound is how far a read may go.
type Bound int

const (
	// ToHighWatermark reads committed records only, as consumers do.
	ToHighWatermark Bound = iota
	// ToLogEnd reads up to the log end offset, as followers and the
	// partition's own loaders do.
	ToLogEnd
)

// Partition is one partition replica hosted by this broker: its log, its
// leadership state, the high watermark and the fetches waiting for data.
//
// Appends are serialized by the partition's lock (offsets are assigned
// under it); reads take no lock beyond what the log takes. As leader, the
// partition tracks each follower's log end offset from its fetches
// (replication.go) and keeps the high watermark at the smallest log end
// offset in the ISR; on a lone broker that is its own. As follower, it
// appends what the fetcher brings from the leader and takes the leader's
// high watermark (follower.go).
//
// Lock order: mu before rmu before waitMu.
type Partition struct {
	id      storage.PartitionID
	self    int32
	dir     string // where the leader-epoch checkpoint lives
	logRef  atomic.Pointer[logRef]
	cfg     atomic.Pointer[config.Topic]
	hw      atomic.Int64
	state   atomic.Pointer[State]
	deleted atomic.Bool

	mu             sync.Mutex // serializes appends and epoch changes
	epochs         []EpochEntry
	producers      map[int64]*producerState
	producersDirty bool // changed since the last snapshot

	// The leader's view of its followers, and the signal of high
	// watermark and state changes that acks=all produces wait on.
	rmu       sync.Mutex
	followers map[int32]*followerState
	hwCh      chan struct{}
	isrQueued bool // an ISR change is waiting for the ISR worker
	isrQueue  chan<- *Partition
	// epochStart is where the current leader epoch began: a follower
	// joins the ISR only once it has reached it.
	epochStart atomic.Int64
	// resetAt is where a follower reset by ResetTo fetches from until its
	// log reaches it (guarded by mu).
	resetAt int64

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{}
}

// newPartition opens a hosted partition with the high watermark hw from
// the checkpoint (capped at the log end offset).
func newPartition(ctx context.Context, id storage.PartitionID, self int32, dir string, log storage.Log, cfg config.Topic, hw int64) (*Partition, error) {
	p := &Partition{id: id, self: self, dir: dir, producers: map[int64]*producerState{}, waiters: map[chan struct{}]struct{}{},
		followers: map[int32]*followerState{}, hwCh: make(chan struct{})}
	p.logRef.Store(&logRef{log})
	p.cfg.Store(&cfg)
	p.state.Store(&State{Leader: -1, LeaderEpoch: -1, Version: -1})
	p.hw.Store(min(max(hw, log.StartOffset()), log.EndOffset()))
	data, err := os.ReadFile(filepath.Join(dir, LeaderEpochFile))
	switch {
	case err == nil:
		if p.epochs, err = ParseEpochs(data); err != nil {
			return nil, fmt.Errorf("replica: %s: %w", id, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("replica: %s: %w", id, err)
	}
	if err := p.loadProducers(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// ID names the partition.
func (p *Partition) ID() storage.PartitionID { return p.id }

// Config is the topic's effective configuration.
func (p *Partition) Config() *config.Topic { return p.cfg.Load() }

// State is the partition's current replication state.
func (p *Partition) State() State { return *p.state.Load() }

// IsLeader reports whether this broker leads the partition.
func (p *Partition) IsLeader() bool { return p.state.Load().Leader == p.self }

// HighWatermark is the offset up to which records are committed and
// visible to consumers.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// LogStartOffset is the first offset still in the log.
func (p *Partition) LogStartOffset() int64 { return p.Log().StartOffset() }

// LogEndOffset is the offset the next record will get.
func (p *Partition) LogEndOffset() int64 { return p.Log().EndOffset() }

// logRef holds the partition's current log, which a change of its storage
// settings replaces.
type logRef struct{ storage.Log }

// Log is the partition's storage.
func (p *Partition) Log() storage.Log { return p.logRef.Load().Log }

// setState applies a metadata change and reports whether it was applied
// (a state older than the one held is not). Becoming leader at a new epoch
// records the epoch's start offset (the log end offset), as Kafka's
// leader-epoch cache does, and starts tracking the followers afresh.
func (p *Partition) setState(s State, now time.Time) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.state.Load()
	if s.Version >= 0 && s.Version < old.Version {
		return false, nil
	}
	defer p.signal()
	leads := s.Leader == p.self && s.LeaderEpoch >= 0
	var err error
	if leads {
		// The epoch cache and the follower table are ready before the
		// state shows: a follower's fetch that finds this broker leading
		// finds its own entry too.
		err = p.recordEpoch(s.LeaderEpoch)
		p.trackFollowers(s, old.Leader != p.self || old.LeaderEpoch != s.LeaderEpoch, now)
	}
	p.state.Store(&s)
	if leads {
		p.maybeAdvanceHW()
	}
	return true, err
}

// recordEpoch makes epoch, when newer than the cache's latest, start at
// the log end offset, and checkpoints the cache. Called with p.mu held.
func (p *Partition) recordEpoch(epoch int32) error {
	n := len(p.epochs)
	if n > 0 && p.epochs[n-1].Epoch >= epoch {
		return nil
	}
	leo := p.Log().EndOffset()
	if n > 0 && p.epochs[n-1].StartOffset == leo {
		p.epochs[n-1].Epoch = epoch // no record was written under the old epoch
	} else {
		p.epochs = append(p.epochs, EpochEntry{Epoch: epoch, StartOffset: leo})
	}
	return writeFileAtomic(filepath.Join(p.dir, LeaderEpochFile), FormatEpochs(p.epochs))
}

// AppendResult is what an append stored.
type AppendResult struct {
	BaseOffset     int64
	LogAppendTime  int64 // -1 for CreateTime topics
	LogStartOffset int64
	// LastOffset and LeaderEpoch are what an acks=all produce waits for
	// (WaitReplicated).
	LastOffset  int64
	LeaderEpoch int32
}

// Append assigns offsets to one validated batch (see ValidateProduce),
// stamps the leader epoch and, for LogAppendTime topics, the broker's time,
// and appends it. acks=-1 requires the ISR to hold min.insync.replicas.
// The batch bytes are modified in place. now is the broker time in
// milliseconds.
func (p *Partition) Append(ctx context.Context, batch []byte, info BatchInfo, acks int16, now int64) (AppendResult, error) {
	res := AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	cfg := p.cfg.Load()
	st := p.state.Load()
	if st.Leader != p.self || p.deleted.Load() {
		return res, ErrNotLeader
	}
	if acks == -1 && int32(len(st.ISR)) < cfg.MinInsyncReplicas {
		return res, fmt.Errorf("%w: ISR %v, min.insync.replicas %d", ErrNotEnoughReplicas, st.ISR, cfg.MinInsyncReplicas)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if info.ProducerID >= 0 {
		off, dup, err := p.checkSequence(info)
		if err != nil {
			return res, err
		}
		if dup {
			// A retry of a batch already written: acknowledge it where it
			// landed, without writing it again.
			res.BaseOffset, res.LogStartOffset = off, p.Log().StartOffset()
			res.LastOffset, res.LeaderEpoch = off+int64(info.LastDelta), st.LeaderEpoch
			return res, nil
		}
	}
	base := p.Log().EndOffset()
	if err := storage.SetBaseOffset(batch, base); err != nil {
		return res, err
	}
	if err := storage.SetPartitionLeaderEpoch(batch, st.LeaderEpoch); err != nil {
		return res, err
	}
	if cfg.LogAppendTime {
		if err := storage.SetLogAppendTime(batch, now); err != nil {
			return res, err
		}
		res.LogAppendTime = now
	}
	ai, err := p.Log().Append(ctx, batch)
	if err != nil {
		return res, fmt.Errorf("replica: append to %s: %w", p.id, err)
	}
	if info.ProducerID >= 0 {
		ts := info.MaxTimestamp
		if cfg.LogAppendTime {
			ts = now
		}
		p.recordProducer(info.ProducerID, info.ProducerEpoch, seenBatch{firstSeq: info.BaseSequence,
			lastSeq: nextSequence(info.BaseSequence, info.LastDelta), firstOffset: base, lastOffset: base + int64(info.LastDelta)}, ts)
	}
	res.BaseOffset, res.LogStartOffset = base, ai.LogStartOffset
	res.LastOffset, res.LeaderEpoch = ai.LastOffset, st.LeaderEpoch
	p.maybeAdvanceHW()
	p.wake()
	return res, nil
}

// bound is the offset a read stops before.
func (p *Partition) bound(b Bound) int64 {
	if b == ToLogEnd {
		return p.Log().EndOffset()
	}
	return p.hw.Load()
}

// Read returns batches from offset up to the high watermark (or, with
// ToLogEnd, the log end offset). Offsets below the log start offset or
// above the log end offset give ErrOffsetOutOfRange; offsets from the
// bound to the log end offset read nothing yet.
func (p *Partition) Read(ctx context.Context, offset int64, maxBytes int32, b Bound) (storage.ReadResult, error) {
	hw := p.bound(b)
	start := p.Log().StartOffset()
	if offset < start || offset > p.Log().EndOffset() {
		return storage.ReadResult{}, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, p.Log().EndOffset())
	}
	if offset >= hw {
		return storage.ReadResult{NextOffset: offset, StartOffset: start, EndOffset: p.Log().EndOffset()}, nil
	}
	r, err := p.Log().Read(ctx, offset, maxBytes, hw)
	if errors.Is(err, storage.ErrOffsetOutOfRange) {
		return r, fmt.Errorf("%w: %v", ErrOffsetOutOfRange, err)
	}
	return r, err
}

// EpochForOffset returns the leader epoch under which offset was written
// (-1 when unknown), from the leader-epoch cache.
func (p *Partition) EpochForOffset(offset int64) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := int32(-1)
	for _, en := range p.epochs {
		if en.StartOffset > offset {
			break
		}
		e = en.Epoch
	}
	return e
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= the
// requested one and the offset where the next epoch starts (or the log end
// offset for the latest epoch).
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.epochs) - 1; i >= 0; i-- {
		if p.epochs[i].Epoch <= epoch {
			if i == len(p.epochs)-1 {
				return p.epochs[i].Epoch, p.Log().EndOffset()
			}
			return p.epochs[i].Epoch, p.epochs[i+1].StartOffset
		}
	}
	return -1, -1
}

// DeleteRecords advances the log start offset to offset (-1: the high
// watermark), as DeleteRecords does, and returns the new low watermark.
func (p *Partition) DeleteRecords(ctx context.Context, offset int64) (int64, error) {
	if !p.IsLeader() {
		return -1, ErrNotLeader
	}
	hw := p.hw.Load()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, fmt.Errorf("%w: %d is beyond the high watermark %d", ErrOffsetOutOfRange, offset, hw)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.Log().DeleteBefore(ctx, offset); err != nil {
		return -1, fmt.Errorf("replica: delete records of %s: %w", p.id, err)
	}
	p.trimEpochs()
	return p.Log().StartOffset(), nil
}

// trimEpochs drops epoch entries wholly below the log start offset, as
// Kafka truncates its leader-epoch cache from the start. Called with p.mu.
func (p *Partition) trimEpochs() {
	start := p.Log().StartOffset()
	i := 0
	for i+1 < len(p.epochs) && p.epochs[i+1].StartOffset <= start {
		i++
	}
	if i > 0 || (len(p.epochs) > 0 && p.epochs[0].StartOffset < start) {
		p.epochs = slices.Clone(p.epochs[i:])
		p.epochs[0].StartOffset = start
		_ = writeFileAtomic(filepath.Join(p.dir, LeaderEpochFile), FormatEpochs(p.epochs))
	}
}

// AddWaiter registers w to receive a value (without blocking) at the next
// append; fetch requests that long-poll wait on it. Remove it when done.
func (p *Partition) AddWaiter(w chan struct{}) {
	p.waitMu.Lock()
	p.waiters[w] = struct{}{}
	p.waitMu.Unlock()
}

// RemoveWaiter unregisters w.
func (p *Partition) RemoveWaiter(w chan struct{}) {
	p.waitMu.Lock()
	delete(p.waiters, w)
	p.waitMu.Unlock()
}

func (p *Partition) wake() {
	p.waitMu.Lock()
	for w := range p.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

// OffsetForTimestamp returns the first offset at or after the log start
// whose record timestamp is at least ts, and that timestamp; (-1, -1) when
// there is none below the high watermark. The storage finds the batch
// through the time index; inside a compressed batch with CreateTime
// timestamps, which storage cannot see into, the records are decompressed
// here so that the answer is the exact record, as Kafka's is.
func (p *Partition) OffsetForTimestamp(ctx context.Context, ts int64) (int64, int64, error) {
	off, t, err := p.Log().OffsetForTimestamp(ctx, ts)
	if err != nil || off < 0 {
		return -1, -1, err
	}
	start := p.Log().StartOffset()
	r, err := p.Log().Read(ctx, off, 1, math.MaxInt64)
	if err == nil && len(r.Batches) > 0 {
		if h, herr := storage.ParseBatchHeader(r.Batches); herr == nil && h.Compression() != 0 && !h.LogAppendTime() {
			if view, verr := uncompressedView(r.Batches); verr == nil {
				if m, ferr := storage.FindTimestamp(view, ts, max(start, off)); ferr == nil && m.Found {
					off, t = m.Offset, m.Timestamp
				}
			}
		}
	}
	if off >= p.HighWatermark() {
		return -1, -1, nil
	}
	return off, t, nil
}

// ReadFile is Read for logs whose segments are files: it returns the batches
// as a pinned byte range of a segment file (storage.FileReader), for
// sending with sendfile. ok is false when the log is not file-backed. An
// empty region (nothing to read yet) has Len 0. Close the region.
func (p *Partition) ReadFile(ctx context.Context, offset int64, maxBytes int32, b Bound) (region *storage.FileRegion, ok bool, err error) {
	fr, ok := p.Log().(storage.FileReader)
	if !ok {
		return nil, false, nil
	}
	hw := p.bound(b)
	start := p.Log().StartOffset()
	if offset < start || offset > p.Log().EndOffset() {
		return nil, true, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, p.Log().EndOffset())
	}
	if offset >= hw {
		return storage.NewFileRegion(nil, 0, 0, nil), true, nil
	}
	r, err := fr.ReadFile(ctx, offset, maxBytes, hw)
	if errors.Is(err, storage.ErrOffsetOutOfRange) {
		return nil, true, fmt.Errorf("%w: %v", ErrOffsetOutOfRange, err)
	}
	return r, true, err
}
