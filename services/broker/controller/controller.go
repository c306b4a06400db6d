// Package controller is the cluster controller of Kafka's ZooKeeper mode:
// one broker at a time, elected through the ephemeral /controller znode and
// fenced by /controller_epoch (package metadata), decides the leader and
// ISR of every partition and carries out reassignments, preferred-leader
// elections and controlled shutdowns.
//
// The controller is level-triggered: every change of the metadata it
// watches (brokers registering and vanishing, topics, partition states,
// assignments) wakes one reconciliation pass that compares what is with
// what should be (Plan) and writes the difference, each topic in one
// multi fenced by the controller epoch and conditional on the state
// versions it read. A write that loses a race is re-read and planned
// again; a controller that lost its office cannot write at all.
//
// The brokers learn the outcome from their watches on the partition state
// znodes: no LeaderAndIsr or UpdateMetadata requests are sent. The one
// broker-to-controller request is Kafka's own ControlledShutdown, which a
// broker sends when it stops.
//
// Leaders change their own ISRs (metadata.Store.UpdateISR), as Kafka 2.x
// leaders do; the controller removes dead brokers from ISRs at once rather
// than waiting for the leaders' replica.lag.time.max.ms.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tnoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/runnel-io/runnel/services/broker/config"
	"github.com/runnel-io/runnel/services/broker/metadata"
)

// Store is the metadata the controller reads and writes;
// *metadata.Store implements it.
type Store interface {
	IsController() bool
	Brokers() []metadata.Broker
	Topics() []*metadata.Topic
	Topic(name string) (*metadata.Topic, bool)
	WriteAsController(ctx context.Context, changes []metadata.TopicChange) error
	OnChange(f func())
}

// Errors of the controller's requests.
var (
	// ErrNotController means this broker is not the controller
	// (NOT_CONTROLLER, 41).
	ErrNotController = metadata.ErrNotController
	// ErrStaleBrokerEpoch means a controlled shutdown named a broker
	// epoch other than the broker's registration (STALE_BROKER_EPOCH, 77).
	ErrStaleBrokerEpoch = errors.New("controller: stale broker epoch")
	// ErrUnknownBroker means a request named a broker that is not
	// registered.
	ErrUnknownBroker = errors.New("controller: broker not registered")
)

// Controller runs the controller's duties on every broker; it acts only
// while its broker holds the office.
type Controller struct {
	store    Store
	settings *config.Broker
	log      *slog.Logger
	tracer   trace.Tracer
	passes   metric.Int64Counter
	changes  metric.Int64Counter

	kick chan struct{}

	// mu serializes passes and the requests that plan (shutdowns,
	// elections, reassignments) and guards what follows.
	mu            sync.Mutex
	wasController bool
	// known holds each registered broker's epoch (the czxid of its
	// registration) as of the last pass: a different epoch now is a
	// broker that restarted in between.
	known map[int32]int64
	// shuttingDown holds brokers in a controlled shutdown, with the
	// registration epoch they asked under.
	shuttingDown map[int32]int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Params are New's inputs; Logger and the providers may be nil.
type Params struct {
	Store          Store
	Settings       *config.Broker
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// New returns a controller; Start runs it.
func New(p Params) *Controller {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.TracerProvider == nil {
		p.TracerProvider = tnoop.NewTracerProvider()
	}
	if p.MeterProvider == nil {
		p.MeterProvider = noop.NewMeterProvider()
	}
	meter := p.MeterProvider.Meter("github.com/runnel-io/runnel/services/broker/controller")
	passes, _ := meter.Int64Counter("runnel.controller.passes", metric.WithDescription("reconciliation passes run as controller"))
	changes, _ := meter.Int64Counter("runnel.controller.state_changes", metric.WithDescription("partition states written by the controller"))
	ctx, cancel := context.WithCancel(context.Background())
	return &Controller{store: p.Store, settings: p.Settings, log: p.Logger.With("component", "controller"),
		tracer: p.TracerProvider.Tracer("github.com/runnel-io/runnel/services/broker/controller"),
		passes: passes, changes: changes, kick: make(chan struct{}, 1),
		known: map[int32]int64{}, shuttingDown: map[int32]int64{}, ctx: ctx, cancel: cancel}
}

// Start subscribes to metadata changes and runs the reconciliation loop
// and, with auto.leader.rebalance.enable, the leader balancing.
func (c *Controller) Start() {
	c.store.OnChange(c.Kick)
	c.wg.Add(1)
	go c.loop()
	c.Kick()
}

// Close stops the loops.
func (c *Controller) Close() {
	c.cancel()
	c.wg.Wait()
}

// Kick asks for a reconciliation pass; it never blocks.
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) loop() {
	defer c.wg.Done()
	var balance <-chan time.Time
	if c.settings.AutoLeaderRebalance {
		t := time.NewTicker(c.settings.LeaderImbalanceCheckInterval)
		defer t.Stop()
		balance = t.C
	}
	var retry <-chan time.Time
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		case <-retry:
		case <-balance:
			if err := c.balanceLeaders(c.ctx); err != nil && !errors.Is(err, ErrNotController) && c.ctx.Err() == nil {
				c.log.Warn("leader balancing failed", "err", err)
			}
			continue
		}
		retry = nil
		if err := c.Reconcile(c.ctx); err != nil && c.ctx.Err() == nil {
			if !errors.Is(err, ErrNotController) {
				c.log.Warn("controller pass failed; retrying", "err", err)
			}
			retry = time.After(200 * time.Millisecond)
		}
	}
}

// Reconcile runs one pass: when this broker is the controller, it plans
// every topic and writes the changes.
func (c *Controller) Reconcile(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconcileLocked(ctx)
}

func (c *Controller) reconcileLocked(ctx context.Context) error {
	if !c.store.IsController() {
		c.wasController = false
		return nil
	}
	current := c.registrations()
	if !c.wasController {
		// A new controller knows no history: what is registered is live.
		c.wasController = true
		c.known = current
		c.log.Info("acting as controller", "brokers", len(current))
	}
	v := c.view(current)
	var changes []metadata.TopicChange
	for _, t := range c.store.Topics() {
		if tc := Plan(t, v); tc != nil {
			changes = append(changes, *tc)
		}
	}
	c.passes.Add(ctx, 1)
	if len(changes) == 0 {
		c.known = current
		return nil
	}
	ctx, span := c.tracer.Start(ctx, "controller reconcile", trace.WithAttributes(attribute.Int("runnel.topics", len(changes))))
	defer span.End()
	c.logChanges(changes)
	err := c.store.WriteAsController(ctx, changes)
	if err == nil {
		c.known = current
	}
	n := 0
	for _, tc := range changes {
		n += len(tc.States)
	}
	c.changes.Add(ctx, int64(n))
	if err != nil {
		span.RecordError(err)
		return fmt.Errorf("controller: %w", err)
	}
	c.Kick() // check the result: a completed step may enable the next
	return nil
}

// view builds the planning view: registered brokers not bounced since the
// last pass are live; shutdowns of brokers that left or re-registered are
// forgotten.
func (c *Controller) view(current map[int32]int64) View {
	live := make(map[int32]bool, len(current))
	for id, epoch := range current {
		if old, ok := c.known[id]; !ok || old == epoch {
			live[id] = true
		}
	}
	down := map[int32]bool{}
	for id, epoch := range c.shuttingDown {
		if current[id] != epoch {
			delete(c.shuttingDown, id)
			continue
		}
		down[id] = true
	}
	return View{Live: live, ShuttingDown: down, Unclean: func(t *metadata.Topic) bool {
		return c.settings.Topic(t.Config).UncleanLeaderElection
	}}
}

func (c *Controller) logChanges(changes []metadata.TopicChange) {
	for _, tc := range changes {
		for _, st := range tc.States {
			c.log.Info("partition state", "topic", tc.Topic, "partition", st.Partition, "leader", st.Leader,
				"leader_epoch", st.LeaderEpoch, "isr", st.ISR, "new", st.Version < 0)
		}
		if tc.Assignment != nil {
			c.log.Info("assignment", "topic", tc.Topic, "replicas", tc.Assignment.Replicas)
		}
	}
}

// registrations maps each registered broker to its registration epoch.
func (c *Controller) registrations() map[int32]int64 {
	brokers := c.store.Brokers()
	current := make(map[int32]int64, len(brokers))
	for _, b := range brokers {
		current[b.ID] = b.Epoch
	}
	return current
}

// liveView is the view for a request handled outside a pass.
func (c *Controller) liveView() View { return c.view(c.registrations()) }

// ControlledShutdown moves every leadership of broker away and removes it
// from the ISRs (Kafka's ControlledShutdown request). It returns the
// partitions that broker still leads although another of their replicas is
// alive, because that replica is not in sync yet: the broker retries
// later, giving it time to catch up. A partition whose other replicas are
// all down cannot move by waiting, and is not counted. brokerEpoch -1
// skips the epoch check (requests before v2).
func (c *Controller) ControlledShutdown(ctx context.Context, broker int32, brokerEpoch int64) ([]metadata.Partition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.store.IsController() {
		return nil, ErrNotController
	}
	epoch, registered := c.registrations()[broker]
	if !registered {
		return nil, fmt.Errorf("%w: %d", ErrUnknownBroker, broker)
	}
	if brokerEpoch >= 0 && brokerEpoch != epoch {
		return nil, fmt.Errorf("%w: broker %d asked with epoch %d, registered with %d", ErrStaleBrokerEpoch, broker, brokerEpoch, epoch)
	}
	if _, ok := c.shuttingDown[broker]; !ok {
		c.log.Info("controlled shutdown", "broker", broker)
	}
	c.shuttingDown[broker] = epoch
	if err := c.reconcileLocked(ctx); err != nil {
		return nil, err
	}
	v := c.liveView()
	var remaining []metadata.Partition
	for _, t := range c.store.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == broker && first(p.Replicas, func(r int32) bool { return r != broker && v.eligible(r) }) >= 0 {
				remaining = append(remaining, p)
			}
		}
	}
	return remaining, nil
}
