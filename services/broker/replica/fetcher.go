package replica

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/runnel-io/runnel/sdk/storage"
)

// A fetcher replicates, for the partitions this broker follows, from one
// leader broker, as Kafka's replica fetcher threads do: one Fetch request
// at a time for all of them, carrying this broker's id as the replica id,
// from each partition's log end offset. Before a partition's first fetch
// under a leader epoch, it asks the leader where its log may have diverged
// (OffsetForLeaderEpoch with the latest epoch it has) and truncates there.
//
// Requests go through franz-go's kgo client pinned to the leader's
// address (its seed broker), so connection handling, version negotiation
// and the fetch's long-poll timeout are the library's.
type fetcher struct {
	m      *Manager
	leader int32
	addr   string
	client *kgo.Client

	mu    sync.Mutex
	parts map[storage.PartitionID]*fetchPart
	wake  chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// fetchPart is one partition a fetcher replicates.
type fetchPart struct {
	p        *Partition
	epoch    int32 // the leader epoch the partition is followed under
	truncate bool  // ask for the divergence point before fetching
	retryAt  time.Time
}

func newFetcher(m *Manager, leader int32, addr string) (*fetcher, error) {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ClientID("runnel-replica-fetcher-"+strconv.Itoa(int(m.self))),
		kgo.DialTimeout(5*time.Second),
		kgo.RequestTimeoutOverhead(10*time.Second),
		kgo.MetadataMinAge(time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("replica: fetcher for broker %d at %s: %w", leader, addr, err)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	f := &fetcher{m: m, leader: leader, addr: addr, client: client, parts: map[storage.PartitionID]*fetchPart{},
		wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go f.run(ctx)
	return f, nil
}

// set follows p under epoch; a new partition or a new epoch truncates
// first.
func (f *fetcher) set(p *Partition, epoch int32) {
	f.mu.Lock()
	fp := f.parts[p.id]
	if fp == nil || fp.p != p || fp.epoch != epoch {
		f.parts[p.id] = &fetchPart{p: p, epoch: epoch, truncate: true}
	}
	f.mu.Unlock()
	f.poke()
}

// drop stops following a partition; it reports whether the fetcher has
// none left.
func (f *fetcher) drop(id storage.PartitionID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.parts, id)
	return len(f.parts) == 0
}

func (f *fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) stop() {
	f.cancel()
	<-f.done
	f.client.Close()
}

func (f *fetcher) run(ctx context.Context) {
	defer close(f.done)
	for ctx.Err() == nil {
		now := time.Now()
		f.mu.Lock()
		var truncate, fetch []*fetchPart
		next := time.Time{}
		for _, fp := range f.parts {
			switch {
			case now.Before(fp.retryAt):
				if next.IsZero() || fp.retryAt.Before(next) {
					next = fp.retryAt
				}
			case fp.truncate:
				truncate = append(truncate, fp)
			default:
				fetch = append(fetch, fp)
			}
		}
		f.mu.Unlock()
		if len(truncate) > 0 {
			f.truncate(ctx, truncate)
			continue
		}
		if len(fetch) == 0 {
			var timer <-chan time.Time
			if !next.IsZero() {
				timer = time.After(time.Until(next))
			}
			select {
			case <-ctx.Done():
			case <-f.wake:
			case <-timer:
			}
			continue
		}
		f.fetch(ctx, fetch)
	}
}

// current reports whether fp is still what the fetcher follows its
// partition as.
func (f *fetcher) current(fp *fetchPart) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[fp.p.id] == fp
}

func (f *fetcher) backoff(fps []*fetchPart, d time.Duration) {
	f.mu.Lock()
	until := time.Now().Add(d)
	for _, fp := range fps {
		fp.retryAt = until
	}
	f.mu.Unlock()
}

// epochBackoff is the pause after an answer that says the leader and this
// broker disagree on the leadership for a moment (one of them has not seen
// the newest state yet).
const epochBackoff = 50 * time.Millisecond

// truncate asks the leader where each partition's log diverged from its
// own and truncates there.
func (f *fetcher) truncate(ctx context.Context, fps []*fetchPart) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = f.m.self
	byTopic := map[string]int{} // index in req.Topics
	latest := map[*fetchPart]int32{}
	var ask []*fetchPart
	for _, fp := range fps {
		e := fp.p.LatestEpoch()
		latest[fp] = e
		if e < 0 {
			// No epoch of its own: keep what is known committed (all of
			// an empty log).
			if err := fp.p.TruncateTo(ctx, fp.p.TruncationOffset(-1, -1)); err != nil {
				f.m.log.Warn("truncation failed", "partition", fp.p.id.String(), "err", err)
				f.backoff([]*fetchPart{fp}, f.m.broker.ReplicaFetchBackoff)
				continue
			}
			f.truncated(fp)
			continue
		}
		i, ok := byTopic[fp.p.id.Topic]
		if !ok {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = fp.p.id.Topic
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[t.Topic] = i
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = fp.p.id.Partition, fp.epoch, e
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		ask = append(ask, fp)
	}
	if len(ask) == 0 {
		return
	}
	resp, err := f.request(ctx, req)
	if err != nil {
		f.backoff(ask, f.m.broker.ReplicaFetchBackoff)
		return
	}
	answers := map[storage.PartitionID]kmsg.OffsetForLeaderEpochResponseTopicPartition{}
	for _, t := range resp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
		for _, p := range t.Partitions {
			answers[storage.PartitionID{Topic: t.Topic, Partition: p.Partition}] = p
		}
	}
	for _, fp := range ask {
		a, ok := answers[fp.p.id]
		if !ok {
			f.backoff([]*fetchPart{fp}, f.m.broker.ReplicaFetchBackoff)
			continue
		}
		if err := kerr.ErrorForCode(a.ErrorCode); err != nil {
			f.m.log.Debug("leader refused the epoch query", "partition", fp.p.id.String(), "leader", f.leader, "err", err)
			f.backoff([]*fetchPart{fp}, epochBackoff)
			continue
		}
		if !f.current(fp) {
			continue
		}
		at := fp.p.TruncationOffset(a.LeaderEpoch, a.EndOffset)
		if leo := fp.p.LogEndOffset(); at < leo {
			f.m.log.Info("truncating divergent log suffix", "partition", fp.p.id.String(), "leader", f.leader,
				"from", at, "log_end", leo, "epoch", latest[fp], "leader_epoch", a.LeaderEpoch, "leader_end", a.EndOffset)
			f.m.truncations.Add(ctx, 1)
		}
		if err := fp.p.TruncateTo(ctx, at); err != nil {
			f.m.log.Warn("truncation failed", "partition", fp.p.id.String(), "err", err)
			f.backoff([]*fetchPart{fp}, f.m.broker.ReplicaFetchBackoff)
			continue
		}
		f.truncated(fp)
	}
}

func (f *fetcher) truncated(fp *fetchPart) {
	f.mu.Lock()
	fp.truncate = false
	f.mu.Unlock()
}

// fetch sends one Fetch for fps and appends what comes back.
func (f *fetcher) fetch(ctx context.Context, fps []*fetchPart) {
	b := f.m.broker
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = f.m.self
	req.MaxWaitMillis = int32(b.ReplicaFetchWaitMax.Milliseconds())
	req.MinBytes = b.ReplicaFetchMinBytes
	req.MaxBytes = b.ReplicaFetchResponseMaxBytes
	req.SessionEpoch = -1
	sent := map[storage.PartitionID]*fetchPart{}
	slices.SortFunc(fps, func(a, b *fetchPart) int {
		if a.p.id.Topic != b.p.id.Topic {
			if a.p.id.Topic < b.p.id.Topic {
				return -1
			}
			return 1
		}
		return int(a.p.id.Partition - b.p.id.Partition)
	})
	for _, fp := range fps {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != fp.p.id.Topic {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = fp.p.id.Topic
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = fp.p.id.Partition
		rp.CurrentLeaderEpoch = fp.epoch
		rp.FetchOffset = fp.p.FetchOffset()
		rp.LogStartOffset = fp.p.LogStartOffset()
		rp.PartitionMaxBytes = b.ReplicaFetchMaxBytes
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, rp)
		sent[fp.p.id] = fp
	}
	resp, err := f.request(ctx, req)
	if err != nil {
		f.backoff(fps, b.ReplicaFetchBackoff)
		return
	}
	fr := resp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(fr.ErrorCode); err != nil {
		f.m.log.Warn("replica fetch refused", "leader", f.leader, "err", err)
		f.backoff(fps, b.ReplicaFetchBackoff)
		return
	}
	for _, t := range fr.Topics {
		for i := range t.Partitions {
			rp := &t.Partitions[i]
			fp := sent[storage.PartitionID{Topic: t.Topic, Partition: rp.Partition}]
			if fp == nil || !f.current(fp) {
				continue
			}
			f.handle(ctx, fp, rp)
		}
	}
}

// handle applies one partition of a fetch response.
func (f *fetcher) handle(ctx context.Context, fp *fetchPart, rp *kmsg.FetchResponseTopicPartition) {
	p := fp.p
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
		n, aerr := p.AppendReplicated(ctx, rp.RecordBatches, rp.HighWatermark, rp.LogStartOffset)
		if n > 0 {
			f.m.replicated.Add(ctx, n, metric.WithAttributes(attribute.String("messaging.destination.name", p.id.Topic)))
		}
		switch {
		case aerr == nil:
		case errors.Is(aerr, storage.ErrNotContiguous):
			f.m.log.Warn("replicated batches do not follow the log: truncating again", "partition", p.id.String(), "err", aerr)
			f.mu.Lock()
			fp.truncate = true
			f.mu.Unlock()
		case errors.Is(aerr, ErrNotLeader):
		default:
			f.m.log.Warn("appending replicated batches failed", "partition", p.id.String(), "err", aerr)
			f.backoff([]*fetchPart{fp}, f.m.broker.ReplicaFetchBackoff)
		}
	case errors.Is(err, kerr.OffsetOutOfRange):
		if rp.LogStartOffset > p.FetchOffset() {
			// The leader has deleted what this replica would fetch next.
			f.m.log.Warn("follower fell behind the leader's log start: starting over there", "partition", p.id.String(),
				"log_end", p.LogEndOffset(), "leader_log_start", rp.LogStartOffset)
			if rerr := p.ResetTo(ctx, rp.LogStartOffset); rerr != nil {
				f.m.log.Warn("reset failed", "partition", p.id.String(), "err", rerr)
				f.backoff([]*fetchPart{fp}, f.m.broker.ReplicaFetchBackoff)
			}
			return
		}
		f.mu.Lock()
		fp.truncate = true // its log runs past the leader's
		f.mu.Unlock()
	case errors.Is(err, kerr.FencedLeaderEpoch), errors.Is(err, kerr.UnknownLeaderEpoch),
		errors.Is(err, kerr.NotLeaderForPartition), errors.Is(err, kerr.UnknownTopicOrPartition):
		f.backoff([]*fetchPart{fp}, epochBackoff)
	default:
		f.m.log.Warn("replica fetch of a partition failed", "partition", p.id.String(), "leader", f.leader, "err", err)
		f.backoff([]*fetchPart{fp}, f.m.broker.ReplicaFetchBackoff)
	}
}

// request sends req to the leader.
func (f *fetcher) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	seeds := f.client.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errors.New("replica: fetcher has no broker")
	}
	resp, err := seeds[0].Request(ctx, req)
	if err != nil && ctx.Err() == nil {
		f.m.log.Debug("replica fetcher request failed", "leader", f.leader, "addr", f.addr, "err", err)
	}
	return resp, err
}

// follow makes this broker replicate p from leader under epoch; a
// partition followed from another leader before moves.
func (m *Manager) follow(p *Partition, leader, epoch int32) {
	addr, ok := "", false
	if m.peers != nil {
		addr, ok = m.peers(leader)
	}
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	if m.stopFollowing {
		return
	}
	for id, f := range m.fetchers {
		if id != leader {
			if f.drop(p.id) {
				delete(m.fetchers, id)
				go f.stop()
			}
		}
	}
	if !ok {
		m.log.Warn("leader's address unknown: not replicating until it registers", "partition", p.id.String(), "leader", leader)
		return
	}
	f := m.fetchers[leader]
	var moved []*fetchPart
	if f != nil && f.addr != addr {
		// The leader came back at another address: its partitions move to
		// a fetcher for the new one.
		delete(m.fetchers, leader)
		moved = f.snapshot()
		go f.stop()
		f = nil
	}
	if f == nil {
		var err error
		if f, err = newFetcher(m, leader, addr); err != nil {
			m.log.Warn("cannot replicate", "partition", p.id.String(), "err", err)
			return
		}
		m.fetchers[leader] = f
	}
	for _, fp := range moved {
		if fp.p != p {
			f.set(fp.p, fp.epoch)
		}
	}
	f.set(p, epoch)
}

// following reports whether p is replicated from leader, at its current
// address, under epoch.
func (m *Manager) following(p *Partition, leader, epoch int32) bool {
	addr := ""
	if m.peers != nil {
		addr, _ = m.peers(leader)
	}
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	if m.stopFollowing {
		return true // nothing more to do
	}
	f := m.fetchers[leader]
	if f == nil || f.addr != addr {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.parts[p.id]
	return fp != nil && fp.p == p && fp.epoch == epoch
}

func (f *fetcher) snapshot() []*fetchPart {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Values(f.parts))
}

// unfollow stops replicating p.
func (m *Manager) unfollow(id storage.PartitionID) {
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	for lid, f := range m.fetchers {
		if f.drop(id) {
			delete(m.fetchers, lid)
			go f.stop()
		}
	}
}

// StopFollowing stops every fetcher for good: a broker in a controlled
// shutdown stops replicating before the controller takes it out of the
// ISRs, so that no leader takes it back in.
func (m *Manager) StopFollowing() {
	m.fetchMu.Lock()
	m.stopFollowing = true
	fs := slices.Collect(maps.Values(m.fetchers))
	clear(m.fetchers)
	m.fetchMu.Unlock()
	for _, f := range fs {
		f.stop()
	}
}
