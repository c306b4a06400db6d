package api

import (
	"context"
	"errors"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/metadata"
)

// Metadata: v0-9.
//
// v1 adds racks, the controller id and IsInternal, and a null topic list
// meaning "all" (in v0 the empty list means all); v2 the cluster id; v3
// ThrottleMillis; v4 AllowAutoTopicCreation (earlier versions always
// allow it); v5 offline replicas; v7 leader epochs (KIP-320); v8 authorized
// operations (not computed here: no ACLs); v9 is flexible.
func init() { regSync(kmsg.Metadata, 0, 9, (*Handlers).metadata) }

// unrequestedOps is Kafka's value for authorized operations nobody asked for.
const unrequestedOps = math.MinInt32

func (h *Handlers) metadata(ctx context.Context, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	brokers := h.cluster.Brokers()
	live := make(map[int32]bool, len(brokers))
	for _, b := range brokers {
		live[b.ID] = true
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	id := h.cluster.ClusterID()
	resp.ClusterID = &id
	resp.ControllerID = h.cluster.ControllerID()
	resp.AuthorizedOperations = unrequestedOps

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	var topics []*metadata.Topic
	if all {
		for _, t := range h.cluster.Topics() {
			if !t.Deleting {
				topics = append(topics, t)
			}
		}
		for _, t := range topics {
			resp.Topics = append(resp.Topics, topicMetadata(t, live))
		}
		return resp, nil
	}
	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation
	for _, rt := range req.Topics {
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		}
		if err := validTopic(name); err != nil {
			resp.Topics = append(resp.Topics, errTopic(name, kerr.InvalidTopicException.Code))
			continue
		}
		t, ok := h.cluster.Topic(name)
		if ok && t.Deleting {
			resp.Topics = append(resp.Topics, errTopic(name, kerr.UnknownTopicOrPartition.Code))
			continue
		}
		if !ok {
			if !allowCreate || !h.broker.AutoCreateTopics {
				resp.Topics = append(resp.Topics, errTopic(name, kerr.UnknownTopicOrPartition.Code))
				continue
			}
			var err error
			if t, err = h.autoCreate(ctx, name); err != nil {
				code := errCode(err)
				if errors.Is(err, kerr.InvalidReplicationFactor) {
					code = kerr.LeaderNotAvailable.Code // Kafka's answer while it cannot place replicas
				}
				resp.Topics = append(resp.Topics, errTopic(name, code))
				continue
			}
		}
		resp.Topics = append(resp.Topics, topicMetadata(t, live))
	}
	return resp, nil
}

func errTopic(name string, code int16) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic = &name
	t.ErrorCode = code
	t.AuthorizedOperations = unrequestedOps
	return t
}

func topicMetadata(t *metadata.Topic, live map[int32]bool) kmsg.MetadataResponseTopic {
	rt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	rt.Topic = &name
	rt.IsInternal = name == group.Topic
	rt.AuthorizedOperations = unrequestedOps
	rt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		rp := kmsg.NewMetadataResponseTopicPartition()
		rp.Partition = p.ID
		rp.Leader = p.Leader
		rp.LeaderEpoch = p.LeaderEpoch
		rp.Replicas = orEmpty(p.Replicas)
		rp.ISR = orEmpty(p.ISR)
		rp.OfflineReplicas = []int32{}
		for _, r := range p.Replicas {
			if !live[r] {
				rp.OfflineReplicas = append(rp.OfflineReplicas, r)
			}
		}
		if p.Leader < 0 || !live[p.Leader] {
			rp.ErrorCode = kerr.LeaderNotAvailable.Code
			rp.Leader = -1
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}

func orEmpty(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}
