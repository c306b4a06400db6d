package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/api"
	"github.com/runnel-io/runnel/services/broker/config"
	"github.com/runnel-io/runnel/services/broker/controller"
	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/metadata"
	"github.com/runnel-io/runnel/services/broker/natsevents"
	"github.com/runnel-io/runnel/services/broker/replica"
	"github.com/runnel-io/runnel/services/broker/wire"
)

// Broker is one running broker.
type Broker struct {
	cfg      Config
	settings *config.Broker
	log      *slog.Logger
	backend  storage.Backend
	store    *metadata.Store
	replicas *replica.Manager
	ctrl     *controller.Controller
	groups   *group.Coordinator
	events   *natsevents.Publisher
	server   *wire.Server
	metrics  *http.Server
	metricsH http.Handler
	tp       trace.TracerProvider
	mp       metric.MeterProvider
}

// Params are New's inputs; everything but Config may be nil.
type Params struct {
	Config         Config
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Metrics serves /metrics when Config.MetricsListen is set.
	Metrics http.Handler
}

// New checks the configuration and prepares a broker; Start runs it.
func New(p Params) (*Broker, error) {
	cfg := p.Config
	if cfg.ID < 0 || cfg.ID > 1<<31-1 {
		return nil, fmt.Errorf("--id %d: use a non-negative 32-bit number", cfg.ID)
	}
	kv, err := cfg.ParseSettings()
	if err != nil {
		return nil, err
	}
	settings, err := config.NewBroker(kv)
	if err != nil {
		return nil, err
	}
	settings.Set("broker.id", strconv.Itoa(cfg.ID))
	settings.Set("log.dirs", cfg.DataDir)
	settings.Set("zookeeper.connect", cfg.Coordinator)
	settings.Set("listeners", "PLAINTEXT://"+cfg.Listen)
	if cfg.Rack != "" {
		settings.Set("broker.rack", cfg.Rack)
	}
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Broker{cfg: cfg, settings: settings, log: log, metricsH: p.Metrics,
		tp: p.TracerProvider, mp: p.MeterProvider}
	router, err := newStorageRouter(cfg, b.topicBackend)
	if err != nil {
		return nil, err
	}
	b.backend = router
	settings.Set(config.StorageBackend, router.Name())
	if cfg.NATSURL != "" {
		ec := cfg.eventsConfig()
		if err := ec.Check(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Start binds the listener, registers in the coordinator, opens the
// partitions this broker hosts and then serves clients.
func (b *Broker) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			b.Stop(context.Background())
		}
	}()
	if err := os.MkdirAll(b.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	b.replicas = replica.NewManager(replica.Params{BrokerID: int32(b.cfg.ID), DataDir: b.cfg.DataDir,
		Backend: b.backend, Broker: b.settings, Logger: b.log, MeterProvider: b.mp,
		Peers: b.peerAddr, ISR: isrWriter{b}})
	var rack *string
	if b.cfg.Rack != "" {
		rack = &b.cfg.Rack
	}
	// Bind first: the port is known (and a busy one fails the start)
	// before the broker registers it, but clients are served only once the
	// metadata is loaded.
	ln, err := net.Listen("tcp", b.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	host, port, err := b.cfg.advertised(ln.Addr())
	if err != nil {
		ln.Close()
		return err
	}
	b.store, err = metadata.New(metadata.Config{
		Connect:        b.cfg.Coordinator,
		SessionTimeout: b.settings.SessionTimeout,
		Self:           metadata.Broker{ID: int32(b.cfg.ID), Host: host, Port: port, Rack: rack},
		Logger:         b.log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	observer, err := b.startEvents(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	s := b.settings
	b.ctrl = controller.New(controller.Params{Store: b.store, Settings: s, Logger: b.log, TracerProvider: b.tp, MeterProvider: b.mp})
	b.groups = group.New(group.Params{
		Config: group.Config{Partitions: s.OffsetsTopicPartitions, MinSessionTimeout: s.GroupMinSessionTimeout,
			MaxSessionTimeout: s.GroupMaxSessionTimeout, InitialRebalanceDelay: s.GroupInitialRebalanceDelay,
			MaxGroupSize: s.GroupMaxSize, OffsetsRetention: s.OffsetsRetention,
			RetentionCheckInterval: s.OffsetsRetentionCheckInterval, MaxMetadataBytes: s.OffsetMetadataMaxBytes},
		Store:  &group.ReplicaStore{Replicas: b.replicas, CommitTimeout: s.OffsetsCommitTimeout},
		Logger: b.log,
		PartitionExists: func(topic string, p int32) bool {
			t, ok := b.store.Topic(topic)
			return ok && !t.Deleting && p >= 0 && int(p) < len(t.Partitions)
		},
		Observer: observer,
	})
	handlers := api.New(api.Params{BrokerID: int32(b.cfg.ID), Cluster: b.store, Replicas: b.replicas, Controller: b.ctrl,
		Groups: b.groups, Broker: b.settings, Logger: b.log})
	b.server, err = wire.New(wire.Params{
		Config:         wire.Config{Listener: ln, MaxRequestSize: b.settings.MaxRequestSize},
		Logger:         b.log,
		TracerProvider: b.tp,
		MeterProvider:  b.mp,
		Handler:        handlers,
	})
	if err != nil {
		ln.Close()
		return err
	}
	if err := b.server.Listen(); err != nil {
		return err
	}
	if err := b.store.Start(ctx); err != nil {
		return err
	}
	b.store.OnChange(b.sync)
	if err := b.replicas.Sync(ctx, b.store.Topics()); err != nil {
		return err
	}
	b.syncGroups()
	b.replicas.Start()
	b.ctrl.Start()
	b.groups.Start()
	b.server.Serve()
	if b.cfg.MetricsListen != "" && b.metricsH != nil {
		ln, err := net.Listen("tcp", b.cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", b.metricsH)
		b.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = b.metrics.Serve(ln) }()
	}
	b.log.Info("broker started", "id", b.cfg.ID, "listen", b.server.Addr().String(), "advertised", net.JoinHostPort(host, strconv.Itoa(int(port))),
		"coordinator", b.cfg.Coordinator, "cluster_id", b.store.ClusterID(), "controller", b.store.ControllerID(), "storage", b.backend.Name())
	return nil
}

// topicBackend is a topic's runnel.storage.backend setting, "" for the
// broker's default.
func (b *Broker) topicBackend(topic string) string {
	if b.store == nil {
		return ""
	}
	t, ok := b.store.Topic(topic)
	if !ok {
		return ""
	}
	return t.Config[config.StorageBackend]
}

// sync applies a metadata change to the hosted partitions and the group
// coordinator.
func (b *Broker) sync() {
	if err := b.replicas.Sync(context.Background(), b.store.Topics()); err != nil {
		b.log.Warn("applying metadata change", "err", err)
	}
	b.syncGroups()
}

// syncGroups hands the coordinator the partitions of __consumer_offsets
// this broker leads and hosts: it coordinates their groups.
func (b *Broker) syncGroups() {
	var led []int32
	if t, ok := b.store.Topic(group.Topic); ok && !t.Deleting {
		b.groups.SetPartitions(int32(len(t.Partitions)))
		for _, p := range t.Partitions {
			if p.Leader == int32(b.cfg.ID) && b.replicas.Partition(group.Topic, p.ID) != nil {
				led = append(led, p.ID)
			}
		}
	}
	b.groups.Sync(led)
}

// Addr is the address clients connect to (after Start).
func (b *Broker) Addr() string { return b.server.Addr().String() }

// peerAddr is another broker's advertised address.
func (b *Broker) peerAddr(id int32) (string, bool) {
	if b.store == nil {
		return "", false
	}
	for _, br := range b.store.Brokers() {
		if br.ID == id {
			return net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))), true
		}
	}
	return "", false
}

// isrWriter lets the replicas write ISR changes through the store, which
// exists only once the broker starts.
type isrWriter struct{ b *Broker }

func (w isrWriter) UpdateISR(ctx context.Context, topic string, partition, leader, leaderEpoch int32, isr []int32, version int32) (int32, error) {
	return w.b.store.UpdateISR(ctx, topic, partition, leader, leaderEpoch, isr, version)
}

// Stop shuts the broker down: with controlled.shutdown.enable it first
// hands its leaderships over (ControlledShutdown), then stops serving,
// deregisters and closes the logs cleanly.
func (b *Broker) Stop(ctx context.Context) error {
	if b.settings.ControlledShutdown && b.store != nil && b.server != nil && b.replicas != nil {
		b.controlledShutdown(ctx)
	}
	var errs []error
	if b.metrics != nil {
		errs = append(errs, b.metrics.Close())
	}
	if b.server != nil {
		errs = append(errs, b.server.Close())
	}
	if b.groups != nil {
		b.groups.Close()
	}
	if b.ctrl != nil {
		b.ctrl.Close()
	}
	if b.events != nil {
		errs = append(errs, b.events.Close())
	}
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	if b.replicas != nil {
		errs = append(errs, b.replicas.Close())
	}
	errs = append(errs, b.backend.Close())
	err := errors.Join(errs...)
	if err != nil {
		b.log.Warn("stopping broker", "err", err)
	}
	return err
}
