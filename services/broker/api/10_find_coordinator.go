package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/metadata"
)

// FindCoordinator: v0-4.
//
// v1 adds the key type (0 group, 1 transaction), ThrottleMillis and an
// error message; v2 changes nothing; v3 is flexible; v4 (KIP-699) looks up
// many keys at once. A group's coordinator is the leader of its partition
// of __consumer_offsets, which the first lookup creates (as Kafka creates
// it) with offsets.topic.num.partitions partitions, compacted.
// Transactions are not served, so a transactional key is refused.
func init() { regSync(kmsg.FindCoordinator, 0, 4, (*Handlers).findCoordinator) }

func (h *Handlers) findCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.FindCoordinatorResponseCoordinator{Key: key, NodeID: -1, Port: -1}
		if err := h.coordinatorFor(ctx, req.CoordinatorType, key, &c); err != nil {
			c.NodeID, c.Host, c.Port = -1, "", -1
			c.ErrorCode = errCode(err)
			c.ErrorMessage = errMessage(err)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.NodeID, c.Host, c.Port
		if req.Version >= 1 {
			resp.ErrorMessage = c.ErrorMessage
		}
	}
	return resp, nil
}

func (h *Handlers) coordinatorFor(ctx context.Context, keyType int8, key string, out *kmsg.FindCoordinatorResponseCoordinator) error {
	if keyType != 0 {
		return fmt.Errorf("%w: transactions are not served by this broker", kerr.InvalidRequest)
	}
	if h.groups == nil {
		return kerr.CoordinatorNotAvailable
	}
	t, err := h.offsetsTopic(ctx)
	if err != nil {
		return err
	}
	p := group.PartitionFor(key, int32(len(t.Partitions)))
	leader := t.Partitions[p].Leader
	for _, b := range h.cluster.Brokers() {
		if b.ID == leader {
			out.NodeID, out.Host, out.Port = b.ID, b.Host, b.Port
			return nil
		}
	}
	return kerr.CoordinatorNotAvailable
}

// offsetsTopic returns __consumer_offsets, creating it when missing.
func (h *Handlers) offsetsTopic(ctx context.Context) (*metadata.Topic, error) {
	if t, ok := h.cluster.Topic(group.Topic); ok && !t.Deleting && len(t.Partitions) > 0 {
		return t, nil
	}
	rf := h.broker.OffsetsTopicReplicationFactor
	a, err := h.assign(0, h.broker.OffsetsTopicPartitions, rf)
	if err != nil {
		h.log.Warn("cannot create "+group.Topic, "err", err)
		return nil, kerr.CoordinatorNotAvailable
	}
	cfg := map[string]string{
		"cleanup.policy":   "compact",
		"compression.type": "producer",
		"segment.bytes":    strconv.Itoa(int(h.broker.OffsetsTopicSegmentBytes)),
	}
	err = h.cluster.CreateTopic(ctx, metadata.Spec{Name: group.Topic, Assignment: a, Config: cfg})
	if err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		h.log.Warn("cannot create "+group.Topic, "err", err)
		return nil, kerr.CoordinatorNotAvailable
	}
	if err == nil {
		h.log.Info("created the offsets topic", "topic", group.Topic, "partitions", len(a), "replication_factor", rf)
	}
	t, ok := h.cluster.Topic(group.Topic)
	if !ok || len(t.Partitions) == 0 {
		return nil, kerr.CoordinatorNotAvailable
	}
	return t, nil
}
