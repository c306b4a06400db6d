package node

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/runnel-io/runnel/internal/telemetry"
)

// Module runs a broker configured by cfg.
func Module(cfg *Config) fx.Option {
	return fx.Module("broker",
		fx.Supply(cfg),
		fx.Provide(newBroker),
		fx.Invoke(func(*Broker) {}),
	)
}

// NewParams are newBroker's dependencies in the fx graph.
type NewParams struct {
	fx.In
	Lifecycle      fx.Lifecycle
	Config         *Config
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Telemetry      *telemetry.Providers `optional:"true"`
}

func newBroker(p NewParams) (*Broker, error) {
	params := Params{Config: *p.Config, Logger: p.Logger, TracerProvider: p.TracerProvider, MeterProvider: p.MeterProvider}
	if p.Telemetry != nil {
		params.Metrics = p.Telemetry.Handler()
	}
	b, err := New(params)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: b.Start,
		OnStop:  b.Stop,
	})
	return b, nil
}
