package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/controller"
)

// AlterPartitionReassignments: v0 (flexible).
//
// Moves partitions to new replica sets online (KIP-455): the controller
// adds the new replicas, which catch up by fetching, and once all of the
// target is in the ISR it drops the replicas that leave, moving the
// leadership when the leader is one of them. A null replica list cancels
// an ongoing reassignment. Brokers other than the controller answer
// NOT_CONTROLLER.
func init() {
	regSync(kmsg.AlterPartitionAssignments, 0, 0, (*Handlers).alterPartitionReassignments)
}

func (h *Handlers) alterPartitionReassignments(ctx context.Context, req *kmsg.AlterPartitionAssignmentsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	if h.controller == nil {
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	var reqs []controller.Reassignment
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			reqs = append(reqs, controller.Reassignment{PartitionRef: controller.PartitionRef{Topic: t.Topic, Partition: p.Partition}, Replicas: p.Replicas})
		}
	}
	results, err := h.controller.Reassign(ctx, reqs)
	if err != nil {
		resp.ErrorCode = errCode(err)
		resp.ErrorMessage = errMessage(err)
		return resp, nil
	}
	for _, t := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = p.Partition
			if e := results[controller.PartitionRef{Topic: t.Topic, Partition: p.Partition}]; e != nil {
				sp.ErrorCode, sp.ErrorMessage = errCode(e), errMessage(e)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
