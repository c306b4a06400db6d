package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.uber.org/fx"
)

// natsDev is an embedded NATS server (nats-server, no JetStream) carrying
// the broker's offset events to the lag monitor; an empty --nats-listen
// turns it off, and the broker then publishes nothing and the lag monitor
// reads the cluster over the Kafka protocol.
var natsDev = devService{
	module: func(o *devOptions) fx.Option {
		if o.natsListen == "" {
			return fx.Options()
		}
		return devModule("nats", fx.Invoke(func(lc fx.Lifecycle, logger *slog.Logger) error {
			srv, err := newDevNATS(o.natsListen, logger)
			if err != nil {
				return err
			}
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					srv.Start()
					if !srv.ReadyForConnections(10 * time.Second) {
						srv.Shutdown()
						return fmt.Errorf("--nats-listen %s: the NATS server did not start (see its log above)", o.natsListen)
					}
					return nil
				},
				OnStop: func(context.Context) error {
					srv.Shutdown()
					srv.WaitForShutdown()
					return nil
				},
			})
			return nil
		}))
	},
	listens: func(o *devOptions) []devListen {
		return []devListen{{"--nats-listen", o.natsListen, "NATS server"}}
	},
	endpoints: func(o *devOptions) []devEndpoint {
		if o.natsListen == "" {
			return nil
		}
		return []devEndpoint{{2, "NATS (offset events)", devNATSURL(o)}}
	},
}

// devNATSURL is the client URL of the embedded NATS server, "" when off.
func devNATSURL(o *devOptions) string {
	if o.natsListen == "" {
		return ""
	}
	return "nats://" + o.natsListen
}

func newDevNATS(listen string, logger *slog.Logger) (*natsserver.Server, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, usagef("--nats-listen %q: want HOST:PORT", listen)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return nil, usagef("--nats-listen %q: %q is not a port", listen, portText)
	}
	srv, err := natsserver.NewServer(&natsserver.Options{ServerName: "runnel-dev", Host: host, Port: port, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %s: %w", listen, err)
	}
	srv.SetLogger(natsLogger{logger}, logger.Enabled(context.Background(), slog.LevelDebug), false)
	return srv, nil
}

// natsLogger writes nats-server's log through the process's slog logger;
// its notices (the start-up banner) are debug lines.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Tracef(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
