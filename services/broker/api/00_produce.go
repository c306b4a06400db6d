package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"

	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/replica"
	"github.com/runnel-io/runnel/services/broker/wire"
)

// Produce: v3-9.
//
// v3 introduced the v2 record batch (magic 2) and the transactional id, so
// older versions, which carry message sets, are not served. v5 adds
// LogStartOffset to the response; v6 and v7 change nothing on the wire (v7:
// ZSTD allowed, which v2 batches always could carry); v8 adds per-record
// errors and an error message (KIP-467); v9 is flexible.
//
// Every batch is checked once, at the header and CRC (ValidateProduce), and
// stored as received apart from the base offset, the partition leader
// epoch and, for LogAppendTime topics, the timestamp: records are never
// decompressed, except on compacted topics, whose records must all have
// keys. acks=0 gets no response at all. Sequence numbers of idempotent
// producers are checked per partition (package replica): a retried batch
// is acknowledged at its first offset without being written again.
//
// When the request is sampled, each partition's append gets a span
// ("append T") in the producer's trace, read from the first record's
// headers (see startAppend): only then is a compressed batch opened.
//
// acks=all (-1) needs the ISR to hold min.insync.replicas before the
// append (NOT_ENOUGH_REPLICAS), then waits, off the connection's reading
// goroutine, until every ISR member has the records: the high watermark
// passes them. A wait that outlasts the request's timeout answers
// REQUEST_TIMED_OUT, a leadership that moves meanwhile
// NOT_LEADER_OR_FOLLOWER, and an ISR that shrank below
// min.insync.replicas meanwhile NOT_ENOUGH_REPLICAS_AFTER_APPEND, as in
// Kafka. The records stay in the log in every case (the producer retries,
// and idempotence keeps the retry from doubling them). The wait is a span
// of its own ("replicate T"), a child of the partition's append span.
func init() { regKey(kmsg.Produce, 3, 9, (*Handlers).produce) }

// pendingAck is an acks=all partition whose records are appended but not
// yet on the whole ISR.
type pendingAck struct {
	sp    *kmsg.ProduceResponseTopicPartition
	p     *replica.Partition
	res   replica.AppendResult
	trace context.Context // the append span's, for the replicate span
}

func (h *Handlers) produce(ctx context.Context, r *wire.Request) {
	req := r.Msg.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	now := h.now().UnixMilli()
	acksOK := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	var pending []pendingAck
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			var err error
			if !acksOK {
				err = kerr.InvalidRequiredAcks
			} else {
				var res replica.AppendResult
				var p *replica.Partition
				actx, span := startAppend(ctx, r, rt.Topic, rp.Partition, rp.Records)
				p, res, err = h.produceTo(actx, rt.Topic, rp.Partition, rp.Records, req.Acks, now)
				endAppend(span, res.BaseOffset, err)
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
				if err == nil && req.Acks == -1 && !p.Replicated(res.LastOffset) {
					pending = append(pending, pendingAck{p: p, res: res, trace: actx})
				}
			}
			if err != nil {
				sp.ErrorCode = errCode(err)
				if req.Version >= 8 {
					sp.ErrorMessage = errMessage(err)
				}
				if sp.ErrorCode == kerr.UnknownServerError.Code {
					h.log.Warn("produce failed", "topic", rt.Topic, "partition", rp.Partition, "err", err)
				}
			}
			st.Partitions = append(st.Partitions, sp)
			if n := len(pending); n > 0 && pending[n-1].sp == nil {
				pending[n-1].sp = &st.Partitions[len(st.Partitions)-1]
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if r.Span != nil && r.Span.IsRecording() {
		attrs := []attribute.KeyValue{attribute.String("messaging.operation.type", "send"), attribute.Int("kafka.acks", int(req.Acks))}
		if len(req.Topics) == 1 {
			attrs = append(attrs, attribute.String("messaging.destination.name", req.Topics[0].Topic))
		}
		r.Span.SetAttributes(attrs...)
	}
	if req.Acks == 0 {
		r.Respond(nil)
		return
	}
	if len(pending) == 0 {
		r.Respond(resp)
		return
	}
	go h.awaitReplication(ctx, r, req, resp, pending)
}

// awaitReplication answers an acks=all produce once its partitions are
// on their whole ISRs, or failed to get there within the request timeout.
func (h *Handlers) awaitReplication(ctx context.Context, r *wire.Request, req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, pending []pendingAck) {
	wctx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
	defer cancel()
	for _, pa := range pending {
		span := startReplicate(pa.trace, r, pa.p, pa.res)
		err := pa.p.WaitReplicated(wctx, pa.res.LastOffset, pa.res.LeaderEpoch)
		endReplicate(span, pa.p, err)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			r.Fail(ctx.Err()) // the connection is closing
			return
		}
		pa.sp.ErrorCode = errCode(err)
		if errors.Is(err, context.DeadlineExceeded) {
			pa.sp.ErrorCode = kerr.RequestTimedOut.Code
		}
		if req.Version >= 8 {
			pa.sp.ErrorMessage = errMessage(err)
		}
	}
	r.Respond(resp)
}

func (h *Handlers) produceTo(ctx context.Context, topic string, partition int32, records []byte, acks int16, now int64) (*replica.Partition, replica.AppendResult, error) {
	res := replica.AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	p, err := h.partition(topic, partition)
	if errors.Is(err, kerr.UnknownTopicOrPartition) && h.broker.AutoCreateTopics {
		if _, ok := h.cluster.Topic(topic); !ok {
			if _, err = h.autoCreate(ctx, topic); err != nil {
				return nil, res, err
			}
			p, err = h.partition(topic, partition)
		}
	}
	if err != nil {
		return nil, res, err
	}
	if topic == group.Topic {
		// Only the group coordinator writes there (Kafka refuses clients
		// too): a stray record could corrupt every group's state.
		return nil, res, fmt.Errorf("%w: %s is internal", kerr.InvalidTopicException, topic)
	}
	info, err := replica.ValidateProduce(records, p.Config().MaxMessageBytes)
	if err != nil {
		return nil, res, err
	}
	if p.Config().Compact() {
		// Compaction keeps the latest record per key: a record without
		// one could never be compacted, so Kafka refuses it.
		if err := replica.CheckKeys(records); err != nil {
			return nil, res, err
		}
	}
	res, err = p.Append(ctx, records, info, acks, now)
	return p, res, err
}
