package api

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/config"
	"github.com/runnel-io/runnel/services/broker/metadata"
)

// CreateTopics: v0-7.
//
// v1 adds ValidateOnly and error messages; v2 ThrottleMillis; v3 nothing
// new; v4 lets NumPartitions and ReplicationFactor be -1 for the broker
// defaults (KIP-464); v5 is flexible and answers with the topic's
// partitions, replication factor and configs (KIP-525); v6 nothing new; v7
// adds the topic id to the answer (zero here: topics have no ids in the
// 2.x znode layout).
//
// Names follow Kafka's rules ([a-zA-Z0-9._-], at most 249, not "." or "..");
// a name that equals an existing one once '.' and '_' are treated alike is
// refused, and any other name with '.' or '_' is logged with a warning, as
// Kafka's tools warn.
func init() { regSync(kmsg.CreateTopics, 0, 7, (*Handlers).createTopics) }

func (h *Handlers) createTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		var err error
		if seen[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %q appears more than once in the request", kerr.InvalidRequest, rt.Topic)
		} else {
			err = h.createTopic(ctx, req, &rt, &st)
		}
		if err != nil {
			st.ErrorCode = errCode(err)
			st.ErrorMessage = errMessage(err)
			st.NumPartitions, st.ReplicationFactor, st.Configs = -1, -1, nil
			if req.Version >= 5 && errors.Is(err, metadata.ErrTopicExists) {
				st.ErrorMessage = errMessage(fmt.Errorf("topic %q already exists", rt.Topic))
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (h *Handlers) createTopic(ctx context.Context, req *kmsg.CreateTopicsRequest, rt *kmsg.CreateTopicsRequestTopic, st *kmsg.CreateTopicsResponseTopic) error {
	if err := validTopic(rt.Topic); err != nil {
		return fmt.Errorf("%w: %q is not a legal topic name: use 1 to 249 of [a-zA-Z0-9._-], not \".\" or \"..\"", err, rt.Topic)
	}
	if t, ok := h.cluster.Topic(rt.Topic); ok && !t.Deleting {
		return fmt.Errorf("%w: %s", metadata.ErrTopicExists, rt.Topic)
	}
	if c := h.collision(rt.Topic); c != "" {
		return fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are the same in metric names)", kerr.InvalidTopicException, rt.Topic, c)
	}
	cfg := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue
		}
		cfg[c.Name] = *c.Value
	}
	if err := config.CheckTopic(cfg); err != nil {
		return err
	}
	var assignment [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return fmt.Errorf("%w: give either a replica assignment or partitions and a replication factor", kerr.InvalidRequest)
		}
		var err error
		if assignment, err = h.checkAssignment(rt.ReplicaAssignment); err != nil {
			return err
		}
	} else {
		n, rf := rt.NumPartitions, rt.ReplicationFactor
		if n == -1 {
			n = h.broker.NumPartitions
		}
		if rf == -1 {
			rf = h.broker.DefaultReplicationFactor
		}
		if n <= 0 {
			return fmt.Errorf("%w: number of partitions must be larger than 0", kerr.InvalidPartitions)
		}
		if rf <= 0 {
			return fmt.Errorf("%w: replication factor must be larger than 0", kerr.InvalidReplicationFactor)
		}
		var err error
		if assignment, err = h.assign(0, n, rf); err != nil {
			return err
		}
	}
	if h.collision(rt.Topic) == "" && (slices.Contains([]byte(rt.Topic), '.') || slices.Contains([]byte(rt.Topic), '_')) {
		h.log.Warn("topic name has '.' or '_': it could collide with another name in metric names", "topic", rt.Topic)
	}
	if req.ValidateOnly {
		h.describeCreated(st, len(assignment), len(assignment[0]), cfg)
		return nil
	}
	if err := h.cluster.CreateTopic(ctx, metadata.Spec{Name: rt.Topic, Assignment: assignment, Config: cfg}); err != nil {
		return err
	}
	h.log.Info("created topic", "topic", rt.Topic, "partitions", len(assignment), "replication_factor", len(assignment[0]))
	h.describeCreated(st, len(assignment), len(assignment[0]), cfg)
	return nil
}

func (h *Handlers) describeCreated(st *kmsg.CreateTopicsResponseTopic, partitions, rf int, cfg map[string]string) {
	st.NumPartitions, st.ReplicationFactor = int32(partitions), int16(rf)
	for _, e := range h.broker.DescribeTopic(cfg) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.Name, e.Value, e.ReadOnly, int8(e.Source), e.Sensitive
		st.Configs = append(st.Configs, c)
	}
}

// checkAssignment validates an explicit replica assignment: partitions
// numbered 0..n-1, each with the same number of distinct live brokers.
func (h *Handlers) checkAssignment(ra []kmsg.CreateTopicsRequestTopicReplicaAssignment) ([][]int32, error) {
	live := map[int32]bool{}
	for _, b := range h.cluster.Brokers() {
		live[b.ID] = true
	}
	out := make([][]int32, len(ra))
	for _, a := range ra {
		if a.Partition < 0 || int(a.Partition) >= len(ra) || out[a.Partition] != nil {
			return nil, fmt.Errorf("%w: partitions must be numbered 0 to %d once each", kerr.InvalidReplicaAssignment, len(ra)-1)
		}
		if err := checkReplicas(a.Replicas, live, len(ra[0].Replicas)); err != nil {
			return nil, err
		}
		out[a.Partition] = a.Replicas
	}
	return out, nil
}

func checkReplicas(replicas []int32, live map[int32]bool, rf int) error {
	if len(replicas) == 0 || len(replicas) != rf {
		return fmt.Errorf("%w: every partition needs the same, non-zero number of replicas", kerr.InvalidReplicaAssignment)
	}
	seen := map[int32]bool{}
	for _, r := range replicas {
		if seen[r] {
			return fmt.Errorf("%w: broker %d appears twice", kerr.InvalidReplicaAssignment, r)
		}
		if !live[r] {
			return fmt.Errorf("%w: broker %d is not alive", kerr.InvalidReplicaAssignment, r)
		}
		seen[r] = true
	}
	return nil
}
