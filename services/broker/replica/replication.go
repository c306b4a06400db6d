package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrNotReplica means a follower fetch came from a broker that holds no
// replica of the partition, as far as the leader knows
// (NOT_LEADER_OR_FOLLOWER, 6).
var ErrNotReplica = errors.New("replica: the fetching broker is not a replica of the partition")

// followerState is what a leader knows of one follower, from its fetches,
// as Kafka's leader keeps it (Replica.scala): the follower's log end
// offset is the offset it fetches from, and it counts as caught up at the
// time of a fetch that asked for everything the leader had.
type followerState struct {
	leo           int64 // -1 until its first fetch in this leadership
	lastFetchLEO  int64 // the leader's log end offset at its previous fetch
	lastFetchTime time.Time
	lastCaughtUp  time.Time
}

// trackFollowers makes the follower table match the replica list: a new
// leadership (fresh) starts every follower unknown but just caught up, so
// each gets replica.lag.time.max.ms to show itself before it leaves the
// ISR; otherwise replicas added by a reassignment join and removed ones
// go. Called with p.mu held.
func (p *Partition) trackFollowers(s State, fresh bool, now time.Time) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if fresh {
		clear(p.followers)
		p.epochStart.Store(p.Log().EndOffset())
		if n := len(p.epochs); n > 0 {
			p.epochStart.Store(p.epochs[n-1].StartOffset)
		}
	}
	for _, r := range s.Replicas {
		if r != p.self && p.followers[r] == nil {
			p.followers[r] = &followerState{leo: -1, lastFetchLEO: -1, lastFetchTime: now, lastCaughtUp: now}
		}
	}
	for r := range p.followers {
		if !slices.Contains(s.Replicas, r) {
			delete(p.followers, r)
		}
	}
}

// FollowerFetch records a follower's fetch from offset, which is its log
// end offset. The high watermark may advance, and a follower that has
// caught up is queued to join the ISR. It fails when this broker does not
// lead the partition, when the broker is not a replica, and with
// ErrOffsetOutOfRange outside the leader's log.
func (p *Partition) FollowerFetch(replica int32, offset int64, now time.Time) error {
	st := p.state.Load()
	if st.Leader != p.self || p.deleted.Load() {
		return ErrNotLeader
	}
	leo, start := p.Log().EndOffset(), p.Log().StartOffset()
	if offset > leo || offset < start {
		return fmt.Errorf("%w: follower %d fetches %d, the log holds [%d, %d]", ErrOffsetOutOfRange, replica, offset, start, leo)
	}
	p.rmu.Lock()
	f := p.followers[replica]
	if f == nil {
		p.rmu.Unlock()
		return fmt.Errorf("%w: broker %d, replicas %v", ErrNotReplica, replica, st.Replicas)
	}
	switch {
	case offset >= leo:
		f.lastCaughtUp = now
	case offset >= f.lastFetchLEO && f.lastFetchLEO >= 0:
		// It has what the leader had at its previous fetch.
		if f.lastFetchTime.After(f.lastCaughtUp) {
			f.lastCaughtUp = f.lastFetchTime
		}
	}
	f.leo, f.lastFetchLEO, f.lastFetchTime = offset, leo, now
	join := !slices.Contains(st.ISR, replica) && offset >= p.hw.Load() && offset >= p.epochStart.Load()
	p.rmu.Unlock()
	p.maybeAdvanceHW()
	if join {
		p.queueISR()
	}
	return nil
}

// maybeAdvanceHW moves the high watermark of a leader to the smallest log
// end offset in the ISR (the leader's own when it is alone), never back.
// A follower in the ISR whose offset is unknown yet holds it where it is.
// It reports whether it moved; then acks=all produces and waiting fetches
// are woken.
func (p *Partition) maybeAdvanceHW() bool {
	st := p.state.Load()
	if st.Leader != p.self {
		return false
	}
	hw := p.Log().EndOffset()
	p.rmu.Lock()
	for _, r := range st.ISR {
		if r == p.self {
			continue
		}
		f := p.followers[r]
		if f == nil || f.leo < 0 {
			p.rmu.Unlock()
			return false
		}
		hw = min(hw, f.leo)
	}
	moved := p.raiseHW(hw)
	if moved {
		close(p.hwCh)
		p.hwCh = make(chan struct{})
	}
	p.rmu.Unlock()
	if moved {
		p.wake()
	}
	return moved
}

// raiseHW sets the high watermark to hw when that is higher.
func (p *Partition) raiseHW(hw int64) bool {
	for {
		old := p.hw.Load()
		if hw <= old {
			return false
		}
		if p.hw.CompareAndSwap(old, hw) {
			return true
		}
	}
}

// signal wakes the acks=all produces waiting on the partition, so that
// they look at its state again.
func (p *Partition) signal() {
	p.rmu.Lock()
	close(p.hwCh)
	p.hwCh = make(chan struct{})
	p.rmu.Unlock()
}

// WaitReplicated waits until the high watermark passes offset, which was
// appended under leaderEpoch: every ISR member has it (acks=all). It fails
// with ErrNotLeader when the leadership moved on meanwhile,
// ErrNotEnoughReplicasAfterAppend when the ISR that has it is smaller than
// min.insync.replicas, and with the context's error when it ends first
// (the produce timeout).
func (p *Partition) WaitReplicated(ctx context.Context, offset int64, leaderEpoch int32) error {
	for {
		p.rmu.Lock()
		ch := p.hwCh
		p.rmu.Unlock()
		st := p.state.Load()
		if st.Leader != p.self || st.LeaderEpoch != leaderEpoch || p.deleted.Load() {
			return fmt.Errorf("%w: leadership of %s moved while waiting for replication", ErrNotLeader, p.id)
		}
		if p.hw.Load() > offset {
			if minISR := p.cfg.Load().MinInsyncReplicas; int32(len(st.ISR)) < minISR {
				return fmt.Errorf("%w: ISR %v, min.insync.replicas %d", ErrNotEnoughReplicasAfterAppend, st.ISR, minISR)
			}
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("replica: waiting for the ISR of %s to reach offset %d (high watermark %d, ISR %v): %w",
				p.id, offset, p.hw.Load(), st.ISR, ctx.Err())
		}
	}
}

// Replicated reports whether offset is below the high watermark already,
// so that an acks=all produce need not wait.
func (p *Partition) Replicated(offset int64) bool { return p.hw.Load() > offset }

// queueISR hands the partition to the manager's ISR worker, once until the
// worker takes it.
func (p *Partition) queueISR() {
	if p.isrQueue == nil {
		return
	}
	p.rmu.Lock()
	if p.isrQueued {
		p.rmu.Unlock()
		return
	}
	p.isrQueued = true
	p.rmu.Unlock()
	select {
	case p.isrQueue <- p:
	default:
		// The worker is behind; its periodic pass covers this partition.
		p.rmu.Lock()
		p.isrQueued = false
		p.rmu.Unlock()
	}
}

// wantedISR is the ISR the leader wants now: followers that have not been
// caught up within lagMax leave it; replicas that have caught up with the
// high watermark, in the current leader epoch, join it. ok is false when
// that is the ISR it has, or when this broker does not lead.
func (p *Partition) wantedISR(now time.Time, lagMax time.Duration) (State, bool) {
	p.rmu.Lock()
	p.isrQueued = false
	defer p.rmu.Unlock()
	st := *p.state.Load()
	if st.Leader != p.self || p.deleted.Load() {
		return st, false
	}
	hw, start := p.hw.Load(), p.epochStart.Load()
	inSync := func(r int32) bool {
		f := p.followers[r]
		return f != nil && now.Sub(f.lastCaughtUp) <= lagMax
	}
	isr := []int32{p.self}
	for _, r := range st.ISR {
		if r != p.self && inSync(r) {
			isr = append(isr, r)
		}
	}
	for _, r := range st.Replicas {
		if f := p.followers[r]; f != nil && !slices.Contains(isr, r) && f.leo >= hw && f.leo >= start && inSync(r) {
			isr = append(isr, r)
		}
	}
	if sameSet(isr, st.ISR) {
		return st, false
	}
	st.ISR = isr
	return st, true
}

func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// FollowerLag describes one follower of a led partition, for metrics and
// tests.
type FollowerLag struct {
	Replica      int32
	LogEndOffset int64
	LastCaughtUp time.Time
}

// Followers reports the leader's view of its followers.
func (p *Partition) Followers() []FollowerLag {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	out := make([]FollowerLag, 0, len(p.followers))
	for r, f := range p.followers {
		out = append(out, FollowerLag{Replica: r, LogEndOffset: f.leo, LastCaughtUp: f.lastCaughtUp})
	}
	slices.SortFunc(out, func(a, b FollowerLag) int { return int(a.Replica - b.Replica) })
	return out
}
