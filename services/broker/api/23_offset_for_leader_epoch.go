package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v2-4.
//
// v2 adds the current leader epoch (fencing, KIP-320) and ThrottleMillis;
// v3 the replica id (-1 for consumers); v4 is flexible. The answer is the
// largest epoch not above the requested one and the offset where the
// following epoch starts (the log end offset for the current epoch), from
// the leader-epoch cache; -1/-1 when no epoch is that old.
func init() { regSync(kmsg.OffsetForLeaderEpoch, 2, 4, (*Handlers).offsetForLeaderEpoch) }

func (h *Handlers) offsetForLeaderEpoch(_ context.Context, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, err := h.partition(rt.Topic, rp.Partition)
			if err == nil {
				err = checkEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				sp.LeaderEpoch, sp.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			sp.ErrorCode = errCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
