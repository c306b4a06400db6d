// Package monitor assembles lagmon from its parts: the window store, a
// Kafka-protocol source and/or a NATS source per cluster, the notifiers, the
// dashboard sampler, the metrics collector and the HTTP server. It owns the
// binary's flags and the fx module that main runs; New and Start work
// without fx too (tests and `runnel dev` use them).
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/services/lagmon/config"
	"github.com/runnel-io/runnel/services/lagmon/dashboard"
	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/httpapi"
	"github.com/runnel-io/runnel/services/lagmon/metrics"
	"github.com/runnel-io/runnel/services/lagmon/notify"
	"github.com/runnel-io/runnel/services/lagmon/source"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

// Flags are the binary's flags (each also readable as RUNNEL_<FLAG>).
type Flags struct {
	Listen          string
	ConfigFile      string
	ClusterName     string
	BootstrapServer string
	NATSURL         string
	OffsetRefresh   time.Duration
	OffsetsSource   string
	Intervals       int
}

// Register adds the flags to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Listen, "listen", "127.0.0.1:8000", "HTTP address of the API, /metrics and the dashboard (Burrow's port)")
	fs.StringVar(&f.ConfigFile, "config", "", "TOML configuration file naming clusters, storage, evaluator and notifiers")
	fs.StringVar(&f.ClusterName, "cluster-name", "local", "name of the cluster set by --bootstrap-server/--nats-url")
	fs.StringVar(&f.BootstrapServer, "bootstrap-server", "", "Kafka bootstrap servers of one cluster, host:port[,host:port]")
	fs.StringVar(&f.NATSURL, "nats-url", "", "NATS server carrying the cluster's offset events (nats://host:4222)")
	fs.DurationVar(&f.OffsetRefresh, "offset-refresh", 0, "how often log-end (and polled committed) offsets are read (default 10s)")
	fs.StringVar(&f.OffsetsSource, "offsets-source", "", "where commits come from: auto, topic (__consumer_offsets), poll, none (default auto, none with --nats-url)")
	fs.IntVar(&f.Intervals, "intervals", 0, "offsets kept per partition window (default 10)")
}

// Load builds the configuration: the file if --config is set, plus (or
// only) the cluster given by --bootstrap-server and --nats-url.
func (f *Flags) Load() (*config.Config, error) {
	cfg := &config.Config{}
	if f.ConfigFile != "" {
		c, err := config.Load(f.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		cfg = c
	}
	if f.BootstrapServer != "" || f.NATSURL != "" {
		if cfg.Clusters == nil {
			cfg.Clusters = map[string]*config.Cluster{}
		}
		c := &config.Cluster{NATSURL: f.NATSURL, OffsetsSource: f.OffsetsSource}
		for _, s := range strings.Split(f.BootstrapServer, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.Servers = append(c.Servers, s)
			}
		}
		c.OffsetRefresh.Duration = f.OffsetRefresh
		cfg.Clusters[f.ClusterName] = c
	} else if f.ConfigFile == "" {
		return nil, fmt.Errorf("%w: give --config FILE or --bootstrap-server (and/or --nats-url)", config.ErrInvalid)
	}
	if f.Intervals > 0 {
		cfg.Storage.Intervals = f.Intervals
	}
	if err := cfg.Finish(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Options are what New needs beyond the configuration.
type Options struct {
	// Listen is the HTTP address ("127.0.0.1:0" picks a port).
	Listen string
	Logger *slog.Logger
	// Registry receives lagmon's Prometheus collector; /metrics serves it.
	// Nil: a registry of lagmon's own.
	Registry *prometheus.Registry
	// MetricsHandler, when set, serves /metrics instead of Registry's
	// default handler (the service's telemetry handler).
	MetricsHandler http.Handler
	// Now is the clock; default time.Now.
	Now func() time.Time
	// TracerProvider and MeterProvider instrument the HTTP server (a span
	// and the HTTP server metrics per API or dashboard request; scrapes
	// of /metrics and the health endpoints get none). Nil: the globals.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Monitor is a running (or ready to run) lagmon.
type Monitor struct {
	Config  *config.Config
	Store   *window.Store
	Sampler *dashboard.Sampler
	API     *httpapi.API
	Notify  *notify.Manager
	Kafka   map[string]*source.Kafka
	NATS    map[string]*source.NATS

	opts   Options
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New assembles lagmon from a checked configuration.
func New(cfg *config.Config, o Options) (*Monitor, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	allow, err := cfg.Storage.Allow()
	if err != nil {
		return nil, err
	}
	deny, err := cfg.Storage.Deny()
	if err != nil {
		return nil, err
	}
	store := window.New(window.Config{
		Intervals: cfg.Storage.Intervals, MinDistance: cfg.Storage.MinDistance.Duration,
		ExpireGroup: cfg.Storage.ExpireGroup.Duration, Allow: allow, Deny: deny, Now: o.Now,
	}, cfg.ClusterNames()...)
	eval := evaluate.Config{MinimumComplete: cfg.Evaluator.MinimumComplete, AllowedLag: cfg.Evaluator.AllowedLag}
	m := &Monitor{Config: cfg, Store: store, opts: o, Kafka: map[string]*source.Kafka{}, NATS: map[string]*source.NATS{}}
	for _, name := range cfg.ClusterNames() {
		c := cfg.Clusters[name]
		if len(c.Servers) > 0 {
			k, err := source.NewKafka(source.KafkaConfig{Name: name, Cluster: *c, Logger: o.Logger, Now: o.Now}, store)
			if err != nil {
				return nil, err
			}
			m.Kafka[name] = k
		}
		if c.NATSURL != "" {
			m.NATS[name] = source.NewNATS(source.NATSConfig{Name: name, URL: c.NATSURL, Prefix: c.SubjectPrefix, Logger: o.Logger}, store)
		}
	}
	mods, err := notify.FromConfig(cfg, o.Logger)
	if err != nil {
		return nil, err
	}
	m.Notify = notify.NewManager(store, eval, mods, o.Logger, o.Now)
	m.Sampler = dashboard.NewSampler(store, eval, cfg.Dashboard.HistoryInterval.Duration, cfg.Dashboard.HistoryPoints, o.Now)
	if err := o.Registry.Register(metrics.New(store, eval, o.Now)); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	metricsHandler := o.MetricsHandler
	if metricsHandler == nil {
		metricsHandler = promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{})
	}
	m.API = httpapi.New(httpapi.Options{
		Store: store, Config: cfg, Listen: o.Listen, Ready: m.Ready, Now: o.Now,
		Metrics: metricsHandler, Dashboard: dashboard.Handler(m.Sampler),
	})
	return m, nil
}

// Ready reports whether every source has read its cluster once.
func (m *Monitor) Ready() bool {
	for _, k := range m.Kafka {
		if !k.Ready() {
			return false
		}
	}
	for _, n := range m.NATS {
		if !n.Ready() {
			return false
		}
	}
	return true
}

// Start binds the HTTP address (a busy port fails here) and starts the
// sources, the notifiers, the sampler and the server.
func (m *Monitor) Start(context.Context) error {
	ln, err := net.Listen("tcp", m.opts.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", m.opts.Listen, err)
	}
	m.ln = ln
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	run := func(what string, f func(context.Context) error) {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				m.opts.Logger.Error("lagmon component stopped", "component", what, "err", err)
			}
		}()
	}
	for name, k := range m.Kafka {
		run("kafka source "+name, k.Run)
	}
	for name, n := range m.NATS {
		run("nats source "+name, n.Run)
	}
	run("notifiers", m.Notify.Run)
	run("dashboard sampler", m.Sampler.Run)
	m.srv = &http.Server{Handler: m.instrument(m.API), ReadHeaderTimeout: 10 * time.Second}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.opts.Logger.Error("lagmon HTTP server stopped", "err", err)
		}
	}()
	m.opts.Logger.Info("lagmon serving", "listen", ln.Addr().String(), "clusters", m.Config.ClusterNames())
	return nil
}

// Addr is the bound HTTP address (after Start).
func (m *Monitor) Addr() string { return m.ln.Addr().String() }

// Stop shuts the server down and stops every component.
func (m *Monitor) Stop(ctx context.Context) error {
	var err error
	if m.srv != nil {
		err = m.srv.Shutdown(ctx)
	}
	if m.cancel != nil {
		m.cancel()
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(err, ctx.Err())
	}
	return err
}

// instrument wraps the HTTP API in OpenTelemetry's HTTP server
// instrumentation. Requests that machines make every few seconds (the
// Prometheus scrape, container healthchecks on /burrow/admin) are left out.
func (m *Monitor) instrument(h http.Handler) http.Handler {
	opts := []otelhttp.Option{
		otelhttp.WithFilter(func(r *http.Request) bool {
			return r.URL.Path != "/metrics" && !strings.HasPrefix(r.URL.Path, "/burrow/admin")
		}),
		// The route ("GET /v3/kafka/{cluster}/consumer/{group}/lag"),
		// known once the mux has matched; the method until then.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}),
	}
	if m.opts.TracerProvider != nil {
		opts = append(opts, otelhttp.WithTracerProvider(m.opts.TracerProvider))
	}
	if m.opts.MeterProvider != nil {
		opts = append(opts, otelhttp.WithMeterProvider(m.opts.MeterProvider))
	}
	return otelhttp.NewHandler(h, "lagmon", opts...)
}
