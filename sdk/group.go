package sdk

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// GroupBalance compares a group's consumers with its partitions.
type GroupBalance struct {
	Group string
	// Members is how many consumers the group has.
	Members int
	// Partitions is how many partitions its subscribed topics have.
	Partitions int
	// Assigned is what this consumer reads.
	Assigned map[string][]int32
}

// Idle reports whether some consumers must be idle: each partition goes to
// at most one consumer of a group, so members beyond the partition count
// get nothing.
func (b GroupBalance) Idle() bool { return b.Members > b.Partitions }

func (c *Consumer[K, V]) assigned(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	c.mu.Lock()
	for t, ps := range m {
		if c.owned[t] == nil {
			c.owned[t] = map[int32]bool{}
		}
		for _, p := range ps {
			c.owned[t][p] = true
		}
	}
	c.mu.Unlock()
	if c.cfg.onAssigned != nil && anyPartition(m) {
		c.cfg.onAssigned(ctx, m)
	}
}

// checkBalanceAfterJoin warns, once per group generation, when the group
// has more consumers than partitions. It runs in its own goroutine: the
// admin requests must not hold up the rebalance.
func (c *Consumer[K, V]) checkBalanceAfterJoin() {
	if c.cfg.group == "" {
		return
	}
	_, gen := c.cl.GroupMetadata()
	c.mu.Lock()
	if gen <= 0 || gen == c.checkedGen {
		c.mu.Unlock()
		return
	}
	c.checkedGen = gen
	c.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := c.Balance(ctx)
		if err != nil || !b.Idle() {
			return
		}
		n := 0
		for _, ps := range b.Assigned {
			n += len(ps)
		}
		c.cfg.logger.Warn("consumer group has more consumers than partitions: some consumers are idle",
			"group", b.Group, "consumers", b.Members, "partitions", b.Partitions,
			"this_consumer_partitions", n, "hint", "add partitions or remove consumers")
	}()
}

// Balance describes the group's members and partitions.
func (c *Consumer[K, V]) Balance(ctx context.Context) (GroupBalance, error) {
	b := GroupBalance{Group: c.cfg.group}
	if c.cfg.group == "" {
		return b, fmt.Errorf("sdk: the consumer is in no group")
	}
	b.Assigned = c.assignedPartitions()
	groups, err := c.adm.DescribeGroups(ctx, c.cfg.group)
	if err != nil {
		return b, fmt.Errorf("sdk: describing group %q: %w", c.cfg.group, err)
	}
	g, ok := groups[c.cfg.group]
	if !ok || g.Err != nil {
		return b, fmt.Errorf("sdk: describing group %q: %v", c.cfg.group, g.Err)
	}
	b.Members = len(g.Members)
	md, err := c.adm.Metadata(ctx, c.cfg.topics...)
	if err != nil {
		return b, fmt.Errorf("sdk: topic metadata: %w", err)
	}
	for _, t := range md.Topics {
		b.Partitions += len(t.Partitions)
	}
	return b, nil
}

// assignedPartitions is what this consumer currently owns.
func (c *Consumer[K, V]) assignedPartitions() map[string][]int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]int32{}
	for t, ps := range c.owned {
		for p := range ps {
			out[t] = append(out[t], p)
		}
		slices.Sort(out[t])
	}
	return out
}

// noteLag records each fetched partition's lag: the high watermark minus
// the offset after the last record returned.
func (c *Consumer[K, V]) noteLag(fetches kgo.Fetches) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		last := p.Records[len(p.Records)-1].Offset
		lag := max(p.HighWatermark-(last+1), 0)
		m := c.lag[p.Topic]
		if m == nil {
			m = map[int32]int64{}
			c.lag[p.Topic] = m
		}
		m[p.Partition] = lag
	})
}

// forget drops the lag of partitions no longer read.
func (c *Consumer[K, V]) forget(m map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			delete(c.lag[t], p)
			delete(c.owned[t], p)
		}
	}
}

// Lag returns, per partition read so far, how many records the last Poll
// left behind: the high watermark minus the next offset to read.
func (c *Consumer[K, V]) Lag() map[string]map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[int32]int64, len(c.lag))
	for t, m := range c.lag {
		out[t] = make(map[int32]int64, len(m))
		for p, l := range m {
			out[t][p] = l
		}
	}
	return out
}

// RecordsLagMax is the largest lag over the partitions read, the
// records-lag-max of Kafka's consumer metrics.
func (c *Consumer[K, V]) RecordsLagMax() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var mx int64
	for _, m := range c.lag {
		for _, l := range m {
			mx = max(mx, l)
		}
	}
	return mx
}

func (c *Consumer[K, V]) registerLag() error {
	m := c.cfg.meter.Meter(instrumentationName)
	lag, err := m.Int64ObservableGauge(MetricLag, metric.WithUnit("{message}"), metric.WithDescription("Records between the consumer's position and the high watermark, per partition."))
	if err != nil {
		return err
	}
	lagMax, err := m.Int64ObservableGauge(MetricLagMax, metric.WithUnit("{message}"), metric.WithDescription("The largest per-partition lag (Kafka's records-lag-max)."))
	if err != nil {
		return err
	}
	base := []attribute.KeyValue{semconv.MessagingSystemKafka, semconv.MessagingClientID(c.cfg.clientID)}
	if c.cfg.group != "" {
		base = append(base, semconv.MessagingConsumerGroupName(c.cfg.group))
	}
	c.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for t, ps := range c.Lag() {
			for p, l := range ps {
				o.ObserveInt64(lag, l, metric.WithAttributes(append(base,
					semconv.MessagingDestinationName(t),
					semconv.MessagingDestinationPartitionID(strconv.Itoa(int(p))))...))
			}
		}
		o.ObserveInt64(lagMax, c.RecordsLagMax(), metric.WithAttributes(base...))
		return nil
	}, lag, lagMax)
	return err
}
