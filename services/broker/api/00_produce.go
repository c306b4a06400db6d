package api

import (
	"context"
	"errors"
	"fmt"

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
func init() { regKey(kmsg.Produce, 3, 9, (*Handlers).produce) }

func (h *Handlers) produce(ctx context.Context, r *wire.Request) {
	req := r.Msg.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	now := h.now().UnixMilli()
	acksOK := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
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
				actx, span := startAppend(ctx, r, rt.Topic, rp.Partition, rp.Records)
				res, err = h.produceTo(actx, rt.Topic, rp.Partition, rp.Records, req.Acks, now)
				endAppend(span, res.BaseOffset, err)
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
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
	r.Respond(resp)
}

func (h *Handlers) produceTo(ctx context.Context, topic string, partition int32, records []byte, acks int16, now int64) (replica.AppendResult, error) {
	res := replica.AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	p, err := h.partition(topic, partition)
	if errors.Is(err, kerr.UnknownTopicOrPartition) && h.broker.AutoCreateTopics {
		if _, ok := h.cluster.Topic(topic); !ok {
			if _, err = h.autoCreate(ctx, topic); err != nil {
				return res, err
			}
			p, err = h.partition(topic, partition)
		}
	}
	if err != nil {
		return res, err
	}
	if topic == group.Topic {
		// Only the group coordinator writes there (Kafka refuses clients
		// too): a stray record could corrupt every group's state.
		return res, fmt.Errorf("%w: %s is internal", kerr.InvalidTopicException, topic)
	}
	info, err := replica.ValidateProduce(records, p.Config().MaxMessageBytes)
	if err != nil {
		return res, err
	}
	if p.Config().Compact() {
		// Compaction keeps the latest record per key: a record without
		// one could never be compacted, so Kafka refuses it.
		if err := replica.CheckKeys(records); err != nil {
			return res, err
		}
	}
	return p.Append(ctx, records, info, acks, now)
}
