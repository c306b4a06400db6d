package sdk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

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
	Message   *Message[K, V]
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
	return &Producer[K, V]{cl: cl, keys: keys, values: values, tel: tel, topic: c.topic}, nil
}

// Client is the underlying kgo client, for what this package does not wrap.
func (p *Producer[K, V]) Client() *kgo.Client { return p.cl }

// Send queues one message; done (which may be nil) runs with its fate.
// Send blocks only while the producer's buffer is full, bounded by ctx.
func (p *Producer[K, V]) Send(ctx context.Context, m Message[K, V], done func(Delivery[K, V])) {
	p.SendBatch(ctx, []Message[K, V]{m}, done)
}

// SendBatch queues messages, serialising their keys and values in one
// codec call each. A message whose key or value is rejected is not sent:
// done gets a *SerializeError for it; the others are sent.
func (p *Producer[K, V]) SendBatch(ctx context.Context, msgs []Message[K, V], done func(Delivery[K, V])) {
	if len(msgs) == 0 {
		return
	}
	keys, values, fail := p.encode(ctx, msgs)
	for i := range msgs {
		m := &msgs[i]
		if err := fail(i); err != nil {
			p.tel.countError(ctx, p.topicOf(m), "serialize")
			if done != nil {
				done(Delivery[K, V]{Message: m, Partition: -1, Offset: -1, Err: err})
			}
			continue
		}
		r := &kgo.Record{Topic: p.topicOf(m), Key: keys[i], Value: values[i], Headers: m.Headers, Partition: m.Partition, Timestamp: m.Timestamp}
		if r.Topic == "" {
			if done != nil {
				done(Delivery[K, V]{Message: m, Partition: -1, Offset: -1, Err: ErrNoTopic})
			}
			continue
		}
		sctx, span := p.tel.startSend(ctx, r)
		p.cl.Produce(sctx, r, func(r *kgo.Record, err error) {
			endSend(span, r, err)
			if err != nil {
				p.tel.countError(context.Background(), r.Topic, "send")
			} else {
				p.tel.sent.Add(context.Background(), 1, p.tel.topicSet(r.Topic))
			}
			if done != nil {
				done(Delivery[K, V]{Message: m, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Err: err})
			}
		})
	}
}

func (p *Producer[K, V]) topicOf(m *Message[K, V]) string {
	if m.Topic != "" {
		return m.Topic
	}
	return p.topic
}

// encode serialises the batch's keys and values; fail(i) is message i's
// error, if any.
func (p *Producer[K, V]) encode(ctx context.Context, msgs []Message[K, V]) (keys, values [][]byte, fail func(int) error) {
	ks := make([]K, len(msgs))
	vs := make([]V, len(msgs))
	for i := range msgs {
		ks[i], vs[i] = msgs[i].Key, msgs[i].Value
	}
	keys, kerr := p.keys.Encode(ctx, ks)
	values, verr := p.values.Encode(ctx, vs)
	var kbe, vbe *serde.BatchError
	errors.As(kerr, &kbe)
	errors.As(verr, &vbe)
	fail = func(i int) error {
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
		default:
			return nil
		}
		se := &SerializeError{Topic: p.topicOf(&msgs[i]), Index: i, Part: part, Err: cause}
		var re *serde.RecordError
		if errors.As(cause, &re) {
			se.Field = re.Field
		}
		if keys != nil && i < len(keys) && utf8.Valid(keys[i]) && len(keys[i]) <= 64 {
			se.Key = string(keys[i])
		}
		return se
	}
	if keys == nil {
		keys = make([][]byte, len(msgs))
	}
	if values == nil {
		values = make([][]byte, len(msgs))
	}
	return keys, values, fail
}

// SendSync sends messages and waits for all their deliveries. The error
// is the first failure (the deliveries tell each message's fate).
func (p *Producer[K, V]) SendSync(ctx context.Context, msgs ...Message[K, V]) ([]Delivery[K, V], error) {
	out := make([]Delivery[K, V], len(msgs))
	var wg sync.WaitGroup
	wg.Add(len(msgs))
	index := make(map[*Message[K, V]]int, len(msgs))
	for i := range msgs {
		index[&msgs[i]] = i
	}
	p.SendBatch(ctx, msgs, func(d Delivery[K, V]) {
		out[index[d.Message]] = d
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

// keyText is a key as text for messages, when it is short and printable.
func keyText(k []byte) string {
	if len(k) > 64 || !utf8.Valid(k) {
		return ""
	}
	return strconv.Quote(string(k))
}
