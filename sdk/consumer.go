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
	tel, err := newTelemetry(c)
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
				if c.onRevoked != nil {
					c.onRevoked(ctx, m)
				}
			}),
			kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
				cons.forget(m)
				if c.onLost != nil {
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
	recs := c.decode(ctx, raw)
	return recs, errors.Join(errs...)
}

// decode turns raw records into typed ones, with the poll span and the
// consumed counter.
func (c *Consumer[K, V]) decode(ctx context.Context, raw []*kgo.Record) []*Record[K, V] {
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
	topic := raw[0].Topic
	name := "poll " + topic
	for _, r := range raw[1:] {
		if r.Topic != topic {
			name, topic = "poll", ""
			break
		}
	}
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeReceive,
		semconv.MessagingOperationName("poll"),
		semconv.MessagingBatchMessageCount(len(raw)),
		semconv.MessagingClientID(c.cfg.clientID),
	}
	if topic != "" {
		attrs = append(attrs, semconv.MessagingDestinationName(topic))
	}
	if c.cfg.group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(c.cfg.group))
	}
	_, span := c.tel.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...), trace.WithLinks(links...))
	defer span.End()

	keys, kerr := c.keys.Decode(ctx, kin)
	values, verr := c.values.Decode(ctx, vin)
	var kbe, vbe *serde.BatchError
	errors.As(kerr, &kbe)
	errors.As(verr, &vbe)
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
		if cause != nil {
			de := &DeserializeError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Part: part, Err: cause}
			var re *serde.RecordError
			if errors.As(cause, &re) {
				de.Field = re.Field
			}
			r.Err = de
			c.tel.countError(ctx, r.Topic, "deserialize")
			continue
		}
		r.Key, r.Value = keys[i], values[i]
		c.tel.countConsumed(ctx, r.Topic, 1)
	}
	return recs
}

// Process runs fn for r inside a "process T" span that is a child of the
// span that sent r, so the consumer's work joins the producer's trace.
func (c *Consumer[K, V]) Process(ctx context.Context, r *Record[K, V], fn func(ctx context.Context) error) error {
	if r.producer.IsValid() {
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
	ctx, span := c.tel.tracer.Start(ctx, "process "+r.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	defer span.End()
	err := fn(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(2, err.Error()) // codes.Error
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
