package window

import (
	"errors"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Sentinel errors of Store's read methods.
var (
	// ErrClusterNotFound: the cluster is not configured.
	ErrClusterNotFound = errors.New("cluster not found")
	// ErrGroupNotFound: the group is unknown in the cluster, or expired.
	ErrGroupNotFound = errors.New("consumer group not found")
	// ErrTopicNotFound: no log-end offset was ever seen for the topic.
	ErrTopicNotFound = errors.New("topic not found")
)

// Config sets the window rules. Zero values take Burrow's defaults.
type Config struct {
	// Intervals is the number of commits (and log-end offsets) kept per
	// partition. Default 10.
	Intervals int
	// MinDistance: a commit closer than this to the previous one replaces it.
	MinDistance time.Duration
	// ExpireGroup: a group whose newest commit is older than this is
	// forgotten. Default 7 days.
	ExpireGroup time.Duration
	// Allow, when set, admits only the groups it matches; Deny rejects the
	// groups it matches. These are Burrow's group-allowlist/denylist
	// (formerly whitelist/blacklist).
	Allow, Deny *regexp.Regexp
	// Now is the clock (tests replace it). Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Intervals <= 0 {
		c.Intervals = 10
	}
	if c.ExpireGroup <= 0 {
		c.ExpireGroup = 7 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Store holds the windows of every configured cluster. It is safe for
// concurrent use; sources write to it and the API reads from it.
type Store struct {
	cfg      Config
	clusters map[string]*cluster // fixed after New
}

type cluster struct {
	mu     sync.RWMutex
	topics map[string][]*LogEndRing
	groups map[string]*group
}

type group struct {
	topics     map[string][]*partition
	lastCommit int64 // Unix ms of the newest appended commit
}

type partition struct {
	ring            *Ring // nil until the first commit
	owner, clientID string
}

// New returns a store for the named clusters.
func New(cfg Config, clusters ...string) *Store {
	s := &Store{cfg: cfg.withDefaults(), clusters: map[string]*cluster{}}
	for _, name := range clusters {
		s.clusters[name] = &cluster{topics: map[string][]*LogEndRing{}, groups: map[string]*group{}}
	}
	return s
}

// Config returns the store's rules with defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Accept reports whether the allow and deny lists admit group.
func (s *Store) Accept(group string) bool {
	if s.cfg.Allow != nil && !s.cfg.Allow.MatchString(group) {
		return false
	}
	return s.cfg.Deny == nil || !s.cfg.Deny.MatchString(group)
}

// AddLogEnd records a log-end offset of a topic partition; partitions is the
// topic's partition count, which may grow.
func (s *Store) AddLogEnd(clusterName, topic string, part, partitions int32, offset, timestamp int64) {
	c := s.clusters[clusterName]
	if c == nil || part < 0 || part >= partitions {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rings := c.topics[topic]
	for int32(len(rings)) < partitions {
		rings = append(rings, NewLogEndRing(s.cfg.Intervals))
	}
	c.topics[topic] = rings
	rings[part].Add(LogEnd{Offset: offset, Timestamp: timestamp})
}

// AddCommit records an offset commit of group for a topic partition.
// order places it in the commit stream; timestamp is in Unix ms. Commits are
// dropped when older than expire-group, when the group is not admitted, or
// when no log-end offset of the partition is known yet.
func (s *Store) AddCommit(clusterName, groupName, topic string, part int32, offset, order, timestamp int64) {
	c := s.clusters[clusterName]
	if c == nil || part < 0 {
		return
	}
	if timestamp < s.cfg.Now().Add(-s.cfg.ExpireGroup).UnixMilli() || !s.Accept(groupName) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rings := c.topics[topic]
	if int(part) >= len(rings) {
		return
	}
	logEnd, ok := rings[part].Latest()
	if !ok {
		return
	}
	p := c.partition(groupName, topic, part, int32(len(rings)))
	if p.ring == nil {
		p.ring = NewRing(s.cfg.Intervals)
	}
	if p.ring.Add(Commit{Offset: offset, Order: order, Timestamp: timestamp}, logEnd.Offset, s.cfg.MinDistance.Milliseconds()) {
		c.groups[groupName].lastCommit = timestamp
	}
}

// partition returns the group's partition, creating the group and every
// partition of the topic up to partitions (as Burrow does, so uncommitted
// partitions show as incomplete). Callers hold c.mu.
func (c *cluster) partition(groupName, topic string, part, partitions int32) *partition {
	g := c.groups[groupName]
	if g == nil {
		g = &group{topics: map[string][]*partition{}}
		c.groups[groupName] = g
	}
	ps := g.topics[topic]
	for int32(len(ps)) < max(partitions, part+1) {
		ps = append(ps, &partition{})
	}
	g.topics[topic] = ps
	return ps[part]
}

// SetOwner records which consumer (host and client id) owns a group
// partition, from group metadata.
func (s *Store) SetOwner(clusterName, groupName, topic string, part int32, owner, clientID string) {
	c := s.clusters[clusterName]
	if c == nil || part < 0 || !s.Accept(groupName) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rings := c.topics[topic]
	if int(part) >= len(rings) {
		return
	}
	p := c.partition(groupName, topic, part, int32(len(rings)))
	p.owner, p.clientID = owner, clientID
}

// ClearOwners forgets the owners of every partition of a group (the group
// has no members).
func (s *Store) ClearOwners(clusterName, groupName string) {
	c := s.clusters[clusterName]
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groups[groupName]; g != nil {
		for _, ps := range g.topics {
			for _, p := range ps {
				p.owner, p.clientID = "", ""
			}
		}
	}
}

// DeleteTopic forgets a topic, in the cluster and in every group.
func (s *Store) DeleteTopic(clusterName, topic string) {
	c := s.clusters[clusterName]
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.topics, topic)
	for _, g := range c.groups {
		delete(g.topics, topic)
	}
}

// DeleteGroup forgets a group (the API's DELETE); it reappears with its next
// commit.
func (s *Store) DeleteGroup(clusterName, groupName string) error {
	c := s.clusters[clusterName]
	if c == nil {
		return ErrClusterNotFound
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.groups, groupName)
	return nil
}

// ResetGroups forgets every group of a cluster: a source that switches to
// another commit stream (whose orders do not compare with the old one's)
// starts the windows afresh.
func (s *Store) ResetGroups(clusterName string) {
	c := s.clusters[clusterName]
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = map[string]*group{}
}

// Clusters returns the configured cluster names, sorted.
func (s *Store) Clusters() []string {
	out := make([]string, 0, len(s.clusters))
	for name := range s.clusters {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// HasCluster reports whether the cluster is configured.
func (s *Store) HasCluster(name string) bool { return s.clusters[name] != nil }

// Topics returns the topics of a cluster, sorted.
func (s *Store) Topics(clusterName string) ([]string, error) {
	c := s.clusters[clusterName]
	if c == nil {
		return nil, ErrClusterNotFound
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.topics))
	for t := range c.topics {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

// TopicOffsets returns the newest log-end offset of every partition of a
// topic that has one, in partition order.
func (s *Store) TopicOffsets(clusterName, topic string) ([]int64, error) {
	c := s.clusters[clusterName]
	if c == nil {
		return nil, ErrClusterNotFound
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	rings, ok := c.topics[topic]
	if !ok {
		return nil, ErrTopicNotFound
	}
	out := make([]int64, 0, len(rings))
	for _, r := range rings {
		if e, ok := r.Latest(); ok {
			out = append(out, e.Offset)
		}
	}
	return out, nil
}

// expired reports whether g went quiet for longer than expire-group.
func (s *Store) expired(g *group) bool {
	return g.lastCommit < s.cfg.Now().Add(-s.cfg.ExpireGroup).UnixMilli()
}

// Groups returns the groups of a cluster, sorted, forgetting expired ones.
func (s *Store) Groups(clusterName string) ([]string, error) {
	c := s.clusters[clusterName]
	if c == nil {
		return nil, ErrClusterNotFound
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.groups))
	for name, g := range c.groups {
		if s.expired(g) {
			delete(c.groups, name)
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// GroupsOfTopic returns the groups that have the topic, sorted.
func (s *Store) GroupsOfTopic(clusterName, topic string) ([]string, error) {
	c := s.clusters[clusterName]
	if c == nil {
		return nil, ErrClusterNotFound
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := []string{}
	for name, g := range c.groups {
		if _, ok := g.topics[topic]; ok && !s.expired(g) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// PartitionSnapshot is a copy of everything stored for one group partition,
// the input of the evaluator.
type PartitionSnapshot struct {
	Topic     string
	Partition int32
	// Commits are the stored commits, oldest first (at most Intervals).
	Commits []Commit
	// HasWindow is false for partitions the group never committed (they
	// exist because another partition of the topic was committed).
	HasWindow bool
	// Intervals is the window size, for completeness.
	Intervals int
	// LogEnds are the partition's recent log-end offsets, oldest first.
	LogEnds []LogEnd
	// CurrentLag is the newest log-end offset minus the newest committed
	// offset (0 when the commit is ahead of the last poll).
	CurrentLag      uint64
	Owner, ClientID string
}

// GroupSnapshot is a copy of a group's windows, partitions sorted by topic
// and partition.
type GroupSnapshot struct {
	Cluster, Group string
	Partitions     []PartitionSnapshot
}

// Group copies the windows of a group. An expired group is forgotten and
// reported as ErrGroupNotFound, as Burrow does on read.
func (s *Store) Group(clusterName, groupName string) (GroupSnapshot, error) {
	c := s.clusters[clusterName]
	if c == nil {
		return GroupSnapshot{}, ErrClusterNotFound
	}
	c.mu.RLock()
	g := c.groups[groupName]
	if g == nil {
		c.mu.RUnlock()
		return GroupSnapshot{}, ErrGroupNotFound
	}
	if s.expired(g) {
		c.mu.RUnlock()
		c.mu.Lock()
		if g2 := c.groups[groupName]; g2 != nil && s.expired(g2) {
			delete(c.groups, groupName)
		}
		c.mu.Unlock()
		return GroupSnapshot{}, ErrGroupNotFound
	}
	defer c.mu.RUnlock()
	snap := GroupSnapshot{Cluster: clusterName, Group: groupName}
	n := 0
	for _, ps := range g.topics {
		n += len(ps)
	}
	snap.Partitions = make([]PartitionSnapshot, 0, n)
	topics := make([]string, 0, len(g.topics))
	for t := range g.topics {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		rings := c.topics[t]
		for i, p := range g.topics[t] {
			ps := PartitionSnapshot{Topic: t, Partition: int32(i), Intervals: s.cfg.Intervals, Owner: p.owner, ClientID: p.clientID}
			if p.ring != nil {
				ps.HasWindow = true
				ps.Commits = slices.Clone(p.ring.Entries())
			}
			if i < len(rings) {
				ps.LogEnds = rings[i].AppendTo(make([]LogEnd, 0, s.cfg.Intervals))
				if le, ok := rings[i].Latest(); ok && len(ps.Commits) > 0 {
					if last := ps.Commits[len(ps.Commits)-1]; le.Offset > last.Offset {
						ps.CurrentLag = uint64(le.Offset - last.Offset)
					}
				}
			}
			snap.Partitions = append(snap.Partitions, ps)
		}
	}
	return snap, nil
}
