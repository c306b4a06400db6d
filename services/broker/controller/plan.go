package controller

import (
	"slices"

	"github.com/runnel-io/runnel/services/broker/metadata"
)

// View is what the controller knows of the brokers when it plans.
type View struct {
	// Live holds the registered brokers whose registration the controller
	// has seen before (a broker that re-registered since the last pass,
	// a bounce, counts as not live for that pass).
	Live map[int32]bool
	// ShuttingDown holds the brokers in a controlled shutdown: they lose
	// their leaderships and leave the ISRs, and are elected to nothing.
	ShuttingDown map[int32]bool
	// Unclean reports whether a topic allows unclean leader election.
	Unclean func(t *metadata.Topic) bool
}

func (v View) eligible(id int32) bool { return v.Live[id] && !v.ShuttingDown[id] }

// Plan returns the changes the controller makes to a topic so that every
// partition has a live leader and an ISR of live replicas:
//
//   - a partition without a state gets its first one (metadata.FirstState);
//   - dead replicas leave the ISR, except that an ISR with no live member
//     is kept as it was, so that a returning member is elected cleanly;
//   - a partition whose leader is dead or shutting down gets a new leader:
//     the first replica in assignment order that is in the live ISR and
//     not shutting down; failing that, with unclean leader election, the
//     first live replica (its ISR becomes just it); failing that, none
//     (-1). Each new leader, none included, bumps the leader epoch;
//   - a leader in a controlled shutdown stays leader when no other ISR
//     member can take over; followers in one leave the ISR;
//   - a reassignment whose target replicas are all in the ISR completes:
//     the removed replicas leave the assignment and the ISR, the leader
//     moves into the target when it is outside it, and the leader epoch is
//     bumped to fence the removed replicas.
//
// It returns nil when nothing needs changing.
func Plan(t *metadata.Topic, v View) *metadata.TopicChange {
	if t.Deleting {
		return nil
	}
	c := &metadata.TopicChange{Topic: t.Name, AssignmentVersion: t.Version}
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.StateVersion < 0 {
			leader, isr := metadata.FirstState(p.Replicas, v.eligible)
			if leader >= 0 {
				c.States = append(c.States, metadata.StateChange{Partition: p.ID, Leader: leader, ISR: isr, Version: -1})
			}
			continue
		}
		if p.Reassigning() {
			if st, ok := completeReassignment(p, v); ok {
				if c.Assignment == nil {
					c.Assignment = t.Assignment()
				}
				c.Assignment.Replicas[p.ID] = p.Target()
				delete(c.Assignment.Adding, p.ID)
				delete(c.Assignment.Removing, p.ID)
				c.States = append(c.States, st)
				continue
			}
		}
		if st, ok := planPartition(p, v, v.Unclean != nil && v.Unclean(t)); ok {
			c.States = append(c.States, st)
		}
	}
	if len(c.States) == 0 && c.Assignment == nil {
		return nil
	}
	return c
}

// planPartition applies the leader and ISR rules of Plan to one partition
// that has a state.
func planPartition(p *metadata.Partition, v View, unclean bool) (metadata.StateChange, bool) {
	st := metadata.StateChange{Partition: p.ID, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Version: p.StateVersion}
	liveISR := filter(p.ISR, func(r int32) bool { return v.Live[r] && slices.Contains(p.Replicas, r) })
	leaderAlive := p.Leader >= 0 && v.Live[p.Leader] && slices.Contains(p.Replicas, p.Leader)
	if leaderAlive && !v.ShuttingDown[p.Leader] {
		st.ISR = filter(liveISR, func(r int32) bool { return r == p.Leader || !v.ShuttingDown[r] })
		if !slices.Contains(st.ISR, p.Leader) {
			st.ISR = append([]int32{p.Leader}, st.ISR...) // the leader is always in sync with itself
		}
		return st, !slices.Equal(st.ISR, p.ISR)
	}
	cand := first(p.Replicas, func(r int32) bool { return slices.Contains(liveISR, r) && !v.ShuttingDown[r] })
	switch {
	case cand >= 0:
		st.Leader, st.ISR = cand, filter(liveISR, func(r int32) bool { return r == cand || !v.ShuttingDown[r] })
	case leaderAlive:
		// Shutting down, and nobody can take over: it stays leader (the
		// shutdown reports the partition as remaining).
		st.ISR = liveISR
		return st, !slices.Equal(st.ISR, p.ISR)
	case unclean && first(p.Replicas, v.eligible) >= 0:
		st.Leader = first(p.Replicas, v.eligible)
		st.ISR = []int32{st.Leader}
	default:
		if p.Leader < 0 {
			return st, false // still offline
		}
		st.Leader, st.ISR = -1, slices.Clone(p.ISR)
		if len(liveISR) > 0 {
			st.ISR = liveISR
		}
	}
	st.LeaderEpoch = p.LeaderEpoch + 1
	return st, true
}

// completeReassignment finishes a reassignment whose target replicas are
// all in the live ISR.
func completeReassignment(p *metadata.Partition, v View) (metadata.StateChange, bool) {
	target := p.Target()
	liveISR := filter(p.ISR, func(r int32) bool { return v.Live[r] })
	for _, r := range target {
		if !slices.Contains(liveISR, r) {
			return metadata.StateChange{}, false
		}
	}
	leader := p.Leader
	if !slices.Contains(target, leader) || !v.eligible(leader) {
		leader = first(target, v.eligible)
		if leader < 0 {
			return metadata.StateChange{}, false
		}
	}
	return metadata.StateChange{Partition: p.ID, Leader: leader, LeaderEpoch: p.LeaderEpoch + 1,
		ISR: filter(liveISR, func(r int32) bool { return slices.Contains(target, r) }), Version: p.StateVersion}, true
}

// PreferredChange moves a partition's leadership to its preferred replica
// (the first of its assignment). It reports whether a change is needed and
// possible: the preferred replica must be eligible and in the ISR.
func PreferredChange(p *metadata.Partition, v View) (metadata.StateChange, electionResult) {
	if len(p.Replicas) == 0 || p.StateVersion < 0 {
		return metadata.StateChange{}, preferredUnavailable
	}
	pref := p.Replicas[0]
	if p.Leader == pref {
		return metadata.StateChange{}, electionNotNeeded
	}
	if !v.eligible(pref) || !slices.Contains(p.ISR, pref) {
		return metadata.StateChange{}, preferredUnavailable
	}
	return metadata.StateChange{Partition: p.ID, Leader: pref, LeaderEpoch: p.LeaderEpoch + 1,
		ISR: filter(p.ISR, func(r int32) bool { return v.Live[r] }), Version: p.StateVersion}, electionDone
}

// UncleanChange elects any eligible replica of a partition that has no
// live leader (ElectLeaders with the unclean election type).
func UncleanChange(p *metadata.Partition, v View) (metadata.StateChange, electionResult) {
	if p.Leader >= 0 && v.Live[p.Leader] {
		return metadata.StateChange{}, electionNotNeeded
	}
	st, ok := planPartition(p, v, true)
	if !ok || st.Leader < 0 {
		return metadata.StateChange{}, eligibleUnavailable
	}
	return st, electionDone
}

type electionResult int

const (
	electionDone electionResult = iota
	electionNotNeeded
	preferredUnavailable
	eligibleUnavailable
)

func filter(s []int32, keep func(int32) bool) []int32 {
	out := make([]int32, 0, len(s))
	for _, r := range s {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func first(s []int32, ok func(int32) bool) int32 {
	for _, r := range s {
		if ok(r) {
			return r
		}
	}
	return -1
}
