package group

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/replica"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommitOffsets serves an OffsetCommit request (all versions): the
// offsets are written to __consumer_offsets as one batch, then become
// visible to OffsetFetch. A commit that claims no generation (-1) is
// accepted from anyone while the group has no members (the "simple"
// consumer that only stores offsets); otherwise the member and its
// generation must be current, as in Kafka.
func (c *Coordinator) CommitOffsets(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	top := c.commitCheck(req)
	var records []replica.KeyValue
	type pending struct {
		at *int16
		k  partitionKey
		v  OffsetValue
	}
	var stored []pending
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			sp.Partition = rp.Partition
			sp.ErrorCode = top
			if top != 0 {
				continue
			}
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			switch {
			case !c.exists(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case len(meta) > int(c.cfg.MaxMetadataBytes):
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			v := OffsetValue{Offset: rp.Offset, LeaderEpoch: -1, Metadata: meta, CommitTimestamp: now.UnixMilli(), ExpireTimestamp: -1}
			if req.Version >= 6 {
				v.LeaderEpoch = rp.LeaderEpoch
			}
			if req.Version == 1 && rp.Timestamp != -1 {
				v.CommitTimestamp = rp.Timestamp
			}
			k := partitionKey{rt.Topic, rp.Partition}
			records = append(records, replica.KeyValue{Key: OffsetKey(req.Group, k.topic, k.partition), Value: v.Encode()})
			stored = append(stored, pending{&sp.ErrorCode, k, v})
		}
	}
	if top != 0 || len(records) == 0 {
		return resp
	}
	g := c.groups[req.Group]
	if g == nil {
		// A group that only stores offsets, created by its first commit.
		g = newGroup(req.Group, c.PartitionFor(req.Group), now)
		c.groups[req.Group] = g
	}
	order, err := c.store.Append(ctx, g.partition, records)
	if err != nil {
		c.log.Warn("storing offsets failed", "group", req.Group, "err", err)
		for _, p := range stored {
			*p.at = code(err)
		}
		return resp
	}
	for _, p := range stored {
		g.offsets[p.k] = p.v
	}
	if c.observer != nil {
		oc := OffsetCommit{Group: req.Group, Order: order, Timestamp: now.UnixMilli(), Offsets: make([]CommittedOffset, len(stored))}
		for i, p := range stored {
			oc.Offsets[i] = CommittedOffset{Topic: p.k.topic, Partition: p.k.partition, Offset: p.v.Offset}
		}
		c.observer.OffsetsCommitted(ctx, oc)
	}
	if m := g.members[req.MemberID]; m != nil {
		c.heartbeat(g, m)
	}
	return resp
}

// commitCheck is Kafka's validation of a commit against the group state:
// the error every partition gets, or 0. Called with c.mu.
func (c *Coordinator) commitCheck(req *kmsg.OffsetCommitRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	if _, err := c.owned(req.Group); err != nil {
		return code(err)
	}
	g := c.groups[req.Group]
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	switch {
	case g == nil:
		if req.Generation < 0 {
			return 0
		}
		return kerr.IllegalGeneration.Code
	case g.state == stateDead:
		return kerr.CoordinatorNotAvailable.Code
	case fenced(g, req.MemberID, instance):
		return kerr.FencedInstanceID.Code
	case req.Generation < 0 && g.state == stateEmpty:
		return 0
	case g.members[req.MemberID] == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	case g.state == stateCompletingRebalance:
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// FetchOffsets returns a copy of the group's committed offsets; a group
// that does not exist has none (OffsetFetch then answers -1 for every
// partition, without an error, as Kafka does).
func (c *Coordinator) FetchOffsets(groupID string) (map[TopicPartition]OffsetValue, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.owned(groupID); err != nil {
		return nil, err
	}
	out := map[TopicPartition]OffsetValue{}
	if g := c.groups[groupID]; g != nil && g.state != stateDead {
		for k, v := range g.offsets {
			out[TopicPartition{k.topic, k.partition}] = v
		}
	}
	return out, nil
}

// DeleteOffsets serves OffsetDelete (KIP-496): the offsets of an empty
// group go, and those of a consumer group's topics that no member
// subscribes to; topics a member reads keep theirs
// (GROUP_SUBSCRIBED_TO_TOPIC). It returns the group-level error code and
// one code per partition.
func (c *Coordinator) DeleteOffsets(ctx context.Context, groupID string, parts []TopicPartition) (int16, []int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	per := make([]int16, len(parts))
	if _, err := c.owned(groupID); err != nil {
		return code(err), per
	}
	g := c.groups[groupID]
	if g == nil || g.state == stateDead {
		return kerr.GroupIDNotFound.Code, per
	}
	var eligible []int
	switch {
	case g.state == stateEmpty:
		for i := range parts {
			eligible = append(eligible, i)
		}
	case g.protocolType == "consumer":
		for i, tp := range parts {
			if g.subscribed[tp.Topic] {
				per[i] = kerr.GroupSubscribedToTopic.Code
			} else {
				eligible = append(eligible, i)
			}
		}
	default:
		return kerr.NonEmptyGroup.Code, per
	}
	var keys []partitionKey
	for _, i := range eligible {
		keys = append(keys, partitionKey{parts[i].Topic, parts[i].Partition})
	}
	if err := c.dropOffsets(ctx, g, keys); err != nil {
		for _, i := range eligible {
			per[i] = code(err)
		}
	}
	return 0, per
}

// dropOffsets writes tombstones for the given offsets of g (those it has)
// and forgets them; an empty group left without offsets dies, and its
// metadata gets a tombstone too. Called with c.mu.
func (c *Coordinator) dropOffsets(ctx context.Context, g *group, keys []partitionKey) error {
	var records []replica.KeyValue
	var gone []partitionKey
	for _, k := range keys {
		if _, ok := g.offsets[k]; ok {
			records = append(records, replica.KeyValue{Key: OffsetKey(g.id, k.topic, k.partition)})
			gone = append(gone, k)
		}
	}
	dies := g.state == stateEmpty && len(g.offsets) == len(gone)
	if dies {
		records = append(records, replica.KeyValue{Key: GroupKey(g.id)})
	}
	if len(records) == 0 {
		return nil
	}
	if _, err := c.store.Append(ctx, g.partition, records); err != nil {
		return err
	}
	for _, k := range gone {
		delete(g.offsets, k)
	}
	if dies {
		c.stopGroup(g, kerr.CoordinatorNotAvailable.Code)
		delete(c.groups, g.id)
		c.log.Info("group is gone: no members and no offsets left", "group", g.id)
	}
	return nil
}

// DeleteGroups serves DeleteGroups: each group must exist and have no
// members; its offsets and metadata get tombstones. It returns one code
// per group.
func (c *Coordinator) DeleteGroups(ctx context.Context, ids []string) []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int16, len(ids))
	for i, id := range ids {
		if _, err := c.owned(id); err != nil {
			out[i] = code(err)
			continue
		}
		g := c.groups[id]
		switch {
		case g == nil || g.state == stateDead:
			out[i] = kerr.GroupIDNotFound.Code
			continue
		case g.state != stateEmpty:
			out[i] = kerr.NonEmptyGroup.Code
			continue
		}
		records := []replica.KeyValue{}
		for k := range g.offsets {
			records = append(records, replica.KeyValue{Key: OffsetKey(id, k.topic, k.partition)})
		}
		records = append(records, replica.KeyValue{Key: GroupKey(id)})
		if _, err := c.store.Append(ctx, g.partition, records); err != nil {
			out[i] = code(err)
			continue
		}
		c.stopGroup(g, kerr.CoordinatorNotAvailable.Code)
		delete(c.groups, id)
		c.log.Info("group deleted", "group", id)
	}
	return out
}

// ExpireOffsets applies offsets.retention.minutes with Kafka's (2.1+)
// rules: an empty group's offsets expire once it has been empty that long;
// a consumer group with members keeps the offsets of the topics they
// subscribe to, and the others expire that long after their commit; a
// group that only stores offsets loses each one that long after its
// commit. A value with its own expire timestamp (version 1) expires then.
// Empty groups left without offsets are removed.
func (c *Coordinator) ExpireOffsets(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now().UnixMilli()
	retention := c.cfg.OffsetsRetention.Milliseconds()
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := c.groups[id]
		if o := c.parts[g.partition]; o == nil || o.loading || g.state == stateDead {
			continue
		}
		var base func(OffsetValue) int64
		var keep map[string]bool
		switch {
		case g.protocolType == "":
			base = func(v OffsetValue) int64 { return v.CommitTimestamp }
		case g.state == stateEmpty:
			since := g.since.UnixMilli()
			base = func(OffsetValue) int64 { return since }
		case g.protocolType == "consumer" && g.subscribed != nil:
			base, keep = func(v OffsetValue) int64 { return v.CommitTimestamp }, g.subscribed
		default:
			continue
		}
		var expired []partitionKey
		for k, v := range g.offsets {
			if keep[k.topic] {
				continue
			}
			if v.ExpireTimestamp >= 0 && now >= v.ExpireTimestamp || v.ExpireTimestamp < 0 && now-base(v) >= retention {
				expired = append(expired, k)
			}
		}
		dead := g.state == stateEmpty && len(g.offsets) == 0
		if len(expired) == 0 && !dead {
			continue
		}
		sort.Slice(expired, func(i, j int) bool {
			if expired[i].topic != expired[j].topic {
				return expired[i].topic < expired[j].topic
			}
			return expired[i].partition < expired[j].partition
		})
		if err := c.dropOffsets(ctx, g, expired); err != nil {
			c.log.Warn("expiring offsets failed", "group", id, "err", err)
			continue
		}
		if len(expired) > 0 {
			c.log.Info("expired committed offsets", "group", id, "partitions", len(expired))
		}
	}
}

// DescribeGroups serves DescribeGroups: members, and, for a stable group,
// the selected protocol and each member's metadata and assignment. A group
// that does not exist is reported Dead without an error, as Kafka does.
func (c *Coordinator) DescribeGroups(ids []string) []kmsg.DescribeGroupsResponseGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]kmsg.DescribeGroupsResponseGroup, len(ids))
	for i, id := range ids {
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group = id
		d.AuthorizedOperations = -2147483648
		if _, err := c.owned(id); err != nil {
			d.ErrorCode = code(err)
			out[i] = d
			continue
		}
		g := c.groups[id]
		if g == nil {
			d.State = stateDead.String()
			out[i] = d
			continue
		}
		d.State = g.state.String()
		d.ProtocolType = g.protocolType
		stable := g.state == stateStable
		if stable {
			d.Protocol = g.protocol
		}
		for _, mid := range g.order {
			m := g.members[mid]
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
			if m.instanceID != "" {
				inst := m.instanceID
				dm.InstanceID = &inst
			}
			dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
			if stable {
				dm.ProtocolMetadata = m.metadata(g.protocol)
				dm.MemberAssignment = m.assignment
			}
			d.Members = append(d.Members, dm)
		}
		out[i] = d
	}
	return out
}

// GroupListing is one group as ListGroups reports it.
type GroupListing struct {
	ID           string
	ProtocolType string
	State        string
}

// ListGroups lists the groups of every partition this coordinator owns,
// optionally only those in the given states (ListGroups v4+). While a
// partition loads it answers COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) ListGroups(states []string) ([]GroupListing, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.parts {
		if o.loading {
			return nil, kerr.CoordinatorLoadInProgress
		}
	}
	want := map[string]bool{}
	for _, s := range states {
		want[s] = true
	}
	var out []GroupListing
	for _, g := range c.groups {
		st := g.state.String()
		if g.state == stateDead || len(want) > 0 && !want[st] {
			continue
		}
		out = append(out, GroupListing{ID: g.id, ProtocolType: g.protocolType, State: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
