package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/replica"
)

// Config holds the coordinator's settings, under Kafka's names.
type Config struct {
	// Partitions is offsets.topic.num.partitions: how many partitions
	// __consumer_offsets has, which decides each group's coordinator.
	Partitions int32
	// MinSessionTimeout and MaxSessionTimeout bound the session timeouts
	// members may ask for (group.min/max.session.timeout.ms).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// the first rebalance of an empty group waits for more members.
	InitialRebalanceDelay time.Duration
	// MaxGroupSize is group.max.size.
	MaxGroupSize int32
	// OffsetsRetention is offsets.retention.minutes; RetentionCheckInterval
	// is offsets.retention.check.interval.ms.
	OffsetsRetention       time.Duration
	RetentionCheckInterval time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes.
	MaxMetadataBytes int32
}

// Params are New's inputs. Clock and Logger may be nil; PartitionExists
// may be nil (every partition exists).
type Params struct {
	Config Config
	Store  Store
	Clock  Clock
	Logger *slog.Logger
	// PartitionExists tells whether a topic partition exists, so that a
	// commit for one that does not is refused (UNKNOWN_TOPIC_OR_PARTITION).
	PartitionExists func(topic string, partition int32) bool
	// Observer, when set, hears of every stored commit and group
	// metadata record (the broker publishes them as NATS events).
	Observer Observer
}

// Observer hears of what the coordinator stored in __consumer_offsets.
// Its methods run on the request's path with the coordinator's lock held:
// they must return at once (hand the event on, never wait for I/O) and
// must not call the Coordinator. What they are given is theirs to keep;
// ctx is the request's (or a timer's), for its trace context.
type Observer interface {
	// OffsetsCommitted is called once per OffsetCommit request whose
	// offsets were stored, with those offsets.
	OffsetsCommitted(ctx context.Context, c OffsetCommit)
	// GroupStored is called when a group's metadata record was stored:
	// a new generation that is empty, a generation's assignment (after the
	// leader's SyncGroup), a static member replaced.
	GroupStored(ctx context.Context, group string, v *GroupValue)
}

// OffsetCommit is one stored OffsetCommit request.
type OffsetCommit struct {
	Group string
	// Order is the offset in __consumer_offsets of the commit's first
	// record: it grows with every commit of the group.
	Order     int64
	Timestamp int64 // the commit time, Unix ms
	Offsets   []CommittedOffset
}

// CommittedOffset is one partition's committed offset.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Coordinator is the group coordinator for the __consumer_offsets
// partitions this broker leads. Its methods are safe for concurrent use;
// one mutex guards all groups (group requests are few next to produce and
// fetch, and a single lock keeps the state machine simple to reason about).
type Coordinator struct {
	cfg      Config
	store    Store
	clock    Clock
	log      *slog.Logger
	exists   func(string, int32) bool
	observer Observer

	mu     sync.Mutex
	parts  map[int32]*ownership
	groups map[string]*group
	closed bool
	stopGC func() bool
}

// ownership is the coordinator's hold on one partition of
// __consumer_offsets.
type ownership struct {
	loading bool
	// gen tells this hold from an earlier one of the same partition, so
	// that a load that finishes after the partition moved away and back is
	// discarded.
	gen int
}

// New returns a coordinator that owns no partition yet (see Sync).
func New(p Params) *Coordinator {
	if p.Clock == nil {
		p.Clock = SystemClock{}
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.PartitionExists == nil {
		p.PartitionExists = func(string, int32) bool { return true }
	}
	if p.Config.Partitions <= 0 {
		p.Config.Partitions = 50
	}
	return &Coordinator{cfg: p.Config, store: p.Store, clock: p.Clock, log: p.Logger.With("component", "group"),
		exists: p.PartitionExists, observer: p.Observer, parts: map[int32]*ownership{}, groups: map[string]*group{}}
}

// PartitionFor is the __consumer_offsets partition of a group, as Kafka
// computes it: abs(groupId.hashCode()) % partitions, with Java's String
// hash over UTF-16 code units.
func PartitionFor(groupID string, partitions int32) int32 {
	var h int32
	for _, r := range groupID {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -1<<31 {
		h = 0 // Kafka's Utils.abs maps MIN_VALUE to 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// SetPartitions sets how many partitions __consumer_offsets has: an
// existing topic's count decides where groups live, whatever
// offsets.topic.num.partitions says (as in Kafka). A change moves groups,
// so every group is dropped, to be loaded again by the next Sync.
func (c *Coordinator) SetPartitions(n int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 || n == c.cfg.Partitions {
		return
	}
	c.log.Info("__consumer_offsets has another partition count than configured", "partitions", n, "configured", c.cfg.Partitions)
	c.cfg.Partitions = n
	for p := range c.parts {
		c.unload(p)
	}
}

// PartitionFor is the __consumer_offsets partition of a group.
func (c *Coordinator) PartitionFor(groupID string) int32 {
	return PartitionFor(groupID, c.cfg.Partitions)
}

// Start runs the offset retention check every
// offsets.retention.check.interval.ms.
func (c *Coordinator) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scheduleGC()
}

func (c *Coordinator) scheduleGC() {
	if c.closed || c.cfg.RetentionCheckInterval <= 0 {
		return
	}
	c.stopGC = c.clock.AfterFunc(c.cfg.RetentionCheckInterval, func() {
		c.ExpireOffsets(context.Background())
		c.mu.Lock()
		defer c.mu.Unlock()
		c.scheduleGC()
	})
}

// Close stops every timer and answers waiting joins and syncs with
// NOT_COORDINATOR; the coordinator owns nothing afterwards.
func (c *Coordinator) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.stopGC != nil {
		c.stopGC()
	}
	for p := range c.parts {
		c.unload(p)
	}
}

// Sync makes the coordinator own exactly the partitions in led: it starts
// loading those it did not own (groups and offsets are read from the log
// in the background, and requests for them get
// COORDINATOR_LOAD_IN_PROGRESS meanwhile), and drops the groups of those it
// no longer leads.
func (c *Coordinator) Sync(led []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	want := map[int32]bool{}
	for _, p := range led {
		want[p] = true
		if _, ok := c.parts[p]; ok {
			continue
		}
		o := &ownership{loading: true, gen: nextGen()}
		c.parts[p] = o
		go c.load(p, o.gen)
	}
	for p := range c.parts {
		if !want[p] {
			c.unload(p)
		}
	}
}

var (
	genMu  sync.Mutex
	genSeq int
)

func nextGen() int {
	genMu.Lock()
	defer genMu.Unlock()
	genSeq++
	return genSeq
}

// Loaded reports whether the coordinator owns partition p and finished
// loading it.
func (c *Coordinator) Loaded(p int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.parts[p]
	return ok && !o.loading
}

// unload drops a partition's groups; their waiting members are told to
// find the new coordinator. Called with c.mu held.
func (c *Coordinator) unload(p int32) {
	delete(c.parts, p)
	for id, g := range c.groups {
		if g.partition != p {
			continue
		}
		c.stopGroup(g, kerr.NotCoordinator.Code)
		delete(c.groups, id)
	}
}

// stopGroup ends a group: timers stop and waiters get code.
func (c *Coordinator) stopGroup(g *group, code int16) {
	if g.joinStop != nil {
		g.joinStop()
		g.joinStop = nil
	}
	for _, stop := range g.pending {
		stop()
	}
	for _, m := range g.members {
		if m.sessionStop != nil {
			m.sessionStop()
			m.sessionStop = nil
		}
		c.answerJoin(m, joinResult{code: code, memberID: m.id})
		c.answerSync(m, code, nil)
	}
	g.state = stateDead
}

// load reads one partition's records and installs its groups.
func (c *Coordinator) load(p int32, gen int) {
	start := time.Now()
	groups := map[string]*group{}
	now := c.clock.Now()
	get := func(id string) *group {
		g := groups[id]
		if g == nil {
			g = newGroup(id, p, now)
			groups[id] = g
		}
		return g
	}
	values := map[string]*GroupValue{}
	records := 0
	err := c.store.Load(context.Background(), p, func(key, value []byte) error {
		records++
		k, err := DecodeKey(key)
		if err != nil {
			c.log.Warn("skipping a record of __consumer_offsets", "partition", p, "err", err)
			return nil
		}
		switch k.Kind {
		case OffsetKind:
			g := get(k.Group)
			pk := partitionKey{k.Topic, k.Partition}
			if value == nil {
				delete(g.offsets, pk)
				return nil
			}
			v, err := DecodeOffsetValue(value)
			if err != nil {
				c.log.Warn("skipping an offset of __consumer_offsets", "partition", p, "group", k.Group, "err", err)
				return nil
			}
			g.offsets[pk] = v
		case GroupKind:
			if value == nil {
				delete(values, k.Group)
				if g := groups[k.Group]; g != nil && len(g.offsets) == 0 {
					delete(groups, k.Group)
				}
				return nil
			}
			v, err := DecodeGroupValue(value)
			if err != nil {
				c.log.Warn("skipping group metadata of __consumer_offsets", "partition", p, "group", k.Group, "err", err)
				return nil
			}
			values[k.Group] = v
			get(k.Group)
		}
		return nil
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.parts[p]
	if !ok || o.gen != gen {
		return // the partition moved away meanwhile
	}
	if err != nil {
		// Leave the partition loading; the next Sync after it moves
		// retries. Clients keep getting a retriable error meanwhile.
		c.log.Error("loading __consumer_offsets partition failed", "partition", p, "err", err)
		delete(c.parts, p)
		return
	}
	for id, g := range groups {
		if _, ok := values[id]; !ok && len(g.offsets) == 0 {
			continue
		}
		if v := values[id]; v != nil {
			c.restore(g, v)
		}
		c.groups[id] = g
	}
	o.loading = false
	lvl := slog.LevelDebug
	if records > 0 {
		lvl = slog.LevelInfo
	}
	c.log.Log(context.Background(), lvl, "loaded __consumer_offsets partition", "partition", p, "records", records, "groups", len(groups),
		"took", time.Since(start).Round(time.Millisecond))
}

// restore fills a loaded group from its metadata record: an empty group,
// or a stable one whose members must heartbeat within their session
// timeouts, as after a coordinator move in Kafka.
func (c *Coordinator) restore(g *group, v *GroupValue) {
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	if v.CurrentStateTimestamp >= 0 {
		g.since = time.UnixMilli(v.CurrentStateTimestamp)
	}
	if len(v.Members) == 0 || g.protocol == "" {
		g.state = stateEmpty
		g.leader = ""
		return
	}
	g.state = stateStable
	leader := g.leader
	g.leader = ""
	for _, vm := range v.Members {
		m := &member{id: vm.MemberID, clientID: vm.ClientID, clientHost: vm.ClientHost, protocolType: g.protocolType,
			sessionTimeout: time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			protocols:      []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment:     vm.Assignment}
		m.rebalanceTimeout = time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond
		if vm.RebalanceTimeoutMillis < 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		if vm.InstanceID != nil {
			m.instanceID = *vm.InstanceID
		}
		g.add(m)
		c.heartbeat(g, m)
	}
	if g.members[leader] != nil {
		g.leader = leader
	}
	g.computeSubscriptions()
}

// group returns the group of id when this coordinator may serve it, or
// the error to answer with. Called with c.mu held.
func (c *Coordinator) owned(id string) (int32, error) {
	if c.closed {
		return 0, kerr.NotCoordinator
	}
	p := c.PartitionFor(id)
	o, ok := c.parts[p]
	switch {
	case !ok:
		return p, kerr.NotCoordinator
	case o.loading:
		return p, kerr.CoordinatorLoadInProgress
	}
	return p, nil
}

// storeGroup writes the group's metadata record. Called with c.mu held.
func (c *Coordinator) storeGroup(ctx context.Context, g *group) error {
	v := g.value()
	if _, err := c.store.Append(ctx, g.partition, []replica.KeyValue{{Key: GroupKey(g.id), Value: EncodeGroupValue(v)}}); err != nil {
		return err
	}
	if c.observer != nil {
		c.observer.GroupStored(ctx, g.id, v)
	}
	return nil
}

// code is the Kafka error code of an error from the store.
func code(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if err != nil {
		return kerr.UnknownServerError.Code
	}
	return 0
}

// heartbeat moves a member's session deadline and makes sure a timer
// watches it. Called with c.mu held.
func (c *Coordinator) heartbeat(g *group, m *member) {
	m.deadline = c.clock.Now().Add(m.sessionTimeout)
	if m.sessionStop == nil {
		c.armSession(g, m, m.sessionTimeout)
	}
}

func (c *Coordinator) armSession(g *group, m *member, d time.Duration) {
	m.sessionSeq++
	seq := m.sessionSeq
	m.sessionStop = c.clock.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if m.sessionStop == nil || m.sessionSeq != seq || c.groups[g.id] != g || g.members[m.id] != m {
			return // stopped, re-armed or replaced meanwhile
		}
		m.sessionStop = nil
		now := c.clock.Now()
		switch {
		case m.joinWait != nil || m.syncWait != nil:
			// A member waiting in JoinGroup or SyncGroup is alive.
			c.heartbeat(g, m)
		case now.Before(m.deadline):
			c.armSession(g, m, m.deadline.Sub(now))
		default:
			c.log.Info("member session expired", "group", g.id, "member", m.id, "session_timeout", m.sessionTimeout)
			c.removeMember(context.Background(), g, m, "session timeout")
		}
	})
}

// removeMember takes a member out (it left, was fenced or timed out) and
// rebalances the others. Called with c.mu held.
func (c *Coordinator) removeMember(ctx context.Context, g *group, m *member, reason string) {
	g.remove(m.id)
	c.answerJoin(m, joinResult{code: kerr.UnknownMemberID.Code, memberID: m.id})
	c.answerSync(m, kerr.UnknownMemberID.Code, nil)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		c.prepareRebalance(ctx, g, fmt.Sprintf("removing member %s (%s)", m.id, reason))
	case statePreparingRebalance:
		c.tryCompleteJoin(ctx, g)
	}
}

func (c *Coordinator) answerJoin(m *member, r joinResult) {
	if m.joinWait != nil {
		w := m.joinWait
		m.joinWait = nil
		w(r)
	}
}

func (c *Coordinator) answerSync(m *member, code int16, assignment []byte) {
	if m.syncWait != nil {
		w := m.syncWait
		m.syncWait = nil
		w(code, assignment)
	}
}

// Groups lists the ids of the groups loaded, sorted (for tests and
// diagnostics).
func (c *Coordinator) Groups() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.groups))
	for id := range c.groups {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
