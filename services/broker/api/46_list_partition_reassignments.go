package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/controller"
)

// ListPartitionReassignments: v0 (flexible).
//
// Lists the ongoing reassignments, of the named partitions or (a null
// topic list) of all: each with its replicas and the replicas being added
// and removed. Brokers other than the controller answer NOT_CONTROLLER.
func init() {
	regSync(kmsg.ListPartitionReassignments, 0, 0, (*Handlers).listPartitionReassignments)
}

func (h *Handlers) listPartitionReassignments(_ context.Context, req *kmsg.ListPartitionReassignmentsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if h.controller == nil {
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	var refs []controller.PartitionRef
	if req.Topics != nil {
		refs = []controller.PartitionRef{}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				refs = append(refs, controller.PartitionRef{Topic: t.Topic, Partition: p})
			}
		}
	}
	parts, err := h.controller.Reassignments(refs)
	if err != nil {
		resp.ErrorCode = errCode(err)
		resp.ErrorMessage = errMessage(err)
		return resp, nil
	}
	byTopic := map[string]int{}
	for _, p := range parts {
		i, ok := byTopic[p.Topic]
		if !ok {
			t := kmsg.NewListPartitionReassignmentsResponseTopic()
			t.Topic = p.Topic
			resp.Topics = append(resp.Topics, t)
			i = len(resp.Topics) - 1
			byTopic[p.Topic] = i
		}
		sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		sp.Partition, sp.Replicas = p.ID, orEmpty(p.Replicas)
		sp.AddingReplicas, sp.RemovingReplicas = orEmpty(p.Adding), orEmpty(p.Removing)
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
	}
	return resp, nil
}
