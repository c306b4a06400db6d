package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/sdk/serde"
)

// Header is a record header.
type Header = kgo.RecordHeader

// Message is a record to send.
type Message[K, V any] struct {
	// Topic is where it goes; empty means the producer's DefaultTopic.
	Topic string
	Key   K
	Value V
	// Headers travel with the record; the producer adds traceparent.
	Headers []Header
	// Partition is used only with ManualPartitions.
	Partition int32
	// Timestamp is the record's time; zero means now.
	Timestamp time.Time
}

// Delivery is the fate of one sent message.
type Delivery[K, V any] struct {
	// Message is the message as sent: its Topic filled in from
	// DefaultTopic, its Headers with the traceparent the producer added,
	// and Partition and Timestamp as the record got them.
	Message Message[K, V]
	// Index is the message's position in its SendBatch or SendSync call
	// (0 for Send).
	Index     int
	Partition int32
	Offset    int64
	Timestamp time.Time
	// Err is nil when the cluster stored the record.
	Err error
}

// SerializeError is a message whose key or value the codec rejected; it
// never reached the cluster.
type SerializeError struct {
	Topic string
	// Index is the message's position in its SendBatch call.
	Index int
	// Key is the key as text when it is printable, for the message.
	Key string
	// Part is "key" or "value".
	Part string
	// Field is the offending field's path, if the codec named one.
	Field string
	Err   error
}

func (e *SerializeError) Error() string {
	s := fmt.Sprintf("record %d for topic %q", e.Index, e.Topic)
	if e.Key != "" {
		s += fmt.Sprintf(" (key %q)", e.Key)
	}
	s += ": " + e.Part
	if e.Field != "" {
		s += fmt.Sprintf(" field %q", e.Field)
	}
	var re *serde.RecordError
	if errors.As(e.Err, &re) {
		return s + ": " + re.Reason
	}
	return s + ": " + e.Err.Error()
}

// Unwrap gives errors.Is access to serde.ErrInvalidValue and the cause.
func (e *SerializeError) Unwrap() error { return e.Err }

// ErrNoTopic is the error of a message with no topic when the producer has
// no DefaultTopic.
var ErrNoTopic = errors.New("the message names no topic and the producer has no default topic")

// Producer sends typed messages. Its methods are safe for concurrent use.
type Producer[K, V any] struct {
	cl     *kgo.Client
	keys   Codec[K]
	values Codec[V]
	tel    *telemetry
	topic  string
	closed sync.Once
	// promise is finish as a func value, made once: a method value
	// allocates each time it is taken.
	promise  func(*kgo.Record, error)
	keyOne   func(context.Context, K) ([]byte, error)
	valueOne func(context.Context, V) ([]byte, error)
}

// NewProducer makes a producer that encodes keys with keys and values with
// values. It does not contact the cluster until the first send.
func NewProducer[K, V any](keys Codec[K], values Codec[V], opts ...ProducerOpt) (*Producer[K, V], error) {
	c := newCfg(opts)
	tel, err := newTelemetry(c)
	if err != nil {
		return nil, fmt.Errorf("sdk: producer metrics: %w", err)
	}
	ko := []kgo.Opt{kgo.SeedBrokers(c.brokers...), kgo.ClientID(c.clientID)}
	if c.topic != "" {
		ko = append(ko, kgo.DefaultProduceTopic(c.topic))
	}
	if c.acksSet {
		ko = append(ko, kgo.RequiredAcks(c.acks))
		if c.acks != kgo.AllISRAcks() {
			c.noIdempotence = true
		}
	}
	if c.noIdempotence {
		ko = append(ko, kgo.DisableIdempotentWrite())
	}
	if c.deliveryTimeout > 0 {
		ko = append(ko, kgo.RecordDeliveryTimeout(c.deliveryTimeout))
	}
	if c.retriesSet {
		ko = append(ko, kgo.RecordRetries(c.retries))
	}
	if c.linger > 0 {
		ko = append(ko, kgo.ProducerLinger(c.linger))
	}
	if len(c.compression) > 0 {
		ko = append(ko, kgo.ProducerBatchCompression(c.compression...))
	}
	if c.manualPartition {
		ko = append(ko, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(append(ko, c.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("sdk: producer: %w", err)
	}
	p := &Producer[K, V]{cl: cl, keys: keys, values: values, tel: tel, topic: c.topic}
	p.promise = p.finish
	p.keyOne, p.valueOne = oneEncoder(keys), oneEncoder(values)
	return p, nil
}

// Client is the underlying kgo client, for what this package does not wrap.
func (p *Producer[K, V]) Client() *kgo.Client { return p.cl }

// Send queues one message; done (which may be nil) runs with its fate.
// Send blocks only while the producer's buffer is full, bounded by ctx.
// A key or value the codec rejects is reported to done as a
// *SerializeError. To serialise through a plugin process, prefer
// SendBatch: one codec call per batch instead of per message.
func (p *Producer[K, V]) Send(ctx context.Context, m Message[K, V], done func(Delivery[K, V])) {
	pd := &pending[K, V]{key: m.Key, value: m.Value, done: done}
	pd.rec = kgo.Record{Topic: m.Topic, Headers: m.Headers, Partition: m.Partition, Timestamp: m.Timestamp}
	var kerr, verr error
	pd.rec.Key, kerr = p.keyOne(ctx, m.Key)
	pd.rec.Value, verr = p.valueOne(ctx, m.Value)
	if kerr != nil || verr != nil {
		p.failEncode(ctx, &m, 0, kerr, verr, pd.rec.Key, done)
		return
	}
	p.produce(ctx, pd)
}

// SendBatch queues messages, serialising their keys and values in one
// codec call each. A message whose key or value is rejected is not sent:
// done gets a *SerializeError for it; the others are sent.
func (p *Producer[K, V]) SendBatch(ctx context.Context, msgs []Message[K, V], done func(Delivery[K, V])) {
	if len(msgs) == 0 {
		return
	}
	ks := make([]K, len(msgs))
	vs := make([]V, len(msgs))
	for i := range msgs {
		ks[i], vs[i] = msgs[i].Key, msgs[i].Value
	}
	keys, kerr := p.keys.Encode(ctx, ks)
	values, verr := p.values.Encode(ctx, vs)
	for i := range msgs {
		ke, ve := itemError(kerr, i), itemError(verr, i)
		if ke != nil || ve != nil {
			var key []byte
			if i < len(keys) {
				key = keys[i]
			}
			p.failEncode(ctx, &msgs[i], i, ke, ve, key, done)
			continue
		}
		m := &msgs[i]
		pd := &pending[K, V]{key: m.Key, value: m.Value, index: i, done: done}
		pd.rec = kgo.Record{Topic: m.Topic, Key: keys[i], Value: values[i], Headers: m.Headers, Partition: m.Partition, Timestamp: m.Timestamp}
		p.produce(ctx, pd)
	}
}

// itemError is item i's share of a codec's error: its RecordError for a
// *serde.BatchError, the whole error otherwise.
func itemError(err error, i int) error {
	if err == nil {
		return nil
	}
	var be *serde.BatchError
	if errors.As(err, &be) {
		if re := be.ForIndex(i); re != nil {
			return re
		}
		return nil
	}
	return err
}

// failEncode reports a message the codecs rejected.
func (p *Producer[K, V]) failEncode(ctx context.Context, m *Message[K, V], index int, kerr, verr error, key []byte, done func(Delivery[K, V])) {
	part, cause := "key", kerr
	if kerr == nil {
		part, cause = "value", verr
	}
	se := &SerializeError{Topic: p.topicOf(m), Index: index, Part: part, Err: cause}
	var re *serde.RecordError
	if errors.As(cause, &re) {
		se.Field = re.Field
	}
	if kerr == nil && len(key) <= 64 && utf8.Valid(key) {
		se.Key = string(key)
	}
	p.tel.countError(ctx, se.Topic, "serialize")
	if done != nil {
		done(Delivery[K, V]{Message: *m, Index: index, Partition: -1, Offset: -1, Err: se})
	}
}

// pending is one message in flight: the record kgo sends, the message for
// its Delivery, and the send span, in one allocation. It is also the
// record's Context (the caller's context, embedded), which is how the
// shared promise finds it: raw kgo allocates a record per message too, so
// the SDK adds no allocation of its own on the produce path.
//
// The message's other fields live in the record (Delivery rebuilds the
// Message from it), so a message costs little more memory than raw kgo's
// record: the allocation rate drives the garbage collector's share of the
// produce path.
type pending[K, V any] struct {
	context.Context
	rec   kgo.Record
	key   K
	value V
	index int
	done  func(Delivery[K, V])
	span  trace.Span
}

// message rebuilds the Message pd was made from; its Headers include the
// traceparent the producer added, and Partition and Timestamp are the
// ones the record got.
func (pd *pending[K, V]) message() Message[K, V] {
	r := &pd.rec
	return Message[K, V]{Topic: r.Topic, Key: pd.key, Value: pd.value, Headers: r.Headers, Partition: r.Partition, Timestamp: r.Timestamp}
}

// produce hands one encoded message (its key and value already in pd.rec)
// to kgo, with its send span.
func (p *Producer[K, V]) produce(ctx context.Context, pd *pending[K, V]) {
	if pd.rec.Topic == "" {
		pd.rec.Topic = p.topic
	}
	if pd.rec.Topic == "" {
		if pd.done != nil {
			pd.done(Delivery[K, V]{Message: pd.message(), Index: pd.index, Partition: -1, Offset: -1, Err: ErrNoTopic})
		}
		return
	}
	pd.Context, pd.span = p.tel.startSend(ctx, &pd.rec)
	pd.rec.Context = pd
	p.cl.Produce(pd.Context, &pd.rec, p.promise)
}

// finish is the promise of every record: it ends the span, counts, and
// reports the delivery.
func (p *Producer[K, V]) finish(r *kgo.Record, err error) {
	pd := r.Context.(*pending[K, V])
	endSend(pd.span, r, err)
	if err != nil {
		p.tel.countError(context.Background(), r.Topic, "send")
	} else {
		p.tel.sent.Add(context.Background(), 1, p.tel.topicOpts(r.Topic)...)
	}
	if pd.done != nil {
		pd.done(Delivery[K, V]{Message: pd.message(), Index: pd.index, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Err: err})
	}
}

// oneEncoder returns how to encode a single key or value with c: directly
// when the codec can do one item (the in-process codecs can), else as a
// batch of one. It is chosen once, when the producer is made.
func oneEncoder[T any](c Codec[T]) func(context.Context, T) ([]byte, error) {
	if one, ok := c.(interface{ encodeOne(T) ([]byte, error) }); ok {
		return func(_ context.Context, v T) ([]byte, error) { return one.encodeOne(v) }
	}
	return func(ctx context.Context, v T) ([]byte, error) {
		out, err := c.Encode(ctx, []T{v})
		if err != nil {
			if re := itemError(err, 0); re != nil {
				return nil, re
			}
			return nil, err
		}
		return out[0], nil
	}
}

func (p *Producer[K, V]) topicOf(m *Message[K, V]) string {
	if m.Topic != "" {
		return m.Topic
	}
	return p.topic
}

// SendSync sends messages and waits for all their deliveries. The error
// is the first failure (the deliveries tell each message's fate).
func (p *Producer[K, V]) SendSync(ctx context.Context, msgs ...Message[K, V]) ([]Delivery[K, V], error) {
	out := make([]Delivery[K, V], len(msgs))
	var wg sync.WaitGroup
	wg.Add(len(msgs))
	p.SendBatch(ctx, msgs, func(d Delivery[K, V]) {
		out[d.Index] = d
		wg.Done()
	})
	wg.Wait()
	for _, d := range out {
		if d.Err != nil {
			return out, d.Err
		}
	}
	return out, nil
}

// Flush waits until every queued message has its delivery, or ctx ends.
func (p *Producer[K, V]) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("sdk: flush: %w", err)
	}
	return nil
}

// Close flushes (bounded by ctx), then closes the connections. Messages
// still queued when ctx ends fail with the context's error.
func (p *Producer[K, V]) Close(ctx context.Context) error {
	var err error
	p.closed.Do(func() {
		err = p.Flush(ctx)
		p.cl.Close()
	})
	return err
}
