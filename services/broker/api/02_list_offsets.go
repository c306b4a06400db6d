package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-5.
//
// v1 answers one offset per partition with its timestamp (v0's list of
// offsets is not served); v2 adds the isolation level (read_committed sees
// the last stable offset, which equals the high watermark without
// transactions); v4 the current leader epoch in the request and the leader
// epoch of the answer (KIP-320); v5 nothing new on the wire.
//
// Timestamp -2 asks for the log start offset, -1 for the high watermark,
// and any other for the first offset whose timestamp is at least it,
// found through the time index and, inside a compressed batch with
// CreateTime timestamps, by decompressing that one batch.
func init() { regSync(kmsg.ListOffsets, 1, 5, (*Handlers).listOffsets) }

func (h *Handlers) listOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p, err := h.partition(rt.Topic, rp.Partition)
			if err == nil {
				err = checkEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				switch ts := rp.Timestamp; ts {
				case -2:
					sp.Offset = p.LogStartOffset()
					sp.LeaderEpoch = p.EpochForOffset(sp.Offset)
				case -1:
					sp.Offset = p.HighWatermark()
					sp.LeaderEpoch = p.State().LeaderEpoch
				default:
					if ts < 0 {
						err = kerr.InvalidRequest
						break
					}
					off, t, ferr := p.OffsetForTimestamp(ctx, ts)
					switch {
					case ferr != nil:
						err = ferr
					case off >= 0:
						sp.Offset, sp.Timestamp = off, t
						sp.LeaderEpoch = p.EpochForOffset(off)
					}
				}
			}
			sp.ErrorCode = errCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
