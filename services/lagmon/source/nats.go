package source

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/runnel-io/runnel/sdk/events"
)

// NATSConfig configures the NATS source of one cluster.
type NATSConfig struct {
	// Name is lagmon's name of the cluster (the second subject token).
	Name string
	// URL is the NATS server (or a comma-separated list).
	URL string
	// Prefix is the first subject token; default events.DefaultPrefix.
	Prefix string
	Logger *slog.Logger
}

// NATS subscribes to a cluster's offset events (see package
// github.com/runnel-io/runnel/sdk/events).
type NATS struct {
	cfg   NATSConfig
	sink  Sink
	log   *slog.Logger
	order atomic.Int64 // arrival order of commits that carry none
	ready atomic.Bool
}

// NewNATS builds the source; it connects in Run.
func NewNATS(cfg NATSConfig, sink Sink) *NATS {
	if cfg.Prefix == "" {
		cfg.Prefix = events.DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &NATS{cfg: cfg, sink: sink, log: cfg.Logger.With("cluster", cfg.Name, "source", "nats")}
}

// Ready reports whether the subscriptions are in place.
func (n *NATS) Ready() bool { return n.ready.Load() }

// Run connects (retrying until ctx ends), subscribes, and serves events
// until ctx ends.
func (n *NATS) Run(ctx context.Context) error {
	nc, err := nats.Connect(n.cfg.URL,
		nats.Name("runnel-lagmon"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("cluster %s: nats %s: %w", n.cfg.Name, n.cfg.URL, err)
	}
	defer nc.Close()
	subs := []struct {
		subject string
		handle  func([]byte) error
	}{
		{events.LogEndSubject(n.cfg.Prefix, n.cfg.Name), n.handleLogEnd},
		{events.CommitSubject(n.cfg.Prefix, n.cfg.Name), n.handleCommit},
		{events.MembersSubject(n.cfg.Prefix, n.cfg.Name), n.handleMembers},
	}
	for _, s := range subs {
		handle, subject := s.handle, s.subject
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
			if err := handle(m.Data); err != nil {
				n.log.Warn("dropped an offset event", "subject", subject, "err", err)
			}
		}); err != nil {
			return fmt.Errorf("cluster %s: subscribe %s: %w", n.cfg.Name, subject, err)
		}
	}
	// Subscriptions made while disconnected are sent on connect; flushing
	// here makes Ready mean "the server has them" when connected.
	if nc.IsConnected() {
		_ = nc.FlushTimeout(5 * time.Second)
	}
	n.ready.Store(true)
	n.log.Info("subscribed to offset events", "url", n.cfg.URL, "prefix", n.cfg.Prefix)
	<-ctx.Done()
	return nil
}

func (n *NATS) handleLogEnd(b []byte) error {
	v, err := events.DecodeLogEnd(b)
	if err != nil {
		return err
	}
	for _, p := range v.Partitions {
		n.sink.AddLogEnd(n.cfg.Name, p.Topic, p.Partition, p.PartitionCount, p.Offset, v.Timestamp)
	}
	return nil
}

func (n *NATS) handleCommit(b []byte) error {
	v, err := events.DecodeCommit(b)
	if err != nil {
		return err
	}
	if !n.sink.Accept(v.Group) {
		return nil
	}
	var order int64
	if v.Order != nil {
		order = *v.Order
	} else {
		order = n.order.Add(1)
	}
	for _, p := range v.Offsets {
		n.sink.AddCommit(n.cfg.Name, v.Group, p.Topic, p.Partition, p.Offset, order, v.Timestamp)
	}
	return nil
}

func (n *NATS) handleMembers(b []byte) error {
	v, err := events.DecodeMembers(b)
	if err != nil {
		return err
	}
	if !n.sink.Accept(v.Group) {
		return nil
	}
	if len(v.Members) == 0 {
		n.sink.ClearOwners(n.cfg.Name, v.Group)
		return nil
	}
	for _, m := range v.Members {
		for topic, parts := range m.Assignments {
			for _, p := range parts {
				n.sink.SetOwner(n.cfg.Name, v.Group, topic, p, m.ClientHost, m.ClientID)
			}
		}
	}
	return nil
}
