package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-io/runnel/services/broker/metadata"
)

// Election types of ElectLeaders (KIP-460).
const (
	ElectPreferred int8 = 0
	ElectUnclean   int8 = 1
)

// PartitionRef names one partition.
type PartitionRef struct {
	Topic     string
	Partition int32
}

// ElectLeaders runs a preferred or unclean leader election for the given
// partitions (nil: every partition of every topic, as ElectLeaders with a
// null topic list) and returns each partition's outcome: nil when a new
// leader was elected, else a Kafka error (ELECTION_NOT_NEEDED,
// PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
// UNKNOWN_TOPIC_OR_PARTITION). With a nil list, partitions that need no
// election are left out of the result.
func (c *Controller) ElectLeaders(ctx context.Context, kind int8, parts []PartitionRef) (map[PartitionRef]error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.store.IsController() {
		return nil, ErrNotController
	}
	all := parts == nil
	if all {
		for _, t := range c.store.Topics() {
			for _, p := range t.Partitions {
				parts = append(parts, PartitionRef{t.Name, p.ID})
			}
		}
	}
	v := c.liveView()
	out := make(map[PartitionRef]error, len(parts))
	var cs changeSet
	for _, ref := range parts {
		t, ok := c.store.Topic(ref.Topic)
		if !ok || t.Deleting || ref.Partition < 0 || int(ref.Partition) >= len(t.Partitions) {
			out[ref] = kerr.UnknownTopicOrPartition
			continue
		}
		p := &t.Partitions[ref.Partition]
		var st metadata.StateChange
		var res electionResult
		switch kind {
		case ElectPreferred:
			st, res = PreferredChange(p, v)
		case ElectUnclean:
			st, res = UncleanChange(p, v)
		default:
			return nil, fmt.Errorf("%w: election type %d", kerr.InvalidRequest, kind)
		}
		switch res {
		case electionNotNeeded:
			if !all {
				out[ref] = kerr.ElectionNotNeeded
			}
			continue
		case preferredUnavailable:
			out[ref] = kerr.PreferredLeaderNotAvailable
			continue
		case eligibleUnavailable:
			out[ref] = kerr.EligibleLeadersNotAvailable
			continue
		}
		tc := cs.topic(ref.Topic, func() *metadata.TopicChange { return &metadata.TopicChange{Topic: ref.Topic} })
		tc.States = append(tc.States, st)
		out[ref] = nil
	}
	changes := cs.list()
	if len(changes) == 0 {
		return out, nil
	}
	c.logChanges(changes)
	if err := c.store.WriteAsController(ctx, changes); err != nil {
		if errors.Is(err, ErrNotController) {
			return nil, err
		}
		// Some topics may have been written: report the election as
		// failed for those whose state does not show the new leader.
		for _, tc := range changes {
			t, _ := c.store.Topic(tc.Topic)
			for _, st := range tc.States {
				ref := PartitionRef{tc.Topic, st.Partition}
				if t == nil || int(st.Partition) >= len(t.Partitions) || t.Partitions[st.Partition].Leader != st.Leader {
					out[ref] = fmt.Errorf("%w: %v", kerr.NotController, err)
				}
			}
		}
	}
	return out, nil
}

// balanceLeaders is auto.leader.rebalance.enable: for every broker whose
// share of partitions it prefers but does not lead exceeds
// leader.imbalance.per.broker.percentage, it runs preferred elections for
// those partitions.
func (c *Controller) balanceLeaders(ctx context.Context) error {
	c.mu.Lock()
	if !c.store.IsController() {
		c.mu.Unlock()
		return nil
	}
	preferred := map[int32]int{}
	notLed := map[int32][]PartitionRef{}
	for _, t := range c.store.Topics() {
		if t.Deleting {
			continue
		}
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 || p.Reassigning() {
				continue
			}
			pref := p.Replicas[0]
			preferred[pref]++
			if p.Leader != pref && slices.Contains(p.ISR, pref) {
				notLed[pref] = append(notLed[pref], PartitionRef{t.Name, p.ID})
			}
		}
	}
	c.mu.Unlock()
	var parts []PartitionRef
	for b, refs := range notLed {
		if 100*len(refs) > int(c.settings.LeaderImbalancePerBrokerPct)*preferred[b] {
			parts = append(parts, refs...)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	c.log.Info("leaders are out of balance: electing preferred leaders", "partitions", len(parts))
	_, err := c.ElectLeaders(ctx, ElectPreferred, parts)
	return err
}

// changeSet gathers the changes of a request by topic, in the order the
// topics first come up.
type changeSet struct {
	byTopic map[string]*metadata.TopicChange
	order   []string
}

// topic returns the topic's change, made by init the first time.
func (cs *changeSet) topic(name string, init func() *metadata.TopicChange) *metadata.TopicChange {
	if tc := cs.byTopic[name]; tc != nil {
		return tc
	}
	if cs.byTopic == nil {
		cs.byTopic = map[string]*metadata.TopicChange{}
	}
	tc := init()
	cs.byTopic[name] = tc
	cs.order = append(cs.order, name)
	return tc
}

func (cs *changeSet) list() []metadata.TopicChange {
	out := make([]metadata.TopicChange, 0, len(cs.order))
	for _, name := range cs.order {
		out = append(out, *cs.byTopic[name])
	}
	return out
}
