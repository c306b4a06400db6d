// Package source feeds lagmon's windows from a cluster, over two paths:
//
//   - Kafka: any Kafka-compatible cluster. Log-end offsets of every partition
//     are read on an interval (ListOffsets). Commits come from consuming
//     __consumer_offsets (Kafka's key versions 0-2 and value versions 0-4,
//     including group metadata for owners and client ids) or, where that
//     topic is not readable, from polling ListGroups, DescribeGroups and
//     OffsetFetch on the same interval.
//   - NATS: Runnel brokers publish log-end offsets, commits and group
//     members as events (see package github.com/runnel-io/runnel/sdk/events),
//     so lagmon needs no polling.
//
// Both write into a Sink (a *window.Store).
//
// Polled commits carry no commit time, so the poller stamps them with the
// poll time, and records a commit only when it changed or when the group
// has members: a group whose members keep committing the same offset then
// fills its window with equal offsets (STALL), while a group that went away
// stops adding commits (STOP), as in Burrow. When the "auto" source finds the
// commit log after polling, the cluster's windows start again from the log:
// poll orders and log offsets do not compare.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/lagmon/config"
)

// Sink receives offsets; *window.Store implements it.
type Sink interface {
	AddLogEnd(cluster, topic string, partition, partitions int32, offset, timestamp int64)
	AddCommit(cluster, group, topic string, partition int32, offset, order, timestamp int64)
	SetOwner(cluster, group, topic string, partition int32, owner, clientID string)
	ClearOwners(cluster, group string)
	DeleteTopic(cluster, topic string)
	ResetGroups(cluster string)
	Accept(group string) bool
}

// KafkaConfig configures the Kafka-protocol source of one cluster.
type KafkaConfig struct {
	// Name is lagmon's name of the cluster.
	Name string
	config.Cluster
	Logger *slog.Logger
	// Now is the clock (tests replace it). Default time.Now.
	Now func() time.Time
}

// Kafka reads a cluster's offsets over the Kafka protocol.
type Kafka struct {
	cfg  KafkaConfig
	sink Sink
	cl   *kgo.Client
	adm  *kadm.Client
	log  *slog.Logger

	ready      atomic.Bool
	consuming  atomic.Bool // the __consumer_offsets reader runs
	topics     map[string]bool
	order      int64             // commit order of polled commits
	lastPolled map[pollKey]int64 // last polled committed offset
	wg         sync.WaitGroup
	// runCtx is Run's context: the commit-log reader lives as long as it.
	runCtx context.Context
}

type pollKey struct {
	group, topic string
	partition    int32
}

// NewKafka builds the source; it connects lazily, in Run.
func NewKafka(cfg KafkaConfig, sink Sink) (*Kafka, error) {
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("cluster %s: no servers", cfg.Name)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Servers...), kgo.ClientID(cfg.ClientID))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cfg.Name, err)
	}
	return &Kafka{
		cfg: cfg, sink: sink, cl: cl, adm: kadm.NewClient(cl),
		log:    cfg.Logger.With("cluster", cfg.Name, "source", "kafka"),
		topics: map[string]bool{}, lastPolled: map[pollKey]int64{},
	}, nil
}

// Ready reports whether the first refresh of log-end offsets succeeded.
func (k *Kafka) Ready() bool { return k.ready.Load() }

// ConsumingOffsetsTopic reports whether commits are read from the
// __consumer_offsets topic (rather than polled).
func (k *Kafka) ConsumingOffsetsTopic() bool { return k.consuming.Load() }

// Run refreshes offsets every offset-refresh until ctx ends, then closes
// the clients.
func (k *Kafka) Run(ctx context.Context) error {
	k.runCtx = ctx
	defer func() {
		k.wg.Wait()
		k.cl.Close()
	}()
	t := time.NewTicker(k.cfg.OffsetRefresh.Duration)
	defer t.Stop()
	for {
		if err := k.refresh(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("offset refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// refresh reads log-end offsets and, depending on the offsets source,
// starts the commit-log reader or polls committed offsets.
func (k *Kafka) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(k.cfg.OffsetRefresh.Duration, 5*time.Second))
	defer cancel()
	// Internal topics (Kafka's __consumer_offsets) are left out of the
	// log-end offsets but looked for: the commit log is one of them.
	tds, err := k.adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var names []string
	counts := map[string]int32{}
	offsetsTopic := false
	for name, td := range tds {
		if td.Err != nil {
			continue
		}
		if name == k.cfg.OffsetsTopic {
			offsetsTopic = true
		}
		if td.IsInternal {
			continue
		}
		names = append(names, name)
		counts[name] = int32(len(td.Partitions))
	}
	if len(names) > 0 {
		listed, err := k.adm.ListEndOffsets(ctx, names...)
		if err != nil && len(listed) == 0 {
			return fmt.Errorf("list end offsets: %w", err)
		}
		now := k.cfg.Now().UnixMilli()
		for topic, parts := range listed {
			for p, o := range parts {
				if o.Err != nil || p < 0 {
					continue
				}
				k.sink.AddLogEnd(k.cfg.Name, topic, p, max(counts[topic], p+1), o.Offset, now)
			}
		}
	}
	for topic := range k.topics {
		if _, ok := tds[topic]; !ok {
			k.sink.DeleteTopic(k.cfg.Name, topic)
		}
	}
	k.topics = map[string]bool{}
	for _, name := range names {
		k.topics[name] = true
	}
	k.ready.Store(true)

	switch k.cfg.OffsetsSource {
	case config.SourceNone:
		return nil
	case config.SourceTopic:
		k.startOffsetsReader()
		return nil
	case config.SourceAuto:
		if offsetsTopic {
			k.startOffsetsReader()
		}
	}
	if k.consuming.Load() {
		return nil
	}
	return k.poll(ctx)
}

// startOffsetsReader starts consuming the commit log, once; the reader
// runs until Run's context ends.
func (k *Kafka) startOffsetsReader() {
	if k.consuming.Swap(true) {
		return
	}
	reset := kgo.NewOffset().AtStart()
	if k.cfg.StartLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(k.cfg.Servers...),
		kgo.ClientID(k.cfg.ClientID),
		kgo.ConsumeTopics(k.cfg.OffsetsTopic),
		kgo.ConsumeResetOffset(reset),
	)
	if err != nil {
		k.log.Error("cannot read the commit log", "topic", k.cfg.OffsetsTopic, "err", err)
		k.consuming.Store(false)
		return
	}
	if len(k.lastPolled) > 0 {
		// Polled commits are ordered by poll; the commit log by record
		// offset. The two do not compare, so the windows start again from
		// the log (which is read from its start, with the commits' own
		// timestamps).
		k.sink.ResetGroups(k.cfg.Name)
		clear(k.lastPolled)
	}
	k.log.Info("reading commits from the commit log", "topic", k.cfg.OffsetsTopic)
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer cl.Close()
		for {
			fs := cl.PollFetches(k.runCtx)
			if fs.IsClientClosed() || k.runCtx.Err() != nil {
				return
			}
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					k.log.Warn("commit log fetch", "topic", t, "partition", p, "err", err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { k.handleOffsetsRecord(r) })
		}
	}()
}

// handleOffsetsRecord applies one __consumer_offsets record.
func (k *Kafka) handleOffsetsRecord(r *kgo.Record) {
	rec, err := DecodeOffsetsRecord(r.Key, r.Value)
	if err != nil {
		if !errors.Is(err, ErrUnknownVersion) {
			k.log.Warn("undecodable commit log record", "partition", r.Partition, "offset", r.Offset, "err", err)
		}
		return
	}
	if rec.Tombstone || !k.sink.Accept(rec.Group) {
		return
	}
	switch rec.Kind {
	case KindCommit:
		k.sink.AddCommit(k.cfg.Name, rec.Group, rec.Topic, rec.Partition, rec.Offset, r.Offset, rec.Timestamp)
	case KindGroupMetadata:
		if rec.ProtocolType != "consumer" {
			return
		}
		if len(rec.Members) == 0 {
			k.sink.ClearOwners(k.cfg.Name, rec.Group)
			return
		}
		for _, m := range rec.Members {
			for topic, parts := range m.Assignments {
				for _, p := range parts {
					k.sink.SetOwner(k.cfg.Name, rec.Group, topic, p, m.ClientHost, m.ClientID)
				}
			}
		}
	}
}

// poll reads every admitted group's committed offsets and members.
func (k *Kafka) poll(ctx context.Context) error {
	listed, err := k.adm.ListGroups(ctx)
	if err != nil && len(listed) == 0 {
		return fmt.Errorf("list groups: %w", err)
	}
	var groups []string
	for _, g := range listed.Groups() {
		if k.sink.Accept(g) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	described, err := k.adm.DescribeGroups(ctx, groups...)
	if err != nil && len(described) == 0 {
		return fmt.Errorf("describe groups: %w", err)
	}
	fetched := k.adm.FetchManyOffsets(ctx, groups...)
	now := k.cfg.Now().UnixMilli()
	for _, g := range groups {
		d := described[g]
		active := d.Err == nil && len(d.Members) > 0
		resp, ok := fetched[g]
		if ok && resp.Err == nil {
			for topic, parts := range resp.Fetched {
				for p, o := range parts {
					if o.Err != nil || o.At < 0 {
						continue
					}
					key := pollKey{g, topic, p}
					prev, seen := k.lastPolled[key]
					k.lastPolled[key] = o.At
					if seen && prev == o.At && !active {
						continue // no member and no change: nothing was committed
					}
					k.order++
					k.sink.AddCommit(k.cfg.Name, g, topic, p, o.At, k.order, now)
				}
			}
		}
		if d.Err != nil || d.ProtocolType != "consumer" {
			continue
		}
		if !active {
			k.sink.ClearOwners(k.cfg.Name, g)
			continue
		}
		for _, m := range d.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok {
				continue
			}
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					k.sink.SetOwner(k.cfg.Name, g, t.Topic, p, m.ClientHost, m.ClientID)
				}
			}
		}
	}
	return nil
}
