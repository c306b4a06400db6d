package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/group"
)

// OffsetDelete: v0 (KIP-496).
//
// Deletes committed offsets of a group: all of an empty group's, and, in a
// consumer group with members, those of topics no member subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC for the others).
func init() { regSync(kmsg.OffsetDelete, 0, 0, (*Handlers).offsetDelete) }

func (h *Handlers) offsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var parts []group.TopicPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, group.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	var per []int16
	if h.groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	} else {
		resp.ErrorCode, per = h.groups.DeleteOffsets(ctx, req.Group, parts)
	}
	i := 0
	for _, t := range req.Topics {
		rt := kmsg.OffsetDeleteResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.OffsetDeleteResponseTopicPartition{Partition: p.Partition}
			if resp.ErrorCode == 0 {
				rp.ErrorCode = per[i]
			}
			i++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
