package monitor

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/runnel-io/runnel/internal/telemetry"
)

// Module runs lagmon configured by f: the configuration is read when the
// graph is built (a bad file fails start-up with its reason), the HTTP
// address is bound in OnStart.
func Module(f *Flags) fx.Option {
	return fx.Module("lagmon",
		fx.Provide(func(lc fx.Lifecycle, p *telemetry.Providers, logger *slog.Logger) (*Monitor, error) {
			cfg, err := f.Load()
			if err != nil {
				return nil, err
			}
			m, err := New(cfg, Options{Listen: f.Listen, Logger: logger, Registry: p.Registry, MetricsHandler: p.Handler(),
				TracerProvider: p.TracerProvider, MeterProvider: p.MeterProvider})
			if err != nil {
				return nil, err
			}
			lc.Append(fx.Hook{OnStart: m.Start, OnStop: m.Stop})
			return m, nil
		}),
		fx.Invoke(func(*Monitor) {}),
	)
}
