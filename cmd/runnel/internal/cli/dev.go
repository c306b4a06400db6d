package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/runnel-io/runnel/internal/telemetry"
	"github.com/runnel-io/runnel/services/broker/node"
	"github.com/runnel-io/runnel/services/coordinator/member"
	"github.com/runnel-io/runnel/services/lagmon/monitor"
)

// devOptions are the flags of `runnel dev`.
type devOptions struct {
	dataDir         string
	kafkaListen     string
	zookeeperListen string
	metricsListen   string
	lagmonListen    string
	natsListen      string
	brokerConfig    []string
	logLevel        string
	logFormat       string
}

// devService is one part of the local platform: the fx module that runs it,
// the addresses it binds (by the flag that sets each, so a busy port is
// reported by the flag that changes it) and the endpoints it announces.
type devService struct {
	module    func(o *devOptions) fx.Option
	listens   func(o *devOptions) []devListen
	endpoints func(o *devOptions) []devEndpoint
}

type devListen struct{ flag, addr, what string }

// devEndpoint is one line of the start-up announcement; lower ranks are
// printed first (the Kafka bootstrap address leads).
type devEndpoint struct {
	rank        int
	name, value string
}

// devServices are the parts of `runnel dev`, in start order: each starts
// after the ones before it, and they stop in reverse. Adding a service
// (lagmon, the embedded NATS server) is one entry here.
var devServices = []devService{
	coordinatorDev,
	natsDev,
	brokerDev,
	lagmonDev,
}

// coordinatorDev is a standalone coordinator; its AdminServer also serves
// the /metrics of the whole process (one telemetry registry).
var coordinatorDev = devService{
	module: func(o *devOptions) fx.Option {
		var cfg member.Config
		flagDefaults(cfg.Flags)
		cfg.Listen = o.zookeeperListen
		cfg.DataDir = filepath.Join(o.dataDir, "coordinator")
		cfg.AdminListen = o.metricsListen
		return devModule("coordinator", member.Module(&cfg))
	},
	listens: func(o *devOptions) []devListen {
		return []devListen{
			{"--zookeeper-listen", o.zookeeperListen, "ZooKeeper"},
			{"--metrics-listen", o.metricsListen, "a web server"},
		}
	},
	endpoints: func(o *devOptions) []devEndpoint {
		out := []devEndpoint{{1, "ZooKeeper connect", o.zookeeperListen}}
		if o.metricsListen != "" {
			out = append(out,
				devEndpoint{2, "Metrics (Prometheus)", "http://" + o.metricsListen + "/metrics"},
				devEndpoint{2, "ZooKeeper AdminServer", "http://" + o.metricsListen + "/commands"})
		}
		return out
	},
}

// brokerDev is broker 1, registered in the coordinator above, publishing
// its offset events (as cluster "local") to the embedded NATS server.
var brokerDev = devService{
	module: func(o *devOptions) fx.Option {
		var cfg node.Config
		flagDefaults(cfg.Flags)
		cfg.ID = 1
		cfg.Listen = o.kafkaListen
		cfg.DataDir = filepath.Join(o.dataDir, "broker")
		cfg.Coordinator = o.zookeeperListen
		cfg.Settings = o.brokerConfig
		cfg.NATSURL = devNATSURL(o)
		cfg.ClusterName = devCluster
		return devModule("broker", node.Module(&cfg))
	},
	listens: func(o *devOptions) []devListen {
		return []devListen{{"--kafka-listen", o.kafkaListen, "Kafka broker"}}
	},
	endpoints: func(o *devOptions) []devEndpoint {
		return []devEndpoint{{0, "Kafka bootstrap server", o.kafkaListen}}
	},
}

// devCluster is the cluster's name in the offset events and the lag
// monitor.
const devCluster = "local"

// lagmonDev is the lag monitor (Burrow's API, metrics and dashboard)
// watching broker 1 as cluster "local": through the broker's NATS events
// only (log ends, commits and members pushed by the broker), or, with the
// embedded NATS server off, over the Kafka protocol (__consumer_offsets and
// ListOffsets polls). An empty --lagmon-listen turns it off.
var lagmonDev = devService{
	module: func(o *devOptions) fx.Option {
		if o.lagmonListen == "" {
			return fx.Options()
		}
		f := monitor.Flags{Listen: o.lagmonListen, ClusterName: devCluster, NATSURL: devNATSURL(o)}
		if f.NATSURL == "" {
			f.BootstrapServer = o.kafkaListen
		}
		return devModule("lagmon", monitor.Module(&f))
	},
	listens: func(o *devOptions) []devListen {
		return []devListen{{"--lagmon-listen", o.lagmonListen, "Burrow or lag monitor"}}
	},
	endpoints: func(o *devOptions) []devEndpoint {
		if o.lagmonListen == "" {
			return nil
		}
		return []devEndpoint{
			{3, "Lag monitor (Burrow)", "http://" + o.lagmonListen + "/v3/kafka/local/consumer"},
			{3, "Lag dashboard", "http://" + o.lagmonListen + "/dashboard/"},
		}
	},
}

// flagDefaults fills a service's Config with its binary's flag defaults, so
// the defaults live in one place.
func flagDefaults(register func(*pflag.FlagSet)) {
	register(pflag.NewFlagSet("defaults", pflag.ContinueOnError))
}

// devModule wraps a service's module so its log lines say which service
// wrote them.
func devModule(name string, m fx.Option) fx.Option {
	return fx.Module("dev-"+name,
		fx.Decorate(func(l *slog.Logger) *slog.Logger { return l.With("service", name) }),
		m,
	)
}

func devCmd(s Streams) *cobra.Command {
	var o devOptions
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run the local platform (coordinator, NATS, broker and lag monitor) in one process",
		Long: `Run Runnel's local platform in one process: a ZooKeeper-compatible coordinator
(standalone), an embedded NATS server, broker 1 registered in the coordinator
and publishing its offset events to NATS, and the lag monitor (Burrow's API
and a dashboard) watching the cluster as "local" through those events, sharing
one telemetry setup. With --nats-listen "" there is no NATS server and the lag
monitor reads the broker over the Kafka protocol instead.
Once everything is up the endpoints are printed on stdout. Data is kept under
--data-dir (coordinator/ and broker/), so a restart keeps topics and records.
Ctrl-C (or SIGTERM) stops everything cleanly.`,
		Example: `  runnel dev
  runnel dev --data-dir /tmp/runnel --kafka-listen 127.0.0.1:19092 --zookeeper-listen 127.0.0.1:12181
  runnel dev --broker-config num.partitions=3 --broker-config log.retention.ms=3600000
  runnel dev --nats-listen ""        # no NATS: the lag monitor reads the Kafka protocol`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), o, s)
		}),
	}
	fs := c.Flags()
	fs.StringVar(&o.dataDir, "data-dir", "./runnel-data", "directory for all data (coordinator/ and broker/ inside)")
	fs.StringVar(&o.kafkaListen, "kafka-listen", "127.0.0.1:9092", "address of the Kafka broker")
	fs.StringVar(&o.zookeeperListen, "zookeeper-listen", "127.0.0.1:2181", "address of the ZooKeeper-compatible coordinator")
	fs.StringVar(&o.metricsListen, "metrics-listen", "127.0.0.1:8080", "address serving /metrics and the ZooKeeper AdminServer (empty: off)")
	fs.StringVar(&o.lagmonListen, "lagmon-listen", "127.0.0.1:8000", "address of the lag monitor's Burrow API, /metrics and dashboard (empty: off)")
	fs.StringVar(&o.natsListen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server carrying the broker's offset events to the lag monitor (empty: off; the lag monitor then reads the Kafka protocol)")
	fs.StringArrayVar(&o.brokerConfig, "broker-config", nil, "broker setting under Kafka's name, key=value (repeatable), e.g. num.partitions=3")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	return c
}

// devStopTimeout bounds a clean stop; past it the process exits anyway.
const devStopTimeout = 30 * time.Second

// devStartTimeout bounds start-up (the broker waits for the coordinator).
const devStartTimeout = 60 * time.Second

func runDev(ctx context.Context, o devOptions, s Streams) error {
	logger, err := newLogger(o.logLevel, o.logFormat, s.Err)
	if err != nil {
		return err
	}
	var listens []devListen
	modules := []fx.Option{
		fx.Supply(logger),
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		telemetry.Module("runnel-dev"),
		fx.StartTimeout(devStartTimeout),
		fx.StopTimeout(devStopTimeout),
	}
	for _, svc := range devServices {
		listens = append(listens, svc.listens(&o)...)
		modules = append(modules, svc.module(&o))
	}
	if err := checkListens(listens); err != nil {
		return err
	}
	app := fx.New(modules...)
	if err := app.Err(); err != nil {
		return fmt.Errorf("assembling the platform: %s", fxCause(err))
	}
	startCtx, cancel := context.WithTimeout(ctx, devStartTimeout)
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted while starting")
		}
		return fmt.Errorf("starting: %s", fxCause(err))
	}
	printEndpoints(s.Out, o)
	<-ctx.Done()
	fmt.Fprintln(s.Err, "Stopping runnel dev...")
	stopCtx, cancelStop := context.WithTimeout(context.Background(), devStopTimeout)
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil {
		return fmt.Errorf("stopping: %s", fxCause(err))
	}
	return nil
}

// newLogger builds the process's logger on w, the command's stderr (the
// services' shared logger writes to os.Stderr; tests capture w).
func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: use text or json", format)
}

// checkListens binds every address once before starting, so a busy port
// fails with the flag that changes it rather than deep inside a service.
func checkListens(ls []devListen) error {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for _, l := range ls {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("%s %s: %s: is another %s (or runnel dev) running there? pick another address with %s", l.flag, l.addr, shortNetError(err), l.what, l.flag)
		}
		held = append(held, ln)
	}
	return nil
}

// printEndpoints announces the platform once it is up.
func printEndpoints(w io.Writer, o devOptions) {
	var eps []devEndpoint
	for _, svc := range devServices {
		eps = append(eps, svc.endpoints(&o)...)
	}
	slices.SortStableFunc(eps, func(a, b devEndpoint) int { return cmp.Compare(a.rank, b.rank) })
	width := 0
	for _, e := range eps {
		width = max(width, len(e.name))
	}
	fmt.Fprintf(w, "runnel dev is up (data in %s):\n", o.dataDir)
	for _, e := range eps {
		fmt.Fprintf(w, "  %-*s  %s\n", width, e.name, e.value)
	}
	try := "runnel topics create --topic demo"
	if o.kafkaListen != defaultBootstrap {
		try += " --bootstrap-server " + o.kafkaListen
	}
	fmt.Fprintf(w, "Try `%s`. Ctrl-C stops everything.\n", try)
}

// fxCause trims fx's wrapping ("OnStart hook added by ... failed: ...") so
// the one-line reason names the real failure.
func fxCause(err error) string {
	msg := oneLine(err.Error())
	if i := strings.LastIndex(msg, " failed: "); i >= 0 {
		msg = msg[i+len(" failed: "):]
	}
	return msg
}
