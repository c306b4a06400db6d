// Package natsevents publishes a broker's offset events to NATS, in the
// subjects and payloads of github.com/runnel-io/runnel/sdk/events, for
// Runnel's lag monitor (or any other subscriber):
//
//   - PREFIX.CLUSTER.offsets.log_end: every Interval, the high watermark of
//     each partition this broker leads (internal topics left out), at most
//     1,000 partitions per message;
//   - PREFIX.CLUSTER.offsets.commit: every OffsetCommit the group
//     coordinator stored, with "order" the offset of its first record in
//     __consumer_offsets;
//   - PREFIX.CLUSTER.groups.members: every group metadata record the
//     coordinator stored (a new empty generation, a generation's
//     assignment), with each member's consumer-protocol assignment decoded.
//
// The Publisher is the coordinator's group.Observer. Events go through a
// bounded queue to one sending goroutine, so the produce and commit paths
// never wait for NATS: when the queue is full (NATS slow, or down long
// enough to fill nats.go's reconnect buffer too) events are dropped and
// counted (runnel.broker.events.dropped). nats.go reconnects forever;
// while it does, it keeps up to 1 MiB of events and sends them once back.
// A lost event costs little: log ends come again on the next interval, and
// a subscriber's window only misses one commit.
//
// Commits and memberships carry the W3C trace context of the request that
// caused them in NATS headers, under a "send SUBJECT" producer span.
package natsevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/runnel-io/runnel/sdk/events"
	"github.com/runnel-io/runnel/services/broker/group"
)

// Defaults of Config.
const (
	DefaultCluster  = "local"
	DefaultInterval = 5 * time.Second
	DefaultBuffer   = 4096
)

const (
	instrumentation = "github.com/runnel-io/runnel/services/broker/natsevents"
	// maxPartitions bounds a log_end message (about 100 bytes a partition,
	// far below NATS's default 1 MiB max_payload).
	maxPartitions = 1000
	// reconnectBuffer is what nats.go keeps while it reconnects.
	reconnectBuffer = 1 << 20
	// dropLogEvery spaces the warnings about dropped events.
	dropLogEvery = 10 * time.Second
)

// ErrConfig marks settings the publisher cannot run with.
var ErrConfig = errors.New("natsevents: invalid configuration")

// Config is what the publisher is started with; the broker's --nats-*
// flags and --cluster-name fill it.
type Config struct {
	// URL is the NATS server, or a comma-separated list; empty turns
	// publishing off.
	URL string
	// Prefix is the subjects' first token(s); default events.DefaultPrefix.
	Prefix string
	// Cluster is the subjects' CLUSTER token, the name lagmon knows the
	// cluster by; default DefaultCluster.
	Cluster string
	// Interval is how often log-end offsets are published; default
	// DefaultInterval.
	Interval time.Duration
	// Buffer is how many events may wait for the sender; default
	// DefaultBuffer.
	Buffer int
}

// Check fills the defaults and checks the settings; errors name the flag.
func (c *Config) Check() error {
	if c.Prefix == "" {
		c.Prefix = events.DefaultPrefix
	}
	if c.Cluster == "" {
		c.Cluster = DefaultCluster
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Buffer == 0 {
		c.Buffer = DefaultBuffer
	}
	for _, tok := range strings.Split(c.Prefix, ".") {
		if !validToken(tok) {
			return fmt.Errorf("%w: --nats-subject-prefix %q: use NATS subject tokens (letters, digits, - and _) separated by dots", ErrConfig, c.Prefix)
		}
	}
	if !validToken(c.Cluster) {
		return fmt.Errorf("%w: --cluster-name %q: use one NATS subject token (letters, digits, - and _), the name lagmon knows the cluster by", ErrConfig, c.Cluster)
	}
	if c.Interval < 0 {
		return fmt.Errorf("%w: --nats-interval %s: use a positive duration such as 5s", ErrConfig, c.Interval)
	}
	if c.Buffer < 0 {
		return fmt.Errorf("%w: buffer %d: use a positive number of events", ErrConfig, c.Buffer)
	}
	return nil
}

func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}

// Params are New's inputs; all but Config and LogEnds may be nil.
type Params struct {
	Config Config
	// LogEnds lists the partitions this broker leads, with their high
	// watermarks; it is called every Interval from the publisher's own
	// goroutine.
	LogEnds        func() []events.LogEndPartition
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Now is the clock of the log_end timestamps; default time.Now.
	Now func() time.Time
}

// kind is an event kind, also the "event" attribute of the metrics.
type kind int

const (
	kindLogEnd kind = iota
	kindCommit
	kindMembers
	kinds
)

var kindNames = [kinds]string{"log_end", "commit", "members"}

// outgoing is one queued event.
type outgoing struct {
	kind   kind
	parent trace.SpanContext
	value  any
}

// Publisher publishes one broker's events. It implements group.Observer.
type Publisher struct {
	cfg      Config
	log      *slog.Logger
	logEnds  func() []events.LogEndPartition
	now      func() time.Time
	subjects [kinds]string
	queue    chan outgoing

	tracer    trace.Tracer
	published metric.Int64Counter
	dropped   metric.Int64Counter
	queued    metric.Int64ObservableGauge
	reg       metric.Registration
	attrs     [kinds]metric.MeasurementOption
	dropAttrs [kinds][2]metric.MeasurementOption

	nc        *nats.Conn
	drops     atomic.Int64 // since start, for Dropped
	unlogged  atomic.Int64 // drops not yet warned about
	lastWarn  atomic.Int64 // Unix ns of the last drop warning
	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup
	startOnce sync.Once
}

var _ group.Observer = (*Publisher)(nil)

// Drop reasons, the "reason" attribute of runnel.broker.events.dropped.
const (
	reasonQueueFull = 0 // the sender is behind: NATS is slow or down
	reasonNATS      = 1 // nats.go refused it (reconnect buffer full, ...)
)

// New checks the configuration and prepares a publisher; Start connects.
func New(p Params) (*Publisher, error) {
	cfg := p.Config
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("%w: --nats-url is empty", ErrConfig)
	}
	if p.LogEnds == nil {
		return nil, fmt.Errorf("%w: no LogEnds", ErrConfig)
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	tp, mp := p.TracerProvider, p.MeterProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	pub := &Publisher{cfg: cfg, log: p.Logger.With("component", "natsevents"), logEnds: p.LogEnds, now: p.Now,
		queue: make(chan outgoing, cfg.Buffer), tracer: tp.Tracer(instrumentation), stop: make(chan struct{})}
	pub.subjects = [kinds]string{
		events.LogEndSubject(cfg.Prefix, cfg.Cluster),
		events.CommitSubject(cfg.Prefix, cfg.Cluster),
		events.MembersSubject(cfg.Prefix, cfg.Cluster),
	}
	m := mp.Meter(instrumentation)
	var err error
	if pub.published, err = m.Int64Counter("runnel.broker.events.published", metric.WithUnit("{message}"),
		metric.WithDescription("offset event messages handed to NATS, by event (log_end, commit, members)")); err != nil {
		return nil, fmt.Errorf("natsevents: metrics: %w", err)
	}
	if pub.dropped, err = m.Int64Counter("runnel.broker.events.dropped", metric.WithUnit("{message}"),
		metric.WithDescription("offset event messages dropped because NATS was slow or down, by event and reason (queue_full, nats)")); err != nil {
		return nil, fmt.Errorf("natsevents: metrics: %w", err)
	}
	if pub.queued, err = m.Int64ObservableGauge("runnel.broker.events.queued", metric.WithUnit("{message}"),
		metric.WithDescription("offset event messages waiting for the NATS sender")); err != nil {
		return nil, fmt.Errorf("natsevents: metrics: %w", err)
	}
	if pub.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(pub.queued, int64(len(pub.queue)))
		return nil
	}, pub.queued); err != nil {
		return nil, fmt.Errorf("natsevents: metrics: %w", err)
	}
	for k := range kinds {
		ev := attribute.String("event", kindNames[k])
		pub.attrs[k] = metric.WithAttributeSet(attribute.NewSet(ev))
		pub.dropAttrs[k][reasonQueueFull] = metric.WithAttributeSet(attribute.NewSet(ev, attribute.String("reason", "queue_full")))
		pub.dropAttrs[k][reasonNATS] = metric.WithAttributeSet(attribute.NewSet(ev, attribute.String("reason", "nats")))
	}
	return pub, nil
}

// Subjects are the three subjects published to: log_end, commit, members.
func (p *Publisher) Subjects() [3]string { return p.subjects }

// Start connects to NATS and starts publishing. A server that is down is
// no error: nats.go keeps trying, and events wait in its reconnect
// buffer meanwhile. Only a malformed URL fails.
func (p *Publisher) Start(context.Context) error {
	nc, err := nats.Connect(p.cfg.URL,
		nats.Name("runnel-broker"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(reconnectBuffer),
		nats.FlusherTimeout(5*time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) {
			p.log.Info("publishing offset events to NATS", "url", nc.ConnectedUrlRedacted(), "subjects", p.cfg.Prefix+"."+p.cfg.Cluster+".>")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			p.log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				p.log.Warn("lost the NATS connection; offset events wait in a 1 MiB buffer, then are dropped, until it is back", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			p.log.Warn("NATS error", "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("--nats-url %q: %w", p.cfg.URL, err)
	}
	p.nc = nc
	p.startOnce.Do(func() {
		p.wg.Add(2)
		go p.send()
		go p.tick()
	})
	return nil
}

// Close stops publishing: what is queued is sent, then flushed for up to
// two seconds (when connected), and the connection is closed.
func (p *Publisher) Close() error {
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
	if p.reg != nil {
		_ = p.reg.Unregister()
	}
	if p.nc == nil {
		return nil
	}
	var err error
	if p.nc.IsConnected() {
		if ferr := p.nc.FlushTimeout(2 * time.Second); ferr != nil {
			err = fmt.Errorf("natsevents: flushing at close: %w", ferr)
		}
	}
	p.nc.Close()
	return err
}

// Dropped is how many event messages were dropped since New.
func (p *Publisher) Dropped() int64 { return p.drops.Load() }

// OffsetsCommitted queues an offsets.commit event (group.Observer).
func (p *Publisher) OffsetsCommitted(ctx context.Context, c group.OffsetCommit) {
	order := c.Order
	v := events.Commit{Group: c.Group, Timestamp: c.Timestamp, Order: &order, Offsets: make([]events.CommitPartition, len(c.Offsets))}
	for i, o := range c.Offsets {
		v.Offsets[i] = events.CommitPartition{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset}
	}
	p.enqueue(outgoing{kind: kindCommit, parent: trace.SpanContextFromContext(ctx), value: v})
}

// GroupStored queues a groups.members event (group.Observer).
func (p *Publisher) GroupStored(ctx context.Context, id string, gv *group.GroupValue) {
	v := events.Members{Group: id, Generation: gv.Generation, Members: make([]events.Member, 0, len(gv.Members))}
	for _, m := range gv.Members {
		em := events.Member{ClientID: m.ClientID, ClientHost: m.ClientHost}
		if gv.ProtocolType == "consumer" && len(m.Assignment) > 0 {
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(m.Assignment); err == nil {
				em.Assignments = make(map[string][]int32, len(a.Topics))
				for _, t := range a.Topics {
					em.Assignments[t.Topic] = append(em.Assignments[t.Topic], t.Partitions...)
				}
			} else {
				p.log.Debug("member assignment is not the consumer protocol's; published without it", "group", id, "member", m.MemberID, "err", err)
			}
		}
		v.Members = append(v.Members, em)
	}
	p.enqueue(outgoing{kind: kindMembers, parent: trace.SpanContextFromContext(ctx), value: v})
}

// enqueue hands an event to the sender without ever waiting.
func (p *Publisher) enqueue(o outgoing) {
	select {
	case p.queue <- o:
	default:
		p.drop(o.kind, reasonQueueFull, nil)
	}
}

func (p *Publisher) drop(k kind, reason int, err error) {
	p.dropped.Add(context.Background(), 1, p.dropAttrs[k][reason])
	p.drops.Add(1)
	n := p.unlogged.Add(1)
	now := time.Now().UnixNano()
	last := p.lastWarn.Load()
	if now-last < int64(dropLogEvery) || !p.lastWarn.CompareAndSwap(last, now) {
		return
	}
	p.unlogged.Add(-n)
	args := []any{"dropped", n, "event", kindNames[k], "queue", cap(p.queue)}
	if err != nil {
		args = append(args, "err", err)
	}
	p.log.Warn("dropping offset events: NATS is slow or unreachable (see runnel.broker.events.dropped); check --nats-url and the NATS server", args...)
}

// tick queues the log-end offsets every Interval.
func (p *Publisher) tick() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			parts := p.logEnds()
			ts := p.now().UnixMilli()
			for len(parts) > 0 {
				n := min(len(parts), maxPartitions)
				p.enqueue(outgoing{kind: kindLogEnd, value: events.LogEnd{Timestamp: ts, Partitions: parts[:n:n]}})
				parts = parts[n:]
			}
		}
	}
}

// send publishes queued events in order until Close, then what is left.
func (p *Publisher) send() {
	defer p.wg.Done()
	for {
		select {
		case o := <-p.queue:
			p.publish(o)
		case <-p.stop:
			for {
				select {
				case o := <-p.queue:
					p.publish(o)
				default:
					return
				}
			}
		}
	}
}

func (p *Publisher) publish(o outgoing) {
	subject := p.subjects[o.kind]
	data, err := json.Marshal(o.value)
	if err != nil { // the payload types always encode
		p.drop(o.kind, reasonNATS, err)
		return
	}
	msg := &nats.Msg{Subject: subject, Data: data}
	var span trace.Span
	if o.parent.IsValid() {
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), o.parent)
		ctx, span = p.tracer.Start(ctx, "send "+subject, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", subject),
			attribute.Int("messaging.message.body.size", len(data)),
		))
		if span.SpanContext().IsValid() && p.nc.HeadersSupported() {
			msg.Header = nats.Header{}
			propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(http.Header(msg.Header)))
		}
	}
	err = p.nc.PublishMsg(msg)
	if span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if err != nil {
		p.drop(o.kind, reasonNATS, err)
		return
	}
	p.published.Add(context.Background(), 1, p.attrs[o.kind])
}
