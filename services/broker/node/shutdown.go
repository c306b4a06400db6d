package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// controlledShutdown is Kafka's controlled shutdown: the broker stops
// replicating (so that no leader takes it back into an ISR), then asks the
// controller to move its leaderships to other in-sync replicas, and
// repeats while partitions remain, up to controlled.shutdown.max.retries
// times, controlled.shutdown.retry.backoff.ms apart. When this broker is
// the controller, it does the work itself. Whatever cannot move in time
// moves when its registration vanishes, as after a crash.
func (b *Broker) controlledShutdown(ctx context.Context) {
	if !b.hostsReplicated() {
		return // nothing to hand over, nobody to take it
	}
	start := time.Now()
	b.replicas.StopFollowing()
	s := b.settings
	self := int32(b.cfg.ID)
	for attempt := int32(0); ; attempt++ {
		remaining, err := b.askControlledShutdown(ctx, self)
		switch {
		case err == nil && remaining == 0:
			b.log.Info("controlled shutdown: leaderships moved", "took", time.Since(start).Round(time.Millisecond))
			return
		case err != nil:
			b.log.Warn("controlled shutdown request failed", "attempt", attempt+1, "err", err)
		default:
			b.log.Info("controlled shutdown: partitions still led here", "attempt", attempt+1, "partitions", remaining)
		}
		if attempt >= s.ControlledShutdownMaxRetries {
			b.log.Warn("controlled shutdown incomplete: stopping anyway; the controller moves the rest when this broker's registration vanishes")
			return
		}
		// Partitions that remain wait for a follower to catch up: the
		// full backoff. A failed request (the controller moving, itself
		// stopping) is worth retrying sooner.
		wait := s.ControlledShutdownRetryBackoff
		if err != nil {
			wait = min(wait, 500*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			b.log.Warn("controlled shutdown cut short by the stop timeout", "err", ctx.Err())
			return
		case <-time.After(wait):
		}
	}
}

// hostsReplicated reports whether this broker hosts a partition with
// another replica: a lone broker has nothing to hand over.
func (b *Broker) hostsReplicated() bool {
	for _, p := range b.replicas.Partitions() {
		if len(p.State().Replicas) > 1 {
			return true
		}
	}
	return false
}

// askControlledShutdown sends one ControlledShutdown to the controller and
// returns how many partitions it still leaves here.
func (b *Broker) askControlledShutdown(ctx context.Context, self int32) (int, error) {
	var epoch int64 = -1
	for _, br := range b.store.Brokers() {
		if br.ID == self {
			epoch = br.Epoch
		}
	}
	ctrl := b.store.ControllerID()
	if ctrl == self {
		remaining, err := b.ctrl.ControlledShutdown(ctx, self, epoch)
		return len(remaining), err
	}
	addr, ok := b.peerAddr(ctrl)
	if !ok {
		return 0, fmt.Errorf("no controller known (controller id %d)", ctrl)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("runnel-broker-"+strconv.Itoa(int(self))), kgo.DialTimeout(3*time.Second))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	req := kmsg.NewPtrControlledShutdownRequest()
	req.BrokerID, req.BrokerEpoch = self, epoch
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(rctx, req)
	if err != nil {
		return 0, fmt.Errorf("controller %d at %s: %w", ctrl, addr, err)
	}
	r := resp.(*kmsg.ControlledShutdownResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		if errors.Is(err, kerr.NotController) {
			return 0, fmt.Errorf("broker %d is no longer the controller: %w", ctrl, err)
		}
		return 0, err
	}
	return len(r.PartitionsRemaining), nil
}
