package api

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/group"
)

// OffsetFetch: v0-8.
//
// v1 reads from __consumer_offsets (v0 read ZooKeeper in Kafka 0.8; here
// both read the same offsets); v2 takes a null topic list for "every
// committed partition" and adds a top-level error; v3 ThrottleMillis; v5
// (KIP-320) the leader epoch; v6 is flexible; v7 (KIP-447) RequireStable,
// always met without transactions; v8 (KIP-709) asks for many groups at
// once. A partition without a commit answers offset -1 and no error.
func init() { regSync(kmsg.OffsetFetch, 0, 8, (*Handlers).offsetFetch) }

func (h *Handlers) offsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var topics []kmsg.OffsetFetchRequestTopic
			if rg.Topics != nil {
				topics = make([]kmsg.OffsetFetchRequestTopic, len(rg.Topics))
				for i, t := range rg.Topics {
					topics[i] = kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions}
				}
			}
			ts, code := h.fetchOffsets(rg.Group, topics)
			g := kmsg.OffsetFetchResponseGroup{Group: rg.Group, ErrorCode: code}
			for _, t := range ts {
				gt := kmsg.OffsetFetchResponseGroupTopic{Topic: t.Topic}
				for _, p := range t.Partitions {
					gt.Partitions = append(gt.Partitions, kmsg.OffsetFetchResponseGroupTopicPartition{Partition: p.Partition,
						Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode})
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp, nil
	}
	topics := req.Topics
	if req.Version < 2 && topics == nil {
		topics = []kmsg.OffsetFetchRequestTopic{} // only v2+ mean "all" by null
	}
	ts, code := h.fetchOffsets(req.Group, topics)
	if req.Version >= 2 {
		resp.ErrorCode = code
	} else if code != 0 {
		// v0 and v1 have no top-level error: each partition carries it.
		for i := range ts {
			for j := range ts[i].Partitions {
				ts[i].Partitions[j].ErrorCode = code
			}
		}
	}
	resp.Topics = ts
	return resp, nil
}

// fetchOffsets answers for one group: the requested partitions, or every
// committed one when topics is nil, sorted then; and a group-level error.
func (h *Handlers) fetchOffsets(groupID string, topics []kmsg.OffsetFetchRequestTopic) ([]kmsg.OffsetFetchResponseTopic, int16) {
	var offs map[group.TopicPartition]group.OffsetValue
	var err error
	if h.groups == nil {
		err = kerr.CoordinatorNotAvailable
	} else {
		offs, err = h.groups.FetchOffsets(groupID)
	}
	partition := func(tp group.TopicPartition) kmsg.OffsetFetchResponseTopicPartition {
		p := kmsg.OffsetFetchResponseTopicPartition{Partition: tp.Partition, Offset: -1, LeaderEpoch: -1}
		if v, ok := offs[tp]; ok {
			meta := v.Metadata
			p.Offset, p.LeaderEpoch, p.Metadata = v.Offset, v.LeaderEpoch, &meta
		} else {
			empty := ""
			p.Metadata = &empty
		}
		return p
	}
	if err != nil {
		if topics == nil {
			return []kmsg.OffsetFetchResponseTopic{}, errCode(err)
		}
		offs = nil
	}
	var out []kmsg.OffsetFetchResponseTopic
	if topics == nil {
		byTopic := map[string][]group.TopicPartition{}
		for tp := range offs {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp)
		}
		names := make([]string, 0, len(byTopic))
		for n := range byTopic {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			tps := byTopic[n]
			sort.Slice(tps, func(i, j int) bool { return tps[i].Partition < tps[j].Partition })
			t := kmsg.OffsetFetchResponseTopic{Topic: n}
			for _, tp := range tps {
				t.Partitions = append(t.Partitions, partition(tp))
			}
			out = append(out, t)
		}
	} else {
		for _, rt := range topics {
			t := kmsg.OffsetFetchResponseTopic{Topic: rt.Topic}
			for _, p := range rt.Partitions {
				t.Partitions = append(t.Partitions, partition(group.TopicPartition{Topic: rt.Topic, Partition: p}))
			}
			out = append(out, t)
		}
	}
	if out == nil {
		out = []kmsg.OffsetFetchResponseTopic{}
	}
	return out, errCode(err)
}
