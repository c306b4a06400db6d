package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v0-8.
//
// v1 adds the generation, the member id and a commit timestamp per
// partition; v2 replaces the timestamp with a retention time (ignored here:
// offsets.retention.minutes applies to every commit); v3 adds
// ThrottleMillis; v5 drops the retention time; v6 (KIP-320) carries the
// leader epoch; v7 (KIP-345) group.instance.id; v8 is flexible. Offsets go
// to __consumer_offsets in Kafka's schemas (key v1, value v3) whatever
// the request version, so v0 commits are stored there too, not in
// ZooKeeper as Kafka 0.8 did.
func init() { regSync(kmsg.OffsetCommit, 0, 8, (*Handlers).offsetCommit) }

func (h *Handlers) offsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	if h.groups == nil {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			st := kmsg.OffsetCommitResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				st.Partitions = append(st.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: p.Partition, ErrorCode: kerr.CoordinatorNotAvailable.Code})
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	return h.groups.CommitOffsets(ctx, req), nil
}
