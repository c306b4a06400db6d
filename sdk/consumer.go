package sdk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/sdk/serde"
)

// Record is a consumed record with its key and value decoded.
type Record[K, V any] struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       K
	Value     V
	Headers   []Header
	Timestamp time.Time
	// Err is set (a *DeserializeError) when the key or value could not be
	// decoded; Key and Value are then zero.
	Err error

	raw      *kgo.Record
	producer trace.SpanContext
}

// ProducerSpan is the send span that wrote the record, read from its
// traceparent header (invalid when it carried none).
func (r *Record[K, V]) ProducerSpan() trace.SpanContext { return r.producer }

// DeserializeError is a record whose key or value the codec rejected.
type DeserializeError struct {
	Topic     string
	Partition int32
	Offset    int64
	Part      string
	Field     string
	Err       error
}

func (e *DeserializeError) Error() string {
	s := fmt.Sprintf("record %s/%d@%d: %s", e.Topic, e.Partition, e.Offset, e.Part)
	if e.Field != "" {
		s += fmt.Sprintf(" field %q", e.Field)
	}
	var re *serde.RecordError
	if errors.As(e.Err, &re) {
		return s + ": " + re.Reason
	}
	return s + ": " + e.Err.Error()
}

// Unwrap gives errors.Is access to the cause.
func (e *DeserializeError) Unwrap() error { return e.Err }

// ErrClosed is returned by Poll after Close.
var ErrClosed = errors.New("sdk: consumer closed")

// Consumer reads typed records. Poll must be called from one goroutine at
// a time; the other methods are safe for concurrent use.
type Consumer[K, V any] struct {
	cl     *kgo.Client
	adm    *kadm.Client
	keys   Codec[K]
	values Codec[V]
	tel    *telemetry
	cfg    *cfg
	reg    metric.Registration

	mu         sync.Mutex
	lag        map[string]map[int32]int64
	owned      map[string]map[int32]bool
	checkedGen int32
}

// NewConsumer makes a consumer that decodes keys with keys and values with
// values. With Group it joins the group on the first Poll.
func NewConsumer[K, V any](keys Codec[K], values Codec[V], opts ...ConsumerOpt) (*Consumer[K, V], error) {
	c := newCfg(opts)
	if len(c.topics) == 0 && c.partitions == nil {
		return nil, errors.New("sdk: consumer: give Topics or Partitions")
	}
	if c.group != "" && c.partitions != nil {
		return nil, errors.New("sdk: consumer: Partitions reads without a group; use Topics with Group")
	}
	tel, err := newTelemetry(c, "poll")
	if err != nil {
		return nil, fmt.Errorf("sdk: consumer metrics: %w", err)
	}
	cons := &Consumer[K, V]{keys: keys, values: values, tel: tel, cfg: c, lag: map[string]map[int32]int64{}, owned: map[string]map[int32]bool{}}
	ko := []kgo.Opt{kgo.SeedBrokers(c.brokers...), kgo.ClientID(c.clientID)}
	if c.startSet {
		ko = append(ko, kgo.ConsumeResetOffset(c.start))
	}
	if c.partitions != nil {
		ko = append(ko, kgo.ConsumePartitions(c.partitions))
	} else {
		ko = append(ko, kgo.ConsumeTopics(c.topics...))
	}
	if c.group != "" {
		ko = append(ko, kgo.ConsumerGroup(c.group),
			kgo.OnPartitionsAssigned(cons.assigned),
			kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
				cons.forget(m)
				if c.onRevoked != nil && anyPartition(m) {
					c.onRevoked(ctx, m)
				}
			}),
			kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
				cons.forget(m)
				if c.onLost != nil && anyPartition(m) {
					c.onLost(ctx, m)
				}
			}),
		)
		if c.manual {
			ko = append(ko, kgo.DisableAutoCommit())
		} else if c.commitEvery > 0 {
			ko = append(ko, kgo.AutoCommitInterval(c.commitEvery))
		}
	}
	cl, err := kgo.NewClient(append(ko, c.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("sdk: consumer: %w", err)
	}
	cons.cl, cons.adm = cl, kadm.NewClient(cl)
	if err := cons.registerLag(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("sdk: consumer metrics: %w", err)
	}
	return cons, nil
}

// anyPartition reports whether m names a partition: kgo reports every
// rebalance of a cooperative group, also those that move nothing of this
// consumer's, and the callbacks run only for those that do.
func anyPartition(m map[string][]int32) bool {
	for _, ps := range m {
		if len(ps) > 0 {
			return true
		}
	}
	return false
}

// Client is the underlying kgo client.
func (c *Consumer[K, V]) Client() *kgo.Client { return c.cl }

// Poll waits for records (bounded by ctx) and returns them decoded, one
// codec call per batch. An error means the fetch or the group failed; the
// records returned with it are still valid. Poll returns ctx's error when
// ctx ends with no record.
func (c *Consumer[K, V]) Poll(ctx context.Context) ([]*Record[K, V], error) {
	n := c.cfg.maxPollRecs
	if n <= 0 {
		n = -1
	}
	start := time.Now()
	fetches := c.cl.PollRecords(ctx, n)
	if fetches.IsClientClosed() {
		return nil, ErrClosed
	}
	var errs []error
	fetches.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		c.tel.countError(ctx, t, "fetch")
		errs = append(errs, fmt.Errorf("fetching %s/%d: %w", t, p, err))
	})
	raw := fetches.Records()
	c.noteLag(fetches)
	c.checkBalanceAfterJoin()
	if len(raw) == 0 {
		if err := ctx.Err(); err != nil && len(errs) == 0 {
			return nil, err
		}
		return nil, errors.Join(errs...)
	}
	recs := c.decode(ctx, start, raw)
	return recs, errors.Join(errs...)
}

// decode turns raw records into typed ones, with the poll span (which
// starts when Poll was called) and the consumed counter.
func (c *Consumer[K, V]) decode(ctx context.Context, start time.Time, raw []*kgo.Record) []*Record[K, V] {
	recs := make([]*Record[K, V], len(raw))
	kin := make([][]byte, len(raw))
	vin := make([][]byte, len(raw))
	var links []trace.Link
	var carrier headerCarrier
	for i, r := range raw {
		recs[i] = &Record[K, V]{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Headers: r.Headers, Timestamp: r.Timestamp, raw: r}
		recs[i].producer = c.tel.producerContext(&carrier, r)
		if recs[i].producer.IsValid() {
			links = append(links, trace.Link{SpanContext: recs[i].producer})
		}
		kin[i], vin[i] = r.Key, r.Value
	}
	topic, partition := raw[0].Topic, raw[0].Partition
	for _, r := range raw[1:] {
		if r.Topic != topic {
			topic, partition = "", -1
			break
		}
		if r.Partition != partition {
			partition = -1
		}
	}
	var span trace.Span
	if c.tel.active {
		name := "poll"
		attrs := []attribute.KeyValue{
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeReceive,
			semconv.MessagingOperationName("poll"),
			semconv.MessagingBatchMessageCount(len(raw)),
			semconv.MessagingClientID(c.cfg.clientID),
		}
		if topic != "" {
			name += " " + topic
			attrs = append(attrs, semconv.MessagingDestinationName(topic))
			if partition >= 0 {
				attrs = append(attrs, semconv.MessagingDestinationPartitionID(strconv.Itoa(int(partition))))
			}
		}
		if c.cfg.group != "" {
			attrs = append(attrs, semconv.MessagingConsumerGroupName(c.cfg.group))
		}
		// A receive span is a CLIENT span in the messaging conventions:
		// the application asked for the records.
		_, span = c.tel.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
			trace.WithAttributes(attrs...), trace.WithLinks(links...))
		defer span.End()
	}

	keys, kerr := c.keys.Decode(ctx, kin)
	values, verr := c.values.Decode(ctx, vin)
	var kbe, vbe *serde.BatchError
	errors.As(kerr, &kbe)
	errors.As(verr, &vbe)
	counts := map[string][2]int64{} // topic -> records, failed
	for i, r := range recs {
		var cause error
		part := "key"
		switch {
		case kerr != nil && kbe == nil:
			cause = kerr
		case kbe.ForIndex(i) != nil:
			cause = kbe.ForIndex(i)
		case verr != nil && vbe == nil:
			cause, part = verr, "value"
		case vbe.ForIndex(i) != nil:
			cause, part = vbe.ForIndex(i), "value"
		}
		n := counts[r.Topic]
		n[0]++
		if cause != nil {
			de := &DeserializeError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Part: part, Err: cause}
			var re *serde.RecordError
			if errors.As(cause, &re) {
				de.Field = re.Field
			}
			r.Err = de
			n[1]++
			c.tel.countError(ctx, r.Topic, "deserialize")
		} else {
			r.Key, r.Value = keys[i], values[i]
		}
		counts[r.Topic] = n
	}
	for t, n := range counts {
		c.tel.countConsumed(ctx, t, n[0], n[1])
	}
	if span != nil && len(counts) > 0 {
		failed := int64(0)
		for _, n := range counts {
			failed += n[1]
		}
		if failed > 0 {
			span.SetAttributes(semconv.ErrorTypeKey.String("deserialize"))
		}
	}
	return recs
}

// Process runs fn for r inside a "process T" span whose parent is the
// span that sent r (its creation context), so the consumer's work joins
// the producer's trace. As the messaging conventions ask, the span also
// links to that creation context, and to the span ctx carried (if any),
// which is not its parent.
func (c *Consumer[K, V]) Process(ctx context.Context, r *Record[K, V], fn func(ctx context.Context) error) error {
	var links []trace.Link
	if r.producer.IsValid() {
		links = append(links, trace.Link{SpanContext: r.producer})
		if ambient := trace.SpanContextFromContext(ctx); ambient.IsValid() {
			links = append(links, trace.Link{SpanContext: ambient})
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, r.producer)
	}
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(r.Topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
		semconv.MessagingKafkaOffset(int(r.Offset)),
		semconv.MessagingClientID(c.cfg.clientID),
	}
	if c.cfg.group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(c.cfg.group))
	}
	ctx, span := c.tel.tracer.Start(ctx, "process "+r.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...), trace.WithLinks(links...))
	defer span.End()
	err := fn(ctx)
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String("process"))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		c.tel.countError(ctx, r.Topic, "process")
	}
	return err
}

// Commit commits the offsets just past recs (per partition, the highest
// one given) and waits for the answer.
func (c *Consumer[K, V]) Commit(ctx context.Context, recs ...*Record[K, V]) error {
	raw := make([]*kgo.Record, 0, len(recs))
	for _, r := range recs {
		raw = append(raw, r.raw)
	}
	if err := c.cl.CommitRecords(ctx, raw...); err != nil {
		return fmt.Errorf("sdk: commit: %w", err)
	}
	return nil
}

// CommitPolled commits everything Poll has returned so far.
func (c *Consumer[K, V]) CommitPolled(ctx context.Context) error {
	if err := c.cl.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("sdk: commit: %w", err)
	}
	return nil
}

// Seek makes the next Poll read partition p of topic from offset.
func (c *Consumer[K, V]) Seek(topic string, p int32, offset int64) {
	c.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: {p: {Epoch: -1, Offset: offset}}})
}

// Pause stops fetching the partitions given (all of a topic's when none
// are listed) until Resume.
func (c *Consumer[K, V]) Pause(topic string, partitions ...int32) {
	if len(partitions) == 0 {
		c.cl.PauseFetchTopics(topic)
		return
	}
	c.cl.PauseFetchPartitions(map[string][]int32{topic: partitions})
}

// Resume undoes Pause.
func (c *Consumer[K, V]) Resume(topic string, partitions ...int32) {
	if len(partitions) == 0 {
		c.cl.ResumeFetchTopics(topic)
		return
	}
	c.cl.ResumeFetchPartitions(map[string][]int32{topic: partitions})
}

// Close commits (unless ManualCommit), leaves the group and closes the
// connections, bounded by ctx.
func (c *Consumer[K, V]) Close(ctx context.Context) error {
	var err error
	if c.cfg.group != "" && !c.cfg.manual {
		if cerr := c.cl.CommitUncommittedOffsets(ctx); cerr != nil {
			err = fmt.Errorf("sdk: commit on close: %w", cerr)
		}
	}
	if c.cfg.group != "" {
		// LeaveGroup first so the group rebalances at once instead of
		// waiting for this member's session to time out.
		if lerr := c.cl.LeaveGroupContext(ctx); lerr != nil && err == nil {
			err = fmt.Errorf("sdk: leaving group %q: %w", c.cfg.group, lerr)
		}
	}
	c.cl.Close()
	if c.reg != nil {
		_ = c.reg.Unregister()
	}
	return err
}
