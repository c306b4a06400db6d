package api

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"

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
// Any partition error answers at once. Batches of file-backed logs are sent
// straight from the segment files (sendfile, through wire.Region); other
// backends' bytes are copied into the response.
//
// A fetch with a replica id (>= 0) comes from a follower broker: it reads
// up to the log end offset rather than the high watermark, and its fetch
// offset is the follower's log end offset, which moves the high watermark
// and the ISR (replica.Partition.FollowerFetch).
func init() { regKey(kmsg.Fetch, 4, 12, (*Handlers).fetch) }

func (h *Handlers) fetch(ctx context.Context, r *wire.Request) {
	req := r.Msg.(*kmsg.FetchRequest)
	if req.Version >= 7 && req.SessionID != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		r.Respond(resp)
		return
	}
	if r.Span != nil && r.Span.IsRecording() {
		attrs := []attribute.KeyValue{attribute.String("messaging.operation.type", "receive")}
		if len(req.Topics) == 1 {
			attrs = append(attrs, attribute.String("messaging.destination.name", req.Topics[0].Topic))
		}
		r.Span.SetAttributes(attrs...)
	}
	if req.ReplicaID >= 0 {
		h.followerFetch(req)
	}
	res := h.fetchOnce(ctx, req)
	if res.failed || res.bytes >= int(req.MinBytes) || req.MaxWaitMillis <= 0 || len(res.parts) == 0 {
		r.RespondFile(res.resp, res.regions)
		return
	}
	res.release() // read again when woken
	parts := res.parts
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
				res = h.fetchOnce(ctx, req)
				if res.failed || res.bytes >= int(req.MinBytes) {
					r.RespondFile(res.resp, res.regions)
					return
				}
				res.release()
			case <-timer.C:
				res = h.fetchOnce(ctx, req)
				r.RespondFile(res.resp, res.regions)
				return
			case <-ctx.Done():
				r.Fail(ctx.Err()) // the connection is closing
				return
			}
		}
	}()
}

// followerFetch records a follower's fetch offsets, once per request (the
// later passes of a long poll are not new fetches). Errors are answered by
// fetchOnce, which meets the same partitions.
func (h *Handlers) followerFetch(req *kmsg.FetchRequest) {
	now := h.now()
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if p, err := h.partition(rt.Topic, rp.Partition); err == nil && checkEpoch(p, rp.CurrentLeaderEpoch) == nil {
				if err := p.FollowerFetch(req.ReplicaID, rp.FetchOffset, now); err != nil {
					h.log.Debug("follower fetch", "topic", rt.Topic, "partition", rp.Partition, "replica", req.ReplicaID, "err", err)
				}
			}
		}
	}
}

// fetchResult is one pass over a fetch's partitions.
type fetchResult struct {
	resp    *kmsg.FetchResponse
	bytes   int                  // record bytes in the response
	failed  bool                 // a partition failed: answer at once
	parts   []*replica.Partition // the partitions to wait on
	regions []wire.Region        // file data to send in place of markers
}

// release unpins the file regions of a result that will not be sent.
func (f *fetchResult) release() {
	for _, g := range f.regions {
		g.Release()
	}
	f.regions = nil
}

// fetchOnce reads every requested partition once. Batches of file-backed
// logs are not copied: the response carries a marker that the wire layer
// replaces with the file range (sendfile).
func (h *Handlers) fetchOnce(ctx context.Context, req *kmsg.FetchRequest) fetchResult {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	res := fetchResult{resp: resp}
	remaining := int(req.MaxBytes)
	if req.MaxBytes < 0 {
		remaining = 1<<31 - 1
	}
	id := rand.Uint64()
	bound := replica.ToHighWatermark
	if req.ReplicaID >= 0 {
		bound = replica.ToLogEnd
	}
	resp.Topics = make([]kmsg.FetchResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.PreferredReadReplica = -1
			sp.RecordBatches = []byte{}
			p, err := h.partition(rt.Topic, rp.Partition)
			if err == nil {
				err = checkEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil && req.ReplicaID >= 0 && !slices.Contains(p.State().Replicas, req.ReplicaID) {
				err = replica.ErrNotReplica
			}
			if err == nil {
				res.parts = append(res.parts, p)
				limit := min(int(rp.PartitionMaxBytes), remaining)
				first := res.bytes == 0
				if limit > 0 || first {
					err = h.readInto(ctx, &res, &sp, p, rp.FetchOffset, max(limit, 1), first, id, bound)
					remaining = int(req.MaxBytes) - res.bytes
					if req.MaxBytes < 0 {
						remaining = 1<<31 - 1 - res.bytes
					}
				}
				hw := p.HighWatermark()
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, p.LogStartOffset()
			}
			if err != nil {
				res.failed = true
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
	return res
}

// readInto reads one partition's batches into sp: as a file region when
// the log is file-backed, else as bytes. Beyond the first non-empty
// partition, data over limit is dropped (KIP-74's exception is for the
// first only).
func (h *Handlers) readInto(ctx context.Context, res *fetchResult, sp *kmsg.FetchResponseTopicPartition, p *replica.Partition, offset int64, limit int, first bool, id uint64, bound replica.Bound) error {
	max32 := int32(min(limit, 1<<31-1))
	if region, ok, err := p.ReadFile(ctx, offset, max32, bound); ok {
		if err != nil {
			return err
		}
		if region.Len == 0 || (!first && region.Len > int64(limit)) {
			region.Close()
			return nil
		}
		marker := wire.MarkerFor(id, len(res.regions))
		res.regions = append(res.regions, wire.Region{Marker: marker, File: region.File, Pos: region.Pos, Len: region.Len,
			Release: func() { region.Close() }})
		sp.RecordBatches = marker
		res.bytes += int(region.Len)
		return nil
	}
	r, err := p.Read(ctx, offset, max32, bound)
	if err != nil {
		return err
	}
	if len(r.Batches) == 0 || (!first && len(r.Batches) > limit) {
		return nil
	}
	sp.RecordBatches = r.Batches
	res.bytes += len(r.Batches)
	return nil
}
