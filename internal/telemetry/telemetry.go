// Package telemetry bootstraps OpenTelemetry and Prometheus for every Runnel
// service. Only a main package (or runnel dev) calls New: components take a
// trace.TracerProvider and metric.MeterProvider and never install SDKs
// themselves.
//
// Configuration follows the standard OTEL_* environment variables:
//
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the resource; the
//     service name passed to New is the default.
//   - OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT turn on
//     OTLP trace export; OTEL_EXPORTER_OTLP_PROTOCOL picks "grpc" or
//     "http/protobuf" (the default). Without an endpoint no span is sampled,
//     so none is recorded or leaves the process.
//   - OTEL_SDK_DISABLED=true installs no-op providers.
//
// Metrics always flow into a Prometheus registry that the service serves at
// /metrics (see Providers.Handler).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Providers holds what a service needs to emit telemetry.
type Providers struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Registry is the Prometheus registry behind Handler. Components may
	// register native Prometheus collectors on it (for example metric names
	// that must match another project's exactly).
	Registry *prometheus.Registry

	shutdown []func(context.Context) error
}

// New builds tracer and meter providers for serviceName from the OTEL_*
// environment, installs them and the W3C propagators as the otel globals, and
// returns them. Call Shutdown before exit to flush spans.
func New(ctx context.Context, serviceName string) (*Providers, error) {
	p := &Providers{Registry: prometheus.NewRegistry()}
	p.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		p.TracerProvider = tracenoop.NewTracerProvider()
		p.MeterProvider = metricnoop.NewMeterProvider()
		return p, nil
	}

	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}

	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exp, err := traceExporter(ctx); err != nil {
		return nil, err
	} else if exp != nil {
		topts = append(topts, sdktrace.WithBatcher(exp))
	} else {
		// Spans that never leave the process are not worth recording;
		// unsampled spans also spare the work instrumentation does only
		// for recorded ones (the broker opening produced batches to read
		// their trace context). Trace context still propagates.
		topts = append(topts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(topts...)
	p.TracerProvider = tp
	p.shutdown = append(p.shutdown, tp.Shutdown)

	promExp, err := otelprom.New(otelprom.WithRegisterer(p.Registry))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(promExp))
	p.MeterProvider = mp
	p.shutdown = append(p.shutdown, mp.Shutdown)

	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	return p, nil
}

// traceExporter returns an OTLP exporter when an endpoint is configured, or
// nil when spans should stay in the process.
func traceExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var client otlptrace.Client
	switch proto {
	case "grpc":
		client = otlptracegrpc.NewClient()
	case "", "http/protobuf":
		client = otlptracehttp.NewClient()
	default:
		return nil, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL=%q is not supported; use grpc or http/protobuf", proto)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	return exp, nil
}

// Handler serves the Prometheus registry in the text exposition format.
func (p *Providers) Handler() http.Handler {
	return promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{Registry: p.Registry})
}

// Shutdown flushes and stops the providers.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
