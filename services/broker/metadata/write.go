package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/go-zookeeper/zk"
)

var acl = zk.WorldACL(zk.PermAll)

// CreateTopic writes a new topic: its config overrides, its assignment
// and, when this broker is the controller, each partition's first state
// (leader = the first live replica, ISR = the live replicas, leader epoch 0).
// The assignment and the states are created in one multi, so a watcher
// never sees half a topic. It returns ErrTopicExists when the name is taken.
func (s *Store) CreateTopic(ctx context.Context, spec Spec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	topicPath := s.p("/brokers/topics/" + spec.Name)
	if ok, _, err := s.conn.Exists(topicPath); err != nil {
		return fmt.Errorf("metadata: create topic %s: %w", spec.Name, err)
	} else if ok {
		return fmt.Errorf("%w: %s", ErrTopicExists, spec.Name)
	}
	if err := s.writeConfig(spec.Name, spec.Config, false); err != nil {
		return err
	}
	a := assignmentJSON{Version: 2, Partitions: map[string][]int32{}, AddingReplicas: map[string][]int32{}, RemovingReplicas: map[string][]int32{}}
	for i, r := range spec.Assignment {
		a.Partitions[strconv.Itoa(i)] = r
	}
	body, _ := json.Marshal(a)
	ops := []any{&zk.CreateRequest{Path: topicPath, Data: body, Acl: acl}}
	if s.IsController() {
		ops = append(ops, &zk.CreateRequest{Path: topicPath + "/partitions", Acl: acl})
		for i, replicas := range spec.Assignment {
			ops = append(ops, s.createStateOps(spec.Name, int32(i), replicas)...)
		}
	}
	if _, err := s.conn.Multi(ops...); err != nil {
		if errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("%w: %s", ErrTopicExists, spec.Name)
		}
		return fmt.Errorf("metadata: create topic %s: %w", spec.Name, err)
	}
	if err := s.loadTopic(spec.Name); err != nil {
		return err
	}
	s.notify()
	return nil
}

// createStateOps returns the creates of a new partition's znode and its
// first state.
func (s *Store) createStateOps(topic string, p int32, replicas []int32) []any {
	live := s.liveSet()
	st := stateJSON{Version: 1, Leader: -1, ISR: []int32{}, ControllerEpoch: s.controllerEpoch()}
	for _, r := range replicas {
		if live[r] {
			st.ISR = append(st.ISR, r)
			if st.Leader < 0 {
				st.Leader = r
			}
		}
	}
	body, _ := json.Marshal(st)
	base := s.p("/brokers/topics/" + topic + "/partitions/" + strconv.Itoa(int(p)))
	return []any{
		&zk.CreateRequest{Path: base, Acl: acl},
		&zk.CreateRequest{Path: base + "/state", Data: body, Acl: acl},
	}
}

func (s *Store) liveSet() map[int32]bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	live := make(map[int32]bool, len(s.brokers))
	for id := range s.brokers {
		live[id] = true
	}
	return live
}

func (s *Store) controllerEpoch() int32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ctrlEpoch
}

// writeConfig creates or replaces /config/topics/<t>; notifyChange adds
// a /config/changes entry, as Kafka does when a topic's config is altered.
func (s *Store) writeConfig(topic string, cfg map[string]string, notifyChange bool) error {
	if cfg == nil {
		cfg = map[string]string{}
	}
	body, _ := json.Marshal(configJSON{Version: 1, Config: cfg})
	p := s.p("/config/topics/" + topic)
	if _, err := s.conn.Set(p, body, -1); errors.Is(err, zk.ErrNoNode) {
		if _, err := s.conn.Create(p, body, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("metadata: write %s config: %w", topic, err)
		}
	} else if err != nil {
		return fmt.Errorf("metadata: write %s config: %w", topic, err)
	}
	if notifyChange {
		note, _ := json.Marshal(map[string]any{"version": 2, "entity_path": "topics/" + topic})
		if _, err := s.conn.Create(s.p("/config/changes/config_change_"), note, zk.FlagSequence, acl); err != nil {
			return fmt.Errorf("metadata: config change notification: %w", err)
		}
	}
	return nil
}

// SetTopicConfig replaces a topic's config overrides.
func (s *Store) SetTopicConfig(ctx context.Context, topic string, cfg map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, ok := s.Topic(topic); !ok {
		return fmt.Errorf("%w: %s", ErrNoTopic, topic)
	}
	if err := s.writeConfig(topic, cfg, true); err != nil {
		return err
	}
	if err := s.loadTopic(topic); err != nil {
		return err
	}
	s.notify()
	return nil
}

// AddPartitions appends partitions with the given replica assignments
// (CreatePartitions). The assignment update is conditional on the version
// read, so a concurrent change gives ErrConflict.
func (s *Store) AddPartitions(ctx context.Context, topic string, add [][]int32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	topicPath := s.p("/brokers/topics/" + topic)
	data, st, err := s.conn.Get(topicPath)
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("%w: %s", ErrNoTopic, topic)
	}
	if err != nil {
		return fmt.Errorf("metadata: read topic %s: %w", topic, err)
	}
	var a assignmentJSON
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("metadata: topic %s assignment: %w", topic, err)
	}
	if a.AddingReplicas == nil {
		a.AddingReplicas = map[string][]int32{}
	}
	if a.RemovingReplicas == nil {
		a.RemovingReplicas = map[string][]int32{}
	}
	n := len(a.Partitions)
	for i, r := range add {
		a.Partitions[strconv.Itoa(n+i)] = r
	}
	a.Version = 2
	body, _ := json.Marshal(a)
	ops := []any{&zk.SetDataRequest{Path: topicPath, Data: body, Version: st.Version}}
	if s.IsController() {
		if ok, _, _ := s.conn.Exists(topicPath + "/partitions"); !ok {
			ops = append(ops, &zk.CreateRequest{Path: topicPath + "/partitions", Acl: acl})
		}
		for i, r := range add {
			ops = append(ops, s.createStateOps(topic, int32(n+i), r)...)
		}
	}
	if _, err := s.conn.Multi(ops...); err != nil {
		if errors.Is(err, zk.ErrBadVersion) {
			return fmt.Errorf("%w: topic %s", ErrConflict, topic)
		}
		return fmt.Errorf("metadata: add partitions to %s: %w", topic, err)
	}
	if err := s.loadTopic(topic); err != nil {
		return err
	}
	s.notify()
	return nil
}

// DeleteTopic asks for a topic's deletion (/admin/delete_topics/<t>); the
// controller carries it out, at once when that is this broker.
func (s *Store) DeleteTopic(ctx context.Context, topic string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if ok, _, err := s.conn.Exists(s.p("/brokers/topics/" + topic)); err != nil {
		return fmt.Errorf("metadata: delete topic %s: %w", topic, err)
	} else if !ok {
		return fmt.Errorf("%w: %s", ErrNoTopic, topic)
	}
	if _, err := s.conn.Create(s.p("/admin/delete_topics/"+topic), nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("metadata: delete topic %s: %w", topic, err)
	}
	if s.IsController() {
		if err := s.completeDeletion(topic); err != nil {
			return err
		}
	}
	s.notify()
	return nil
}

// completeDeletion removes a topic's znodes, then its deletion request.
func (s *Store) completeDeletion(topic string) error {
	if err := s.deleteTree(s.p("/brokers/topics/" + topic)); err != nil {
		return err
	}
	if err := s.deleteTree(s.p("/config/topics/" + topic)); err != nil {
		return err
	}
	if err := s.conn.Delete(s.p("/admin/delete_topics/"+topic), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("metadata: finish deleting %s: %w", topic, err)
	}
	s.mu.Lock()
	delete(s.topics, topic)
	s.mu.Unlock()
	s.log.Info("deleted topic", "topic", topic)
	return nil
}

func (s *Store) deleteTree(p string) error {
	children, _, err := s.conn.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metadata: list %s: %w", p, err)
	}
	for _, c := range children {
		if err := s.deleteTree(p + "/" + c); err != nil {
			return err
		}
	}
	if err := s.conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("metadata: delete %s: %w", p, err)
	}
	return nil
}

// onControllerElected does what a new controller does first: finish
// pending deletions and give every leaderless partition a leader.
func (s *Store) onControllerElected() error {
	names, _, err := s.conn.Children(s.p("/admin/delete_topics"))
	if err != nil {
		return fmt.Errorf("metadata: list deletions: %w", err)
	}
	for _, n := range names {
		if err := s.completeDeletion(n); err != nil {
			return err
		}
	}
	return s.electLeaders(nil)
}

// electLeaders gives a leader to each partition (of t, or of every topic
// when t is nil) whose leader is not alive: the first live replica of the
// ISR, with the leader epoch bumped and the ISR shrunk to the live
// members; a partition without a state yet gets its first one. Only the
// controller calls it. Updates are conditional on the state's version.
func (s *Store) electLeaders(t *Topic) error {
	topics := []*Topic{t}
	if t == nil {
		topics = s.Topics()
	}
	live := s.liveSet()
	epoch := s.controllerEpoch()
	for _, t := range topics {
		if t.Deleting {
			continue
		}
		changed := false
		for _, p := range t.Partitions {
			if p.StateVersion >= 0 && p.Leader >= 0 && live[p.Leader] {
				continue
			}
			base := s.p("/brokers/topics/" + t.Name + "/partitions/" + strconv.Itoa(int(p.ID)))
			if p.StateVersion < 0 {
				_ = s.ensure(base[len(s.chroot):])
				ops := s.createStateOps(t.Name, p.ID, p.Replicas)
				if _, err := s.conn.Create(base+"/state", ops[1].(*zk.CreateRequest).Data, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
					return fmt.Errorf("metadata: create state of %s-%d: %w", t.Name, p.ID, err)
				}
				changed = true
				continue
			}
			st := stateJSON{Version: 1, Leader: -1, LeaderEpoch: p.LeaderEpoch + 1, ControllerEpoch: epoch, ISR: []int32{}}
			for _, r := range p.ISR {
				if live[r] {
					st.ISR = append(st.ISR, r)
				}
			}
			for _, r := range p.Replicas {
				if slices.Contains(st.ISR, r) {
					st.Leader = r
					break
				}
			}
			if st.Leader < 0 {
				if p.Leader == -1 {
					continue // still nobody to elect: leave it offline
				}
				st.ISR = p.ISR // Kafka keeps the last ISR of an offline partition
			}
			body, _ := json.Marshal(st)
			if _, err := s.conn.Set(base+"/state", body, p.StateVersion); err != nil && !errors.Is(err, zk.ErrBadVersion) {
				return fmt.Errorf("metadata: elect leader of %s-%d: %w", t.Name, p.ID, err)
			}
			s.log.Info("elected leader", "topic", t.Name, "partition", p.ID, "leader", st.Leader, "leader_epoch", st.LeaderEpoch)
			changed = true
		}
		if changed {
			if _, err := s.readTopic(t.Name); err != nil {
				return err
			}
		}
	}
	return nil
}
