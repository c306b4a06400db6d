package api

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/controller"
)

// ElectLeaders: v0-2.
//
// The controller elects each named partition's preferred replica (the
// first of its assignment) as leader when it is alive and in the ISR, or,
// with the unclean election type (v1+, KIP-460), any live replica of a
// partition that has no leader. A null topic list means every partition;
// then partitions that need no election are left out of the answer. v1
// adds the election type and a top-level error code; v2 is flexible.
// Brokers other than the controller answer NOT_CONTROLLER.
func init() { regSync(kmsg.ElectLeaders, 0, 2, (*Handlers).electLeaders) }

func (h *Handlers) electLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	kind := controller.ElectPreferred
	if req.Version >= 1 {
		kind = req.ElectionType
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
	var results map[controller.PartitionRef]error
	err := error(kerr.NotController)
	if h.controller != nil {
		results, err = h.controller.ElectLeaders(ctx, kind, refs)
	}
	if err != nil {
		if req.Version >= 1 {
			resp.ErrorCode = errCode(err)
			return resp, nil
		}
		// v0 has no top-level error: every partition carries it.
		results = map[controller.PartitionRef]error{}
		for _, r := range refs {
			results[r] = err
		}
	}
	byTopic := map[string]int{}
	order := refs
	if order == nil {
		for r := range results {
			order = append(order, r)
		}
		sortRefs(order)
	}
	for _, r := range order {
		e, ok := results[r]
		if !ok {
			continue
		}
		i, ok := byTopic[r.Topic]
		if !ok {
			t := kmsg.NewElectLeadersResponseTopic()
			t.Topic = r.Topic
			resp.Topics = append(resp.Topics, t)
			i = len(resp.Topics) - 1
			byTopic[r.Topic] = i
		}
		sp := kmsg.NewElectLeadersResponseTopicPartition()
		sp.Partition = r.Partition
		sp.ErrorCode = errCode(e)
		if e != nil {
			sp.ErrorMessage = errMessage(e)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
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
