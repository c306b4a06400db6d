package member

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/runnel-io/runnel/internal/telemetry"
	"github.com/runnel-io/runnel/services/coordinator/admin"
	"github.com/runnel-io/runnel/services/coordinator/ensemble"
	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/server"
	"github.com/runnel-io/runnel/services/coordinator/standalone"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// Module runs a coordinator member configured by cfg.
func Module(cfg *Config) fx.Option {
	return fx.Module("coordinator",
		fx.Supply(cfg),
		fx.Provide(znode.New, newReplicator, newServer),
		fx.Invoke(startAdmin, connectEnsemble),
	)
}

type replicator interface {
	server.Replicator
	Start()
	Stop(ctx context.Context) error
}

func newReplicator(lc fx.Lifecycle, cfg *Config, db *znode.DB, logger *slog.Logger) (server.Replicator, error) {
	peers, err := ParsePeers(cfg.Peers)
	if err != nil {
		return nil, err
	}
	var r replicator
	if len(peers) > 0 {
		return newEnsemble(lc, cfg, peers, db, logger)
	}
	r, err = standalone.Open(db, standalone.Options{Dir: cfg.DataDir, SnapCount: cfg.SnapCount, NoSync: cfg.NoSync, Logger: logger})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error { r.Start(); return nil },
		OnStop:  r.Stop,
	})
	return r, nil
}

// newEnsemble builds a raft ensemble member from --id, --peers and
// --data-dir.
func newEnsemble(lc fx.Lifecycle, cfg *Config, peers map[int]string, db *znode.DB, logger *slog.Logger) (server.Replicator, error) {
	e, err := ensemble.Open(db, ensemble.Options{
		ID:                cfg.ID,
		Peers:             peers,
		DataDir:           cfg.DataDir,
		NoSync:            cfg.NoSync,
		SnapshotThreshold: uint64(max(cfg.SnapCount, 1)),
		Logger:            logger,
	})
	if err != nil {
		return nil, fmt.Errorf("--id %d --peers %s: %w", cfg.ID, cfg.Peers, err)
	}
	lc.Append(fx.Hook{OnStart: func(context.Context) error { return e.Start() }, OnStop: e.Stop})
	return e, nil
}

// connectEnsemble lets an ensemble's leader extend the sessions that other
// members report live; the server exists only after the replicator, hence
// the setter.
func connectEnsemble(r server.Replicator, s *server.Server) {
	if e, ok := r.(*ensemble.Ensemble); ok {
		e.SetSessionToucher(s.TouchSessions)
	}
}

// closeSessionsTimeout bounds the closing of sessions on a graceful stop
// (an ensemble member cut off from its leader cannot close any).
const closeSessionsTimeout = 5 * time.Second

type serverParams struct {
	fx.In
	Lifecycle      fx.Lifecycle
	Config         *Config
	DB             *znode.DB
	Replicator     server.Replicator
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

func newServer(p serverParams) (*server.Server, error) {
	sc := server.DefaultConfig()
	sc.Listen = p.Config.Listen
	sc.ServerID = int64(p.Config.ID)
	sc.TickTime = p.Config.TickTime
	sc.MaxClientConns = p.Config.MaxClientConns
	sc.ContainerCheckInterval = p.Config.ContainerCheckInterval
	sc.DataDir = p.Config.DataDir
	sc.MaxPacket = jute.MaxPacket
	s, err := server.New(server.Params{Config: sc, DB: p.DB, Replicator: p.Replicator, Logger: p.Logger,
		TracerProvider: p.TracerProvider, MeterProvider: p.MeterProvider})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error { return s.Start() },
		OnStop: func(ctx context.Context) error {
			if !p.Config.KeepSessionsOnStop {
				// A graceful stop ends the sessions of the clients
				// connected here, as if each had closed its own: their
				// ephemeral nodes (a broker's registration, a lock)
				// vanish now instead of after the session timeout.
				// The replicator is still running: fx stops it after
				// the server.
				cctx, cancel := context.WithTimeout(ctx, closeSessionsTimeout)
				s.CloseSessions(cctx)
				cancel()
			}
			s.Stop()
			return nil
		},
	})
	return s, nil
}

func startAdmin(lc fx.Lifecycle, cfg *Config, zk *server.Server, db *znode.DB, tel *telemetry.Providers) {
	if cfg.AdminListen == "" {
		return
	}
	var h http.Handler
	if tel != nil {
		h = tel.Handler()
	}
	a := admin.New(zk, db, h)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error { return a.Start(cfg.AdminListen) },
		OnStop:  a.Stop,
	})
}
