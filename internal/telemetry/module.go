package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
)

// Module provides *Providers and the trace.TracerProvider and
// metric.MeterProvider interfaces for serviceName, and flushes them on stop.
func Module(serviceName string) fx.Option {
	return fx.Module("telemetry",
		fx.Provide(
			func(lc fx.Lifecycle) (*Providers, error) {
				p, err := New(context.Background(), serviceName)
				if err != nil {
					return nil, err
				}
				lc.Append(fx.StopHook(p.Shutdown))
				return p, nil
			},
			func(p *Providers) trace.TracerProvider { return p.TracerProvider },
			func(p *Providers) metric.MeterProvider { return p.MeterProvider },
		),
	)
}
