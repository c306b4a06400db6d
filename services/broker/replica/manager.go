// Package replica holds the partitions this broker hosts: each one's log
// (a storage.Log), its leadership state (leader, leader epoch, replicas,
// ISR), its high watermark and the fetches waiting for it, plus the
// broker-wide duties over all of them: following the metadata (opening,
// closing and deleting logs), replication, Kafka's checkpoint files, log
// retention, log compaction (the cleaner, cleaner.go) and the idempotent
// producers' state (sequence checks and snapshots, producer.go).
//
// Replication follows Kafka's design. A leader assigns offsets and tracks
// its followers from their fetches (replication.go): the high watermark is
// the smallest log end offset in the ISR, and acks=all produces wait for
// it to pass their records. A follower that has not caught up with the
// leader for replica.lag.time.max.ms leaves the ISR, and joins it again
// once it has caught up; the leader writes these ISR changes itself
// (ISRWriter). Followers fetch from their leader with the Kafka Fetch
// request and their broker id as replica id (fetcher.go), append what
// they get byte for byte (follower.go), and before fetching under a new
// leader epoch truncate any divergent suffix at the point the leader gives
// for their latest epoch (OffsetForLeaderEpoch).
//
// Files kept in the data directory, in Kafka's formats:
//
//	replication-offset-checkpoint          high watermarks, every 5 s and at shutdown
//	cleaner-offset-checkpoint              how far each compacted log is cleaned
//	<topic>-<partition>/leader-epoch-checkpoint   epoch start offsets, on each leader change
//	<topic>-<partition>/<offset>.snapshot  producer state at that log end offset,
//	                                       every 30 s when it changed and at shutdown
//
// Flushing follows Kafka's default: records are handed to the operating
// system on append and reach the disk when it writes them back, or at a
// clean shutdown (Close flushes every log); flush.messages forces an fsync
// every N records, through the storage backend. Durability against machine
// failure comes from replication, not from fsync.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/config"
	"github.com/runnel-io/runnel/services/broker/metadata"
)

// ISRWriter records a leader's ISR change in the cluster metadata,
// conditionally on the state version the leader holds, and returns the
// new version; *metadata.Store implements it. A lost race gives an error
// (metadata.ErrConflict): the leader then learns the new state from the
// metadata, as with any other change.
type ISRWriter interface {
	UpdateISR(ctx context.Context, topic string, partition, leader, leaderEpoch int32, isr []int32, version int32) (int32, error)
}

// Manager hosts partition replicas.
type Manager struct {
	self    int32
	dataDir string
	backend storage.Backend
	broker  *config.Broker
	log     *slog.Logger
	now     func() time.Time
	peers   func(id int32) (string, bool)
	isr     ISRWriter

	mu    sync.RWMutex
	parts map[storage.PartitionID]*Partition
	// hwCheckpoint holds the high watermarks read at start-up.
	hwCheckpoint map[storage.PartitionID]int64

	fetchMu       sync.Mutex
	fetchers      map[int32]*fetcher
	stopFollowing bool
	isrQueue      chan *Partition
	// isrFailed is when the ISR worker last logged a failed write of each
	// partition (the worker's own): a leader cut off from the coordinator
	// retries every tick, and says so every isrLogInterval.
	isrFailed map[storage.PartitionID]time.Time

	replicated  metric.Int64Counter
	truncations metric.Int64Counter
	isrChanges  metric.Int64Counter

	syncMu sync.Mutex

	// The log cleaner's state: how far each compacted partition is
	// cleaned, and which partitions' storage cannot compact (warned once).
	cleanMu     sync.Mutex
	cleaned     map[storage.PartitionID]int64
	noCompactor map[storage.PartitionID]bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Params are NewManager's inputs.
type Params struct {
	BrokerID int32
	DataDir  string
	Backend  storage.Backend
	Broker   *config.Broker
	Logger   *slog.Logger
	// Now is the clock (retention, segment.ms); nil means time.Now.
	Now func() time.Time
	// Peers gives another broker's address, for fetching from it when it
	// leads; nil means this broker never follows.
	Peers func(id int32) (string, bool)
	// ISR records the ISR changes of partitions this broker leads; nil
	// means ISRs never change (a lone broker).
	ISR           ISRWriter
	MeterProvider metric.MeterProvider
}

// NewManager returns a manager with no partitions. It reads the high
// watermark checkpoint of the data directory, if there is one.
func NewManager(p Params) *Manager {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.MeterProvider == nil {
		p.MeterProvider = noop.NewMeterProvider()
	}
	meter := p.MeterProvider.Meter("github.com/runnel-io/runnel/services/broker/replica")
	replicated, _ := meter.Int64Counter("runnel.replica.fetched_records", metric.WithDescription("records a follower appended from its leaders"))
	truncations, _ := meter.Int64Counter("runnel.replica.truncations", metric.WithDescription("divergent log suffixes a follower truncated"))
	isrChanges, _ := meter.Int64Counter("runnel.replica.isr_changes", metric.WithDescription("ISR shrinks and expansions written by this broker as leader"))
	ctx, cancel := context.WithCancel(context.Background())
	var m *Manager
	// Kafka's UnderReplicatedPartitions and UnderMinIsrPartitions, and the
	// number of partitions led: what an operator watches first.
	led, _ := meter.Int64ObservableGauge("runnel.replica.leader_partitions", metric.WithDescription("partitions this broker leads"))
	under, _ := meter.Int64ObservableGauge("runnel.replica.under_replicated_partitions",
		metric.WithDescription("led partitions whose ISR is smaller than their replica set"))
	underMin, _ := meter.Int64ObservableGauge("runnel.replica.under_min_isr_partitions",
		metric.WithDescription("led partitions whose ISR is smaller than min.insync.replicas: acks=all produces to them fail"))
	_, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var nLed, nUnder, nUnderMin int64
		for _, p := range m.Partitions() {
			st := p.State()
			if st.Leader != m.self {
				continue
			}
			nLed++
			if len(st.ISR) < len(st.Replicas) {
				nUnder++
			}
			if int32(len(st.ISR)) < p.Config().MinInsyncReplicas {
				nUnderMin++
			}
		}
		o.ObserveInt64(led, nLed)
		o.ObserveInt64(under, nUnder)
		o.ObserveInt64(underMin, nUnderMin)
		return nil
	}, led, under, underMin)
	m = &Manager{self: p.BrokerID, dataDir: p.DataDir, backend: p.Backend, broker: p.Broker,
		log: p.Logger.With("component", "replica"), now: p.Now, parts: map[storage.PartitionID]*Partition{},
		peers: p.Peers, isr: p.ISR, fetchers: map[int32]*fetcher{}, isrQueue: make(chan *Partition, 1024), isrFailed: map[storage.PartitionID]time.Time{},
		replicated: replicated, truncations: truncations, isrChanges: isrChanges,
		noCompactor: map[storage.PartitionID]bool{}, ctx: ctx, cancel: cancel}
	m.hwCheckpoint = map[storage.PartitionID]int64{}
	if data, err := os.ReadFile(filepath.Join(p.DataDir, HighWatermarkFile)); err == nil {
		if offs, err := ParseOffsets(data); err == nil {
			m.hwCheckpoint = offs
		} else {
			m.log.Warn("unreadable high watermark checkpoint: starting from zero", "err", err)
		}
	}
	return m
}

// Partition returns the hosted partition, or nil.
func (m *Manager) Partition(topic string, partition int32) *Partition {
	m.mu.RLock()
	p := m.parts[storage.PartitionID{Topic: topic, Partition: partition}]
	m.mu.RUnlock()
	return p
}

// Partitions returns every hosted partition.
func (m *Manager) Partitions() []*Partition {
	m.mu.RLock()
	out := make([]*Partition, 0, len(m.parts))
	for _, p := range m.parts {
		out = append(out, p)
	}
	m.mu.RUnlock()
	return out
}

// Sync makes the hosted partitions match the metadata: it opens the
// partitions assigned to this broker, applies leadership and config
// changes, and closes and deletes the data of partitions that left the
// metadata while this process watched (a deleted topic). Logs on disk that
// the metadata does not name are left alone, as Kafka leaves stray logs.
func (m *Manager) Sync(ctx context.Context, topics []*metadata.Topic) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	want := map[storage.PartitionID]bool{}
	var errs []error
	for _, t := range topics {
		if t.Deleting {
			continue
		}
		cfg := m.broker.Topic(t.Config)
		for i := range t.Partitions {
			mp := &t.Partitions[i]
			if !mp.HasReplica(m.self) {
				continue
			}
			id := storage.PartitionID{Topic: t.Name, Partition: mp.ID}
			want[id] = true
			p := m.Partition(t.Name, mp.ID)
			if p == nil {
				var err error
				if p, err = m.open(ctx, id, cfg); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if old := p.Config(); storageChanged(old, &cfg) {
				if err := m.reopen(ctx, p, cfg); err != nil {
					errs = append(errs, err)
				}
			}
			c := cfg
			p.cfg.Store(&c)
			old := p.State()
			if old.Version != mp.StateVersion || old.Leader != mp.Leader || old.LeaderEpoch != mp.LeaderEpoch ||
				!equal(old.ISR, mp.ISR) || !equal(old.Replicas, mp.Replicas) {
				st := State{Leader: mp.Leader, LeaderEpoch: mp.LeaderEpoch, Replicas: mp.Replicas, ISR: mp.ISR, Version: mp.StateVersion}
				applied, err := p.setState(st, m.now())
				if err != nil {
					errs = append(errs, err)
				}
				if applied {
					m.roleChanged(p, old, st)
				}
			}
			// A follower whose leader was not known yet (or moved to
			// another address) starts replicating once it is.
			if st := p.State(); st.Leader >= 0 && st.Leader != m.self && !m.following(p, st.Leader, st.LeaderEpoch) {
				m.follow(p, st.Leader, st.LeaderEpoch)
			}
		}
	}
	for _, p := range m.Partitions() {
		if !want[p.id] {
			if err := m.remove(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// storageChanged reports whether settings the log was opened with changed.
func storageChanged(a, b *config.Topic) bool {
	return a.SegmentBytes != b.SegmentBytes || a.SegmentMs != b.SegmentMs || a.SegmentIndexBytes != b.SegmentIndexBytes ||
		a.IndexIntervalBytes != b.IndexIntervalBytes || a.FileDeleteDelayMs != b.FileDeleteDelayMs || a.FlushMessages != b.FlushMessages
}

// reopen closes a partition's log and opens it again with new storage
// settings, with appends held off meanwhile. Reads that race with it fail
// with a retriable error (the log is closed), as during a leader change.
func (m *Manager) reopen(ctx context.Context, p *Partition, cfg config.Topic) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.Log().Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
		return fmt.Errorf("replica: reopen %s: %w", p.id, err)
	}
	l, err := m.backend.Open(ctx, p.id, cfg.Storage(m.dataDir))
	if err != nil {
		return fmt.Errorf("replica: reopen %s: %w", p.id, err)
	}
	p.logRef.Store(&logRef{l})
	m.log.Info("reopened partition with new log settings", "partition", p.id.String(), "segment_bytes", cfg.SegmentBytes)
	return nil
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (m *Manager) open(ctx context.Context, id storage.PartitionID, cfg config.Topic) (*Partition, error) {
	l, err := m.backend.Open(ctx, id, cfg.Storage(m.dataDir))
	if err != nil {
		return nil, fmt.Errorf("replica: open %s: %w", id, err)
	}
	p, err := newPartition(ctx, id, m.self, filepath.Join(m.dataDir, id.String()), l, cfg, m.hwCheckpoint[id])
	if err != nil {
		l.Close()
		return nil, err
	}
	p.isrQueue = m.isrQueue
	m.mu.Lock()
	m.parts[id] = p
	m.mu.Unlock()
	m.log.Debug("opened partition", "partition", id.String(), "log_start", l.StartOffset(), "log_end", l.EndOffset())
	return p, nil
}

func (m *Manager) remove(ctx context.Context, p *Partition) error {
	m.unfollow(p.id)
	m.mu.Lock()
	delete(m.parts, p.id)
	m.mu.Unlock()
	p.deleted.Store(true)
	p.wake()
	p.signal()
	if err := m.backend.Delete(ctx, p.id); err != nil {
		return fmt.Errorf("replica: delete %s: %w", p.id, err)
	}
	_ = os.Remove(filepath.Join(p.dir, LeaderEpochFile))
	_ = os.Remove(p.dir) // only if the backend left it empty
	m.log.Info("deleted partition", "partition", p.id.String())
	return nil
}

// producerInterval is how often idle producers expire and changed
// producer state is snapshotted, which bounds how much log a restart after
// a crash rescans to rebuild it.
const producerInterval = 30 * time.Second

// Start runs the background loops: retention (every
// log.retention.check.interval.ms), the high-watermark checkpoint (every
// 5 s, Kafka's replica.high.watermark.checkpoint.interval.ms) and the
// producer state upkeep (every 30 s) and, with log.cleaner.enable, the log
// cleaner (every log.cleaner.backoff.ms).
func (m *Manager) Start() {
	m.wg.Add(4)
	go m.isrLoop()
	go m.every(m.broker.RetentionCheckInterval, func() { m.EnforceRetention(m.ctx) })
	go m.every(5*time.Second, func() {
		if err := m.CheckpointHighWatermarks(); err != nil {
			m.log.Warn("high-watermark checkpoint failed", "err", err)
		}
	})
	go m.every(producerInterval, m.MaintainProducers)
	if m.broker.CleanerEnable {
		m.wg.Add(1)
		go m.every(max(m.broker.CleanerBackoff, 10*time.Millisecond), func() { m.CleanLogs(m.ctx) })
	}
}

// MaintainProducers expires producers idle for producer.id.expiration.ms
// and snapshots the producer state of partitions where it changed.
func (m *Manager) MaintainProducers() {
	now := m.now().UnixMilli()
	for _, p := range m.Partitions() {
		if n := p.expireProducers(now, m.broker.ProducerIDExpiration.Milliseconds()); n > 0 {
			m.log.Debug("expired idle producers", "partition", p.id.String(), "producers", n)
		}
		if err := p.SnapshotProducers(); err != nil {
			m.log.Warn("producer state snapshot failed", "partition", p.id.String(), "err", err)
		}
	}
}

func (m *Manager) every(d time.Duration, f func()) {
	defer m.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// CheckpointHighWatermarks writes replication-offset-checkpoint.
func (m *Manager) CheckpointHighWatermarks() error {
	offsets := map[storage.PartitionID]int64{}
	for _, p := range m.Partitions() {
		offsets[p.id] = p.HighWatermark()
	}
	return writeFileAtomic(filepath.Join(m.dataDir, HighWatermarkFile), FormatOffsets(offsets))
}

// Close stops the loops, checkpoints and closes every log (which flushes
// them).
func (m *Manager) Close() error {
	m.StopFollowing()
	m.cancel()
	m.wg.Wait()
	errs := []error{m.CheckpointHighWatermarks()}
	for _, p := range m.Partitions() {
		p.wake()
		if !p.deleted.Load() {
			errs = append(errs, p.SnapshotProducers())
		}
		if err := p.Log().Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// roleChanged starts or stops replication after a partition's state
// changed from old to st: a follower fetches from its leader (truncating
// first when the leader epoch is new), a leader or an offline partition
// fetches from nobody.
func (m *Manager) roleChanged(p *Partition, old, st State) {
	switch {
	case st.Leader == m.self || st.Leader < 0:
		m.unfollow(p.id)
		if st.Leader == m.self && (old.Leader != m.self || old.LeaderEpoch != st.LeaderEpoch) {
			m.log.Info("leading partition", "partition", p.id.String(), "leader_epoch", st.LeaderEpoch, "isr", st.ISR,
				"log_end", p.LogEndOffset(), "high_watermark", p.HighWatermark())
		}
	case old.Leader != st.Leader || old.LeaderEpoch != st.LeaderEpoch:
		m.log.Debug("following partition", "partition", p.id.String(), "leader", st.Leader, "leader_epoch", st.LeaderEpoch)
		m.follow(p, st.Leader, st.LeaderEpoch)
	}
}

// isrLoop writes the ISR changes of led partitions: at once for a
// follower that has caught up (queued by FollowerFetch), and every half
// replica.lag.time.max.ms for followers that fell behind, as Kafka checks.
func (m *Manager) isrLoop() {
	defer m.wg.Done()
	lag := m.broker.ReplicaLagTimeMax
	t := time.NewTicker(max(lag/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case p := <-m.isrQueue:
			m.updateISR(p)
		case <-t.C:
			for _, p := range m.Partitions() {
				if p.IsLeader() {
					m.updateISR(p)
				}
			}
		}
	}
}

// isrLogInterval is how often a partition's failing ISR writes are logged.
const isrLogInterval = 30 * time.Second

// updateISR writes the ISR p's leader wants, when it differs from the one
// it has.
func (m *Manager) updateISR(p *Partition) {
	if m.isr == nil {
		return
	}
	st, ok := p.wantedISR(m.now(), m.broker.ReplicaLagTimeMax)
	if !ok {
		return
	}
	old := p.State()
	v, err := m.isr.UpdateISR(m.ctx, p.id.Topic, p.id.Partition, st.Leader, st.LeaderEpoch, st.ISR, st.Version)
	if err != nil {
		if last, ok := m.isrFailed[p.id]; m.ctx.Err() == nil && (!ok || time.Since(last) >= isrLogInterval) {
			m.isrFailed[p.id] = time.Now()
			m.log.Info("ISR change not written; retrying", "partition", p.id.String(), "isr", st.ISR, "err", err)
		}
		return
	}
	delete(m.isrFailed, p.id)
	st.Version = v
	if _, err := p.setState(st, m.now()); err != nil {
		m.log.Warn("applying ISR change", "partition", p.id.String(), "err", err)
	}
	change := "expanded"
	if len(st.ISR) < len(old.ISR) {
		change = "shrank"
	}
	m.isrChanges.Add(m.ctx, 1)
	m.log.Info("ISR "+change, "partition", p.id.String(), "from", old.ISR, "to", st.ISR, "high_watermark", p.HighWatermark())
}
