package sdk

import (
	"context"
	"errors"
	"fmt"
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
	promise func(*kgo.Record, error)
	// keyOne and valueOne encode a single key or value, when the codec
	// can (the in-process codecs can); Send falls back to a batch of one.
	keyOne   oneEncoder[K]
	valueOne oneEncoder[V]
	// keyWire and valueWire rebuild a key or value from its encoding,
	// when the codec can (Bytes and String): such messages need not keep
	// the typed key and value for their Delivery.
	keyWire   wireDecoder[K]
	valueWire wireDecoder[V]
	fromWire  bool // both can
}

// NewProducer makes a producer that encodes keys with keys and values with
// values. It does not contact the cluster until the first send.
func NewProducer[K, V any](keys Codec[K], values Codec[V], opts ...ProducerOpt) (*Producer[K, V], error) {
	c := newCfg(opts)
	tel, err := newTelemetry(c, "send")
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
	p.keyOne, _ = keys.(oneEncoder[K])
	p.valueOne, _ = values.(oneEncoder[V])
	p.keyWire, _ = keys.(wireDecoder[K])
	p.valueWire, _ = values.(wireDecoder[V])
	p.fromWire = p.keyWire != nil && p.valueWire != nil
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
	var key, value []byte
	var kerr, verr error
	if p.keyOne != nil {
		key, kerr = p.keyOne.encodeOne(m.Key)
	} else {
		key, kerr = encodeBatchOfOne(ctx, p.keys, m.Key)
	}
	if p.valueOne != nil {
		value, verr = p.valueOne.encodeOne(m.Value)
	} else {
		value, verr = encodeBatchOfOne(ctx, p.values, m.Value)
	}
	if kerr != nil || verr != nil {
		p.failEncode(ctx, &m, 0, kerr, verr, key, done)
		return
	}
	pd := newPending(&m, key, value, done)
	if !p.fromWire {
		pd.more = &pendingMore[K, V]{key: m.Key, value: m.Value, typed: true}
	}
	p.produce(ctx, pd, p.tel.tracing(ctx), nil)
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
	// The messages' index (and typed key and value, when they cannot be
	// rebuilt, and trace headers) in one allocation each for the batch.
	more := make([]pendingMore[K, V], len(msgs))
	tracing := p.tel.tracing(ctx)
	var headers []traceHeader
	if tracing {
		headers = make([]traceHeader, len(msgs))
	}
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
		pd := newPending(&msgs[i], keys[i], values[i], done)
		pd.more = &more[i]
		more[i].index = i
		if !p.fromWire {
			more[i].key, more[i].value, more[i].typed = msgs[i].Key, msgs[i].Value, true
		}
		var th *traceHeader
		if tracing {
			th = &headers[i]
		}
		p.produce(ctx, pd, tracing, th)
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

// pending is one message in flight: the record kgo sends and what its
// Delivery needs. It is also the record's Context, which is how the
// shared promise finds it.
//
// Its size is the produce path's main cost beyond raw kgo's: kgo keeps
// every buffered record alive, and the bytes of those records are what
// the garbage collector and the caches work through. A pending is a
// kgo.Record and two words (176 bytes, the size class above the record's
// 160), which measured as fast as the bare record, where the record with
// the message's typed key and value, index and span beside it (240
// bytes) cost a tenth of the produce path more (BENCHMARKS.md). So what
// a message needs beyond its record is in more, and only when it needs
// it: a message sent with Send, not traced, whose codecs rebuild the key
// and value from their encoding (Bytes, String), has none.
type pending[K, V any] struct {
	rec  kgo.Record
	done func(Delivery[K, V])
	more *pendingMore[K, V]
}

// pendingMore is what some messages need beyond their record.
type pendingMore[K, V any] struct {
	// ctx is the send span's context (nil when the message is not
	// traced).
	ctx context.Context
	// key and value are the message's, when typed (else they are rebuilt
	// from the record).
	key   K
	value V
	typed bool
	// index is the message's position in its SendBatch call.
	index int
}

// newPending makes the pending state of m, encoded as key and value.
// Fields are set one by one: building a kgo.Record and copying it in
// costs a copy of the whole record, with write barriers.
func newPending[K, V any](m *Message[K, V], key, value []byte, done func(Delivery[K, V])) *pending[K, V] {
	pd := &pending[K, V]{done: done}
	r := &pd.rec
	r.Topic, r.Key, r.Value, r.Headers = m.Topic, key, value, m.Headers
	r.Partition, r.Timestamp = m.Partition, m.Timestamp
	return pd
}

// The record's Context is its send span's context when it has one, and
// context.Background's otherwise: kgo honours cancellation through the
// context given to Produce, which is the caller's (or the span's, which
// derives from it).

func (pd *pending[K, V]) Deadline() (time.Time, bool) {
	if c := pd.ctx(); c != nil {
		return c.Deadline()
	}
	return time.Time{}, false
}

func (pd *pending[K, V]) Done() <-chan struct{} {
	if c := pd.ctx(); c != nil {
		return c.Done()
	}
	return nil
}

func (pd *pending[K, V]) Err() error {
	if c := pd.ctx(); c != nil {
		return c.Err()
	}
	return nil
}

func (pd *pending[K, V]) Value(key any) any {
	if c := pd.ctx(); c != nil {
		return c.Value(key)
	}
	return nil
}

func (pd *pending[K, V]) ctx() context.Context {
	if pd.more != nil {
		return pd.more.ctx
	}
	return nil
}

// fill sets d's Message and Index from pd: the Message rebuilt, its
// Headers with the traceparent the producer added, and Partition and
// Timestamp the ones the record got. (Filling in place spares copying a
// Message into the Delivery, which showed in the produce path.)
func (p *Producer[K, V]) fill(d *Delivery[K, V], pd *pending[K, V]) {
	r, m := &pd.rec, &d.Message
	m.Topic, m.Headers, m.Partition, m.Timestamp = r.Topic, r.Headers, r.Partition, r.Timestamp
	if mo := pd.more; mo != nil {
		d.Index = mo.index
		if mo.typed {
			m.Key, m.Value = mo.key, mo.value
			return
		}
	}
	m.Key, m.Value = p.keyWire.fromWire(r.Key), p.valueWire.fromWire(r.Value)
}

// produce hands one encoded message (its key and value already in pd.rec)
// to kgo, with its send span if tracing; th, if not nil, is where its
// trace header may go.
func (p *Producer[K, V]) produce(ctx context.Context, pd *pending[K, V], tracing bool, th *traceHeader) {
	if pd.rec.Topic == "" {
		pd.rec.Topic = p.topic
	}
	if pd.rec.Topic == "" {
		if pd.done != nil {
			d := Delivery[K, V]{Partition: -1, Offset: -1, Err: ErrNoTopic}
			p.fill(&d, pd)
			pd.done(d)
		}
		return
	}
	if tracing {
		var recording bool
		if ctx, recording = p.tel.startSend(ctx, &pd.rec, th); recording {
			if pd.more == nil {
				pd.more = new(pendingMore[K, V])
			}
			pd.more.ctx = ctx
		}
	}
	pd.rec.Context = pd
	p.cl.Produce(ctx, &pd.rec, p.promise)
}

// finish is the promise of every record: it ends the span, counts, and
// reports the delivery.
func (p *Producer[K, V]) finish(r *kgo.Record, err error) {
	pd := r.Context.(*pending[K, V])
	if sctx := pd.ctx(); sctx != nil {
		endSend(sctx, p.tel.clientID, r, err)
	}
	if err != nil {
		p.tel.countError(context.Background(), r.Topic, "send")
	}
	if p.tel.counting {
		p.tel.countSent(r.Topic, err)
	}
	if pd.done != nil {
		var d Delivery[K, V]
		p.fill(&d, pd)
		d.Partition, d.Offset, d.Timestamp, d.Err = r.Partition, r.Offset, r.Timestamp, err
		pd.done(d)
	}
}

// wireDecoder is a codec that rebuilds a value from its encoding without
// decoding (Bytes, String).
type wireDecoder[T any] interface{ fromWire([]byte) T }

// oneEncoder is a codec that encodes a single item without a batch.
type oneEncoder[T any] interface{ encodeOne(T) ([]byte, error) }

// encodeBatchOfOne encodes v as c's batch of one, for codecs that are
// no oneEncoder.
func encodeBatchOfOne[T any](ctx context.Context, c Codec[T], v T) ([]byte, error) {
	out, err := c.Encode(ctx, []T{v})
	if err != nil {
		if re := itemError(err, 0); re != nil {
			return nil, re
		}
		return nil, err
	}
	return out[0], nil
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
