package sdk

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Opt configures any client.
type Opt interface{ apply(*cfg) }

// ProducerOpt configures a Producer (and includes every Opt).
type ProducerOpt interface {
	Opt
	producerOpt()
}

// ConsumerOpt configures a Consumer (and includes every Opt).
type ConsumerOpt interface {
	Opt
	consumerOpt()
}

// ClientOpt is an option every role takes: it is an Opt, a ProducerOpt
// and a ConsumerOpt at once.
type ClientOpt interface {
	ProducerOpt
	ConsumerOpt
}

type opt struct{ fn func(*cfg) }

func (o opt) apply(c *cfg) { o.fn(c) }
func (opt) producerOpt()   {}
func (opt) consumerOpt()   {}

type producerOnly struct{ fn func(*cfg) }

func (o producerOnly) apply(c *cfg) { o.fn(c) }
func (producerOnly) producerOpt()   {}

type consumerOnly struct{ fn func(*cfg) }

func (o consumerOnly) apply(c *cfg) { o.fn(c) }
func (consumerOnly) consumerOpt()   {}

// cfg is every setting; each role reads its own.
type cfg struct {
	brokers    []string
	clientID   string
	tracer     trace.TracerProvider
	meter      metric.MeterProvider
	propagator propagation.TextMapPropagator
	logger     *slog.Logger
	kgoOpts    []kgo.Opt

	// producer
	topic           string
	acks            kgo.Acks
	acksSet         bool
	noIdempotence   bool
	deliveryTimeout time.Duration
	linger          time.Duration
	compression     []kgo.CompressionCodec
	manualPartition bool
	retries         int
	retriesSet      bool

	// consumer
	group       string
	topics      []string
	partitions  map[string]map[int32]kgo.Offset
	start       kgo.Offset
	startSet    bool
	manual      bool
	onAssigned  func(context.Context, map[string][]int32)
	onRevoked   func(context.Context, map[string][]int32)
	onLost      func(context.Context, map[string][]int32)
	maxPollRecs int
	commitEvery time.Duration
}

func newCfg[O Opt](opts []O) *cfg {
	c := &cfg{
		brokers:    []string{"127.0.0.1:9092"},
		clientID:   "runnel-sdk",
		propagator: propagation.TraceContext{},
		logger:     slog.Default(),
	}
	for _, o := range opts {
		o.apply(c)
	}
	if c.tracer == nil {
		c.tracer = otel.GetTracerProvider()
	}
	if c.meter == nil {
		c.meter = otel.GetMeterProvider()
	}
	return c
}

// Brokers sets the seed brokers (default 127.0.0.1:9092, where `runnel
// dev` listens).
func Brokers(addrs ...string) ClientOpt { return opt{func(c *cfg) { c.brokers = addrs }} }

// ClientID names the client to the cluster (default runnel-sdk).
func ClientID(id string) ClientOpt { return opt{func(c *cfg) { c.clientID = id }} }

// TracerProvider sets where spans go (default: the global provider).
func TracerProvider(tp trace.TracerProvider) ClientOpt { return opt{func(c *cfg) { c.tracer = tp }} }

// MeterProvider sets where metrics go (default: the global provider).
func MeterProvider(mp metric.MeterProvider) ClientOpt { return opt{func(c *cfg) { c.meter = mp }} }

// Propagator sets how trace context is written to and read from record
// headers (default: W3C trace context, the traceparent header).
func Propagator(p propagation.TextMapPropagator) ClientOpt {
	return opt{func(c *cfg) { c.propagator = p }}
}

// Logger sets where warnings go (default slog.Default()).
func Logger(l *slog.Logger) ClientOpt { return opt{func(c *cfg) { c.logger = l }} }

// KgoOpts passes options straight to the underlying kgo client, for what
// this package does not wrap. They are applied last.
func KgoOpts(opts ...kgo.Opt) ClientOpt {
	return opt{func(c *cfg) { c.kgoOpts = append(c.kgoOpts, opts...) }}
}

// DefaultTopic is the topic of messages that name none.
func DefaultTopic(t string) ProducerOpt { return producerOnly{func(c *cfg) { c.topic = t }} }

// RequiredAcks sets the acknowledgements a write waits for (default all
// in-sync replicas). Anything but kgo.AllISRAcks turns idempotence off,
// since the broker can only deduplicate writes every replica saw.
func RequiredAcks(a kgo.Acks) ProducerOpt {
	return producerOnly{func(c *cfg) { c.acks, c.acksSet = a, true }}
}

// DisableIdempotence turns off idempotent writes (on by default).
func DisableIdempotence() ProducerOpt { return producerOnly{func(c *cfg) { c.noIdempotence = true }} }

// DeliveryTimeout bounds how long a record is retried before its delivery
// fails (default: until Close's or Flush's context ends).
func DeliveryTimeout(d time.Duration) ProducerOpt {
	return producerOnly{func(c *cfg) { c.deliveryTimeout = d }}
}

// Retries bounds how many times a failed write of a record is retried
// (default: until DeliveryTimeout, or forever without one). Retries are
// safe with idempotence: the broker drops duplicates.
func Retries(n int) ProducerOpt {
	return producerOnly{func(c *cfg) { c.retries, c.retriesSet = n, true }}
}

// Linger waits up to d for more records before sending a batch (default
// 0: send as soon as possible; batches still form under load).
func Linger(d time.Duration) ProducerOpt { return producerOnly{func(c *cfg) { c.linger = d }} }

// Compression sets the batch compression, in order of preference.
func Compression(codecs ...kgo.CompressionCodec) ProducerOpt {
	return producerOnly{func(c *cfg) { c.compression = codecs }}
}

// ManualPartitions sends each message to its Partition field instead of
// choosing by key (murmur2, as Kafka's Java client does).
func ManualPartitions() ProducerOpt { return producerOnly{func(c *cfg) { c.manualPartition = true }} }

// Topics subscribes the consumer to topics.
func Topics(topics ...string) ConsumerOpt {
	return consumerOnly{func(c *cfg) { c.topics = append(c.topics, topics...) }}
}

// Partitions reads exactly these partitions from these offsets, without a
// group.
func Partitions(p map[string]map[int32]kgo.Offset) ConsumerOpt {
	return consumerOnly{func(c *cfg) { c.partitions = p }}
}

// Group joins the consumer group g: consumers of one group split the
// partitions among themselves.
func Group(g string) ConsumerOpt { return consumerOnly{func(c *cfg) { c.group = g }} }

// FromBeginning starts partitions with no committed offset at their
// earliest record (default: the latest, only new records).
func FromBeginning() ConsumerOpt {
	return consumerOnly{func(c *cfg) { c.start, c.startSet = kgo.NewOffset().AtStart(), true }}
}

// StartAt starts partitions with no committed offset at o.
func StartAt(o kgo.Offset) ConsumerOpt {
	return consumerOnly{func(c *cfg) { c.start, c.startSet = o, true }}
}

// ManualCommit turns automatic commits off: offsets are committed only by
// Commit and CommitPolled.
func ManualCommit() ConsumerOpt { return consumerOnly{func(c *cfg) { c.manual = true }} }

// AutoCommitInterval sets how often automatic commits happen (default 5s,
// at least 100ms);
// they also happen on rebalance and Close.
func AutoCommitInterval(d time.Duration) ConsumerOpt {
	return consumerOnly{func(c *cfg) { c.commitEvery = d }}
}

// OnAssigned runs when the group gives this consumer partitions (with
// the cooperative balancer, kgo's default, only the partitions added).
// Like OnRevoked and OnLost, it does not run for rebalances that move
// none of this consumer's partitions.
func OnAssigned(fn func(ctx context.Context, assigned map[string][]int32)) ConsumerOpt {
	return consumerOnly{func(c *cfg) { c.onAssigned = fn }}
}

// OnRevoked runs when partitions are taken away in a rebalance, before
// another consumer gets them: the place to commit work in progress with
// ManualCommit.
func OnRevoked(fn func(ctx context.Context, revoked map[string][]int32)) ConsumerOpt {
	return consumerOnly{func(c *cfg) { c.onRevoked = fn }}
}

// OnLost runs when partitions are lost without a clean revoke (the
// consumer fell out of the group); committing them is no longer possible.
func OnLost(fn func(ctx context.Context, lost map[string][]int32)) ConsumerOpt {
	return consumerOnly{func(c *cfg) { c.onLost = fn }}
}

// MaxPollRecords bounds the records one Poll returns (default: what one
// fetch brought).
func MaxPollRecords(n int) ConsumerOpt { return consumerOnly{func(c *cfg) { c.maxPollRecs = n }} }
