package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

const instrumentation = "github.com/runnel-io/runnel/services/coordinator/server"

// serverStats are the counters behind srvr, stat and mntr.
type serverStats struct {
	received    atomic.Int64
	sent        atomic.Int64
	outstanding atomic.Int64
	badInput    atomic.Int64
	latCount    atomic.Int64
	latTotalUs  atomic.Int64
	minLatency  atomic.Int64 // µs; -1 until the first request
	maxLatency  atomic.Int64 // µs
}

type metrics struct {
	requests metric.Int64Counter
	latency  metric.Float64Histogram
	expired  metric.Int64Counter
	// attrs caches the attribute set of each (op, result) pair so the hot
	// path does not build one per request.
	attrs sync.Map // int64(op)<<32 | uint32(code) → metric.MeasurementOption
}

func (m *metrics) attrsFor(op int32, code jute.Err) metric.MeasurementOption {
	key := int64(op)<<32 | int64(uint32(code))
	if v, ok := m.attrs.Load(key); ok {
		return v.(metric.MeasurementOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(attribute.String("op", jute.OpName(op)), attribute.String("result", code.Error())))
	m.attrs.Store(key, o)
	return o
}

func tracerFrom(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(instrumentation)
}

func newMetrics(mp metric.MeterProvider, s *Server) (*metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(instrumentation)
	m := &metrics{}
	var err error
	if m.requests, err = meter.Int64Counter("zookeeper.requests", metric.WithDescription("Client requests served, by operation and result."), metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if m.latency, err = meter.Float64Histogram("zookeeper.request.duration", metric.WithDescription("Time from receiving a request to queueing its response."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)); err != nil {
		return nil, err
	}
	if m.expired, err = meter.Int64Counter("zookeeper.sessions.expired", metric.WithDescription("Sessions expired by this member as leader."), metric.WithUnit("{session}")); err != nil {
		return nil, err
	}
	gauges := map[string]func() int64{
		"zookeeper.connections":  func() int64 { s.mu.Lock(); defer s.mu.Unlock(); return int64(len(s.conns)) },
		"zookeeper.znodes":       func() int64 { return int64(s.db.Stats().Nodes) },
		"zookeeper.watches":      func() int64 { return int64(s.db.Stats().Watches) },
		"zookeeper.ephemerals":   func() int64 { return int64(s.db.Stats().Ephemerals) },
		"zookeeper.sessions":     func() int64 { return int64(s.db.Stats().Sessions) },
		"zookeeper.outstanding":  func() int64 { return s.stats.outstanding.Load() },
		"zookeeper.last_zxid":    func() int64 { return s.db.LastZxid() },
		"zookeeper.approx_bytes": func() int64 { return s.db.Stats().ApproxDataSize },
	}
	for name, f := range gauges {
		if _, err := meter.Int64ObservableGauge(name, metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(f())
			return nil
		})); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records one completed request.
func (s *Server) observe(op int32, start time.Time, code jute.Err) {
	s.stats.sent.Add(1)
	if op == jute.OpPing {
		return
	}
	d := time.Since(start)
	us := d.Microseconds()
	s.stats.latCount.Add(1)
	s.stats.latTotalUs.Add(us)
	for {
		cur := s.stats.maxLatency.Load()
		if us <= cur || s.stats.maxLatency.CompareAndSwap(cur, us) {
			break
		}
	}
	for {
		cur := s.stats.minLatency.Load()
		if (cur >= 0 && us >= cur) || s.stats.minLatency.CompareAndSwap(cur, us) {
			break
		}
	}
	ctx := context.Background()
	attrs := s.m.attrsFor(op, code)
	s.m.requests.Add(ctx, 1, attrs)
	s.m.latency.Record(ctx, d.Seconds(), attrs)
}
