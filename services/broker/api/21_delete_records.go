package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords: v0-2.
//
// v1 changes nothing on the wire; v2 is flexible. Each partition's log
// start offset moves to the requested offset (-1: the high watermark);
// whole segments below it are removed, and the answer is the new low
// watermark.
func init() { regSync(kmsg.DeleteRecords, 0, 2, (*Handlers).deleteRecords) }

func (h *Handlers) deleteRecords(ctx context.Context, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, err := h.partition(rt.Topic, rp.Partition)
			if err == nil {
				sp.LowWatermark, err = p.DeleteRecords(ctx, rp.Offset)
			}
			sp.ErrorCode = errCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
