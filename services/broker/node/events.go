package node

import (
	"context"

	"github.com/runnel-io/runnel/sdk/events"
	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/natsevents"
)

// eventsConfig is the publisher's configuration from the flags.
func (c *Config) eventsConfig() natsevents.Config {
	return natsevents.Config{URL: c.NATSURL, Prefix: c.NATSSubjectPrefix, Cluster: c.ClusterName, Interval: c.NATSInterval}
}

// startEvents starts publishing offset events when --nats-url is set and
// returns the group coordinator's observer (nil when off).
func (b *Broker) startEvents(ctx context.Context) (group.Observer, error) {
	if b.cfg.NATSURL == "" {
		return nil, nil
	}
	p, err := natsevents.New(natsevents.Params{Config: b.cfg.eventsConfig(), LogEnds: b.ledLogEnds, Logger: b.log,
		TracerProvider: b.tp, MeterProvider: b.mp})
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	b.events = p
	return p, nil
}

// ledLogEnds lists the high watermarks of the partitions this broker
// leads, internal topics left out (as Kafka tools list them).
func (b *Broker) ledLogEnds() []events.LogEndPartition {
	var out []events.LogEndPartition
	for _, p := range b.replicas.Partitions() {
		id := p.ID()
		if id.Topic == group.Topic || !p.IsLeader() {
			continue
		}
		t, ok := b.store.Topic(id.Topic)
		if !ok || t.Deleting || int(id.Partition) >= len(t.Partitions) {
			continue
		}
		out = append(out, events.LogEndPartition{Topic: id.Topic, Partition: id.Partition,
			PartitionCount: int32(len(t.Partitions)), Offset: p.HighWatermark()})
	}
	return out
}
