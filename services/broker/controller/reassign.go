package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-io/runnel/services/broker/metadata"
)

// Reassignment is one partition's requested replicas
// (AlterPartitionReassignments); nil Replicas cancels an ongoing one.
type Reassignment struct {
	PartitionRef
	Replicas []int32
}

// Reassign starts (or cancels) reassignments, as Kafka's
// AlterPartitionReassignments (KIP-455) does. Starting one writes the
// assignment as the union of the target and the original replicas, with
// the replicas it adds and removes; the new replicas start following at
// once, and the controller completes the move once all of the target is
// in the ISR (Plan). A new target for a partition already moving replaces
// the old one, keeping the original replicas. Cancelling goes back to the
// original replicas. Each partition gets nil or a Kafka error.
func (c *Controller) Reassign(ctx context.Context, reqs []Reassignment) (map[PartitionRef]error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.store.IsController() {
		return nil, ErrNotController
	}
	registered := map[int32]bool{}
	for _, b := range c.store.Brokers() {
		registered[b.ID] = true
	}
	v := c.liveView()
	out := make(map[PartitionRef]error, len(reqs))
	var cs changeSet
	for _, r := range reqs {
		t, ok := c.store.Topic(r.Topic)
		if !ok || t.Deleting || r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
			out[r.PartitionRef] = kerr.UnknownTopicOrPartition
			continue
		}
		p := t.Partitions[r.Partition]
		if r.Replicas != nil {
			if err := checkTarget(r.Replicas, registered); err != nil {
				out[r.PartitionRef] = err
				continue
			}
		} else if !p.Reassigning() {
			out[r.PartitionRef] = kerr.NoReassignmentInProgress
			continue
		}
		tc := cs.topic(r.Topic, func() *metadata.TopicChange {
			return &metadata.TopicChange{Topic: t.Name, Assignment: t.Assignment(), AssignmentVersion: t.Version}
		})
		original := original(&p)
		target := r.Replicas
		if target == nil {
			target = original
		}
		a := tc.Assignment
		if slices.Equal(target, original) || !p.Reassigning() && slices.Equal(target, p.Replicas) {
			// Back to (or staying on) the original replicas: no move.
			a.Replicas[p.ID] = slices.Clone(target)
			delete(a.Adding, p.ID)
			delete(a.Removing, p.ID)
			if !slices.Contains(target, p.Leader) || !slices.Equal(target, p.Replicas) {
				if st, ok := revertState(&p, target, v); ok {
					tc.States = append(tc.States, st)
				}
			}
		} else {
			rs := slices.Clone(target)
			for _, o := range original {
				if !slices.Contains(rs, o) {
					rs = append(rs, o)
				}
			}
			a.Replicas[p.ID] = rs
			a.Adding[p.ID] = without(target, original)
			a.Removing[p.ID] = without(original, target)
			if len(a.Adding[p.ID]) == 0 {
				delete(a.Adding, p.ID)
			}
			if len(a.Removing[p.ID]) == 0 {
				delete(a.Removing, p.ID)
			}
		}
		out[r.PartitionRef] = nil
	}
	changes := cs.list()
	if len(changes) == 0 {
		return out, nil
	}
	c.logChanges(changes)
	err := c.store.WriteAsController(ctx, changes)
	if errors.Is(err, ErrNotController) {
		return nil, err
	}
	if err != nil {
		for _, tc := range changes {
			for p := range tc.Assignment.Replicas {
				ref := PartitionRef{tc.Topic, int32(p)}
				if e, asked := out[ref]; asked && e == nil {
					out[ref] = fmt.Errorf("%w: %v", kerr.ReassignmentInProgress, err)
				}
			}
		}
	}
	c.Kick()
	return out, nil
}

// original is the replica set a partition had before its reassignment.
func original(p *metadata.Partition) []int32 {
	return without(p.Replicas, p.Adding)
}

// revertState puts a partition whose reassignment is cancelled back on its
// original replicas: the ISR keeps only them, and a leader outside them
// hands over to the first original replica in the ISR.
func revertState(p *metadata.Partition, target []int32, v View) (metadata.StateChange, bool) {
	if p.StateVersion < 0 {
		return metadata.StateChange{}, false
	}
	isr := filter(p.ISR, func(r int32) bool { return slices.Contains(target, r) })
	st := metadata.StateChange{Partition: p.ID, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, ISR: isr, Version: p.StateVersion}
	if !slices.Contains(target, p.Leader) {
		st.Leader = first(target, func(r int32) bool { return slices.Contains(isr, r) && v.eligible(r) })
		st.LeaderEpoch++
		if st.Leader < 0 {
			st.ISR = p.ISR
		}
	}
	return st, st.Leader != p.Leader || !slices.Equal(st.ISR, p.ISR)
}

func checkTarget(replicas []int32, registered map[int32]bool) error {
	if len(replicas) == 0 {
		return fmt.Errorf("%w: an empty replica list", kerr.InvalidReplicaAssignment)
	}
	seen := map[int32]bool{}
	for _, r := range replicas {
		if seen[r] {
			return fmt.Errorf("%w: broker %d appears twice", kerr.InvalidReplicaAssignment, r)
		}
		if !registered[r] {
			return fmt.Errorf("%w: broker %d is not registered", kerr.InvalidReplicaAssignment, r)
		}
		seen[r] = true
	}
	return nil
}

func without(s, drop []int32) []int32 {
	return filter(s, func(r int32) bool { return !slices.Contains(drop, r) })
}

// Reassignments lists the ongoing reassignments (ListPartitionReassignments):
// of the given partitions, or of all when refs is nil.
func (c *Controller) Reassignments(refs []PartitionRef) ([]metadata.Partition, error) {
	if !c.store.IsController() {
		return nil, ErrNotController
	}
	var out []metadata.Partition
	for _, t := range c.store.Topics() {
		for _, p := range t.Partitions {
			if !p.Reassigning() {
				continue
			}
			if refs == nil || slices.Contains(refs, PartitionRef{t.Name, p.ID}) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}
