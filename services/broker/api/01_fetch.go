package api

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/replica"
	"github.com/runnel-io/runnel/services/broker/wire"
)

// Fetch: v4-12.
//
// v4 adds the isolation level, the last stable offset and aborted
// transactions; v5 the log start offset; v6 nothing new on the wire; v7
// fetch sessions (KIP-227: this broker creates none, so clients keep
// sending full fetches); v8 nothing new; v9 the current leader epoch
// (KIP-320: stale or future epochs are fenced); v10 nothing new; v11 rack
// ids and the preferred read replica (always -1: read from the leader);
// v12 is flexible, and an empty record set is encoded empty, never null.
//
// A fetch that finds fewer than MinBytes waits up to MaxWait, woken by
// appends to any partition it names, then reads again. Limits follow
// KIP-74: at most MaxBytes in all and PartitionMaxBytes per partition,
// except that the first batch of the first non-empty partition is returned
// whole even when it alone is larger, so a consumer can always progress.
// Any partition error answers at once.
func init() { regKey(kmsg.Fetch, 4, 12, (*Handlers).fetch) }

func (h *Handlers) fetch(ctx context.Context, r *wire.Request) {
	req := r.Msg.(*kmsg.FetchRequest)
	if req.Version >= 7 && req.SessionID != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		r.Respond(resp)
		return
	}
	resp, n, failed, parts := h.fetchOnce(ctx, req)
	if failed || n >= int(req.MinBytes) || req.MaxWaitMillis <= 0 || len(parts) == 0 {
		r.Respond(resp)
		return
	}
	// Wait off the connection's reading goroutine, so that later requests
	// (a produce that will wake this fetch) are read meanwhile.
	go func() {
		wake := make(chan struct{}, 1)
		for _, p := range parts {
			p.AddWaiter(wake)
		}
		defer func() {
			for _, p := range parts {
				p.RemoveWaiter(wake)
			}
		}()
		timer := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
		defer timer.Stop()
		for {
			select {
			case <-wake:
				resp, n, failed, _ = h.fetchOnce(ctx, req)
				if failed || n >= int(req.MinBytes) {
					r.Respond(resp)
					return
				}
			case <-timer.C:
				resp, _, _, _ = h.fetchOnce(ctx, req)
				r.Respond(resp)
				return
			case <-ctx.Done():
				r.Respond(resp)
				return
			}
		}
	}()
}

// fetchOnce reads every requested partition once. It returns the
// response, the record bytes in it, whether a partition failed, and the
// partitions to wait on.
func (h *Handlers) fetchOnce(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, int, bool, []*replica.Partition) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	remaining := int(req.MaxBytes)
	if req.Version < 3 || req.MaxBytes < 0 {
		remaining = 1<<31 - 1
	}
	total, failed := 0, false
	var parts []*replica.Partition
	resp.Topics = make([]kmsg.FetchResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			sp.RecordBatches = []byte{}
			p, err := h.partition(rt.Topic, rp.Partition)
			if err == nil {
				err = checkEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				parts = append(parts, p)
				limit := min(int(rp.PartitionMaxBytes), remaining)
				first := total == 0
				if limit > 0 || first {
					var res replicaRead
					res, err = readPartition(ctx, p, rp.FetchOffset, max(limit, 1))
					if err == nil && (first || len(res.batches) <= limit) {
						sp.RecordBatches = res.batches
						total += len(res.batches)
						remaining -= len(res.batches)
					}
				}
				hw := p.HighWatermark()
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, p.LogStartOffset()
			}
			if err != nil {
				failed = true
				sp.ErrorCode = errCode(err)
				sp.RecordBatches = []byte{}
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				if sp.ErrorCode == kerr.OffsetOutOfRange.Code && p != nil {
					sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = p.HighWatermark(), p.HighWatermark(), p.LogStartOffset()
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, total, failed, parts
}

type replicaRead struct{ batches []byte }

func readPartition(ctx context.Context, p *replica.Partition, offset int64, limit int) (replicaRead, error) {
	res, err := p.Read(ctx, offset, int32(min(limit, 1<<31-1)))
	if err != nil {
		return replicaRead{}, err
	}
	if res.Batches == nil {
		return replicaRead{batches: []byte{}}, nil
	}
	return replicaRead{batches: res.Batches}, nil
}
