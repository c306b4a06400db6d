package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/group"
)

// CreatePartitions: v0-3.
//
// v1 changes nothing on the wire; v2 is flexible; v3 nothing new. A topic
// grows to Count partitions, placed round-robin or as Assignment says;
// shrinking is refused (INVALID_PARTITIONS).
func init() { regSync(kmsg.CreatePartitions, 0, 3, (*Handlers).createPartitions) }

func (h *Handlers) createPartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if seen[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %q appears more than once", kerr.InvalidRequest, rt.Topic)
		} else {
			err = h.createPartitionsOf(ctx, req.ValidateOnly, &rt)
		}
		st.ErrorCode = errCode(err)
		st.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (h *Handlers) createPartitionsOf(ctx context.Context, validateOnly bool, rt *kmsg.CreatePartitionsRequestTopic) error {
	t, ok := h.cluster.Topic(rt.Topic)
	if !ok || t.Deleting {
		return fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, rt.Topic)
	}
	if rt.Topic == group.Topic {
		// More partitions would move groups to other coordinators and
		// orphan their offsets.
		return fmt.Errorf("%w: %s is internal; its partition count is fixed", kerr.InvalidPartitions, rt.Topic)
	}
	have := int32(len(t.Partitions))
	if rt.Count <= have {
		return fmt.Errorf("%w: topic %s has %d partitions; the count must grow", kerr.InvalidPartitions, rt.Topic, have)
	}
	add := rt.Count - have
	rf := len(t.Partitions[0].Replicas)
	var assignment [][]int32
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != add {
			return fmt.Errorf("%w: %d new partitions need %d assignments, got %d", kerr.InvalidReplicaAssignment, add, add, len(rt.Assignment))
		}
		live := map[int32]bool{}
		for _, b := range h.cluster.Brokers() {
			live[b.ID] = true
		}
		for _, a := range rt.Assignment {
			if err := checkReplicas(a.Replicas, live, rf); err != nil {
				return err
			}
			assignment = append(assignment, a.Replicas)
		}
	} else {
		var err error
		if assignment, err = h.assign(have, add, int16(rf)); err != nil {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	return h.cluster.AddPartitions(ctx, rt.Topic, assignment)
}
