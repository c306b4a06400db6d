package api

import (
	"context"
	"fmt"
	"slices"
	"strings"

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

// sortRefs orders partitions by topic, then partition.
func sortRefs(refs []controller.PartitionRef) {
	slices.SortFunc(refs, func(a, b controller.PartitionRef) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
}

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
		resp.ErrorMessage = errMessage(fmt.Errorf("%w", err))
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
