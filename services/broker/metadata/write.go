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
// (see FirstState), fenced by the controller epoch. The assignment and the
// states are created in one multi, so a watcher never sees half a topic;
// on another broker the controller creates the states when it sees the
// topic. It returns ErrTopicExists when the name is taken.
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
	body := assignmentBody(&Assignment{Replicas: spec.Assignment})
	ops := []any{&zk.CreateRequest{Path: topicPath, Data: body, Acl: acl}}
	fenced := false
	if fence, ok := s.fence(); ok {
		fenced = true
		ops = append([]any{fence}, ops...)
		ops = append(ops, &zk.CreateRequest{Path: topicPath + "/partitions", Acl: acl})
		for i, replicas := range spec.Assignment {
			ops = append(ops, s.createStateOps(spec.Name, int32(i), replicas)...)
		}
	}
	if err := s.multi(fenced, ops); err != nil {
		if errors.Is(err, ErrNotController) {
			// Lost the office meanwhile: write the topic alone and let
			// the new controller create its states.
			if _, err := s.conn.Create(topicPath, body, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return fmt.Errorf("metadata: create topic %s: %w", spec.Name, err)
			}
		} else if errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("%w: %s", ErrTopicExists, spec.Name)
		} else {
			return fmt.Errorf("metadata: create topic %s: %w", spec.Name, err)
		}
	}
	if _, err := s.readTopic(spec.Name); err != nil {
		return err
	}
	s.notify()
	return nil
}

// FirstState is a new partition's first leader and ISR: the ISR is the
// live replicas, the leader the first of them (the preferred replica when
// it is alive), leader epoch 0. Without a live replica the leader is -1.
func FirstState(replicas []int32, live func(int32) bool) (leader int32, isr []int32) {
	leader, isr = -1, []int32{}
	for _, r := range replicas {
		if live(r) {
			isr = append(isr, r)
			if leader < 0 {
				leader = r
			}
		}
	}
	return leader, isr
}

// createStateOps returns the creates of a new partition's znode and its
// first state.
func (s *Store) createStateOps(topic string, p int32, replicas []int32) []any {
	live := s.liveSet()
	st := stateJSON{Version: 1, ControllerEpoch: s.controllerEpoch()}
	st.Leader, st.ISR = FirstState(replicas, func(id int32) bool { return live[id] })
	body, _ := json.Marshal(st)
	base := s.p("/brokers/topics/" + topic + "/partitions/" + strconv.Itoa(int(p)))
	return []any{
		&zk.CreateRequest{Path: base, Acl: acl},
		&zk.CreateRequest{Path: base + "/state", Data: body, Acl: acl},
	}
}

// fence returns the check of /controller_epoch that every controller
// write carries, when this broker is the controller.
func (s *Store) fence() (*zk.CheckVersionRequest, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.controllerID != s.cfg.Self.ID {
		return nil, false
	}
	return &zk.CheckVersionRequest{Path: s.p("/controller_epoch"), Version: s.ctrlEpochVersion}, true
}

// multi runs ops; with fenced, ops[0] is the controller-epoch check, and
// its failure means another broker has become controller: the election is
// run again and ErrNotController returned. A failed conditional update of
// another op gives ErrConflict; other errors are returned as they are.
func (s *Store) multi(fenced bool, ops []any) error {
	res, err := s.conn.Multi(ops...)
	if err == nil {
		return nil
	}
	if fenced && len(res) > 0 && (errors.Is(res[0].Error, zk.ErrBadVersion) || errors.Is(res[0].Error, zk.ErrNoNode)) {
		s.log.Warn("controller epoch moved on: another broker is controller")
		s.mu.Lock()
		if s.controllerID == s.cfg.Self.ID {
			s.controllerID = -1
		}
		s.mu.Unlock()
		s.markDirty("controller")
		return ErrNotController
	}
	for _, r := range res {
		if errors.Is(r.Error, zk.ErrBadVersion) {
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
	}
	return err
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
	if _, err := s.readTopic(topic); err != nil {
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
	fence, fenced := s.fence()
	if fenced {
		ops = append([]any{fence}, ops...)
		if ok, _, _ := s.conn.Exists(topicPath + "/partitions"); !ok {
			ops = append(ops, &zk.CreateRequest{Path: topicPath + "/partitions", Acl: acl})
		}
		for i, r := range add {
			ops = append(ops, s.createStateOps(topic, int32(n+i), r)...)
		}
	}
	if err := s.multi(fenced, ops); err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotController) {
			return fmt.Errorf("%w: topic %s", ErrConflict, topic)
		}
		return fmt.Errorf("metadata: add partitions to %s: %w", topic, err)
	}
	if _, err := s.readTopic(topic); err != nil {
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
// pending deletions. Leaders are the controller's (package controller),
// which hears of the election through OnChange.
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
	return nil
}

// WriteAsController applies the controller's changes, one fenced multi per
// topic: it fails with ErrNotController when another broker has become
// controller, and with ErrConflict when a state or assignment changed
// since it was read (re-read and decide again). Topics written before a
// failure stay written. The cache is updated before it returns.
func (s *Store) WriteAsController(ctx context.Context, changes []TopicChange) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var errs []error
	for _, c := range changes {
		if err := ctx.Err(); err != nil {
			return err
		}
		fence, ok := s.fence()
		if !ok {
			return ErrNotController
		}
		ops := []any{fence}
		if c.Assignment != nil {
			ops = append(ops, &zk.SetDataRequest{Path: s.p("/brokers/topics/" + c.Topic), Data: assignmentBody(c.Assignment), Version: c.AssignmentVersion})
		}
		epoch := s.controllerEpoch()
		// A first state may need its parents: each is created once.
		parents := map[string]bool{}
		ensureParent := func(path string) {
			if parents[path] {
				return
			}
			parents[path] = true
			if ok, _, _ := s.conn.Exists(path); !ok {
				ops = append(ops, &zk.CreateRequest{Path: path, Acl: acl})
			}
		}
		for _, st := range c.States {
			body, _ := json.Marshal(stateJSON{Version: 1, Leader: st.Leader, LeaderEpoch: st.LeaderEpoch, ISR: orEmpty(st.ISR), ControllerEpoch: epoch})
			path := s.p(statePath(c.Topic, st.Partition))
			if st.Version < 0 {
				ensureParent(s.p("/brokers/topics/" + c.Topic + "/partitions"))
				ensureParent(path[:len(path)-len("/state")])
				ops = append(ops, &zk.CreateRequest{Path: path, Data: body, Acl: acl})
				continue
			}
			ops = append(ops, &zk.SetDataRequest{Path: path, Data: body, Version: st.Version})
		}
		err := s.multi(true, ops)
		if errors.Is(err, zk.ErrNodeExists) {
			err = fmt.Errorf("%w: %v", ErrConflict, err)
		}
		if errors.Is(err, ErrNotController) {
			return err
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata: controller write to %s: %w", c.Topic, err))
		}
		if _, rerr := s.readTopic(c.Topic); rerr != nil {
			errs = append(errs, rerr)
		}
	}
	s.notify()
	return errors.Join(errs...)
}

// UpdateISR is a partition leader's change of its ISR (Kafka 2.x
// leaders write it to ZooKeeper themselves), conditional on the state
// version the leader holds. It returns the new version, or ErrConflict
// when the state changed meanwhile (a new leader, or the controller's own
// change): the leader then learns the new state from its watch.
func (s *Store) UpdateISR(ctx context.Context, topic string, partition, leader, leaderEpoch int32, isr []int32, version int32) (int32, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	t, ok := s.Topic(topic)
	if !ok || int(partition) >= len(t.Partitions) {
		return 0, fmt.Errorf("%w: %s", ErrNoTopic, topic)
	}
	cur := t.Partitions[partition]
	body, _ := json.Marshal(stateJSON{Version: 1, Leader: leader, LeaderEpoch: leaderEpoch, ISR: orEmpty(isr), ControllerEpoch: cur.ControllerEpoch})
	st, err := s.conn.Set(s.p(statePath(topic, partition)), body, version)
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return 0, fmt.Errorf("%w: state of %s-%d", ErrConflict, topic, partition)
	}
	if err != nil {
		return 0, fmt.Errorf("metadata: update ISR of %s-%d: %w", topic, partition, err)
	}
	cur.ISR, cur.StateVersion = slices.Clone(isr), st.Version
	s.replacePartition(topic, cur)
	s.notify()
	return st.Version, nil
}

// assignmentBody encodes an assignment as /brokers/topics/<t> (version 2,
// with KIP-455's adding and removing replicas).
func assignmentBody(a *Assignment) []byte {
	j := assignmentJSON{Version: 2, Partitions: map[string][]int32{}, AddingReplicas: map[string][]int32{}, RemovingReplicas: map[string][]int32{}}
	for i, r := range a.Replicas {
		j.Partitions[strconv.Itoa(i)] = r
	}
	for p, r := range a.Adding {
		j.AddingReplicas[strconv.Itoa(int(p))] = r
	}
	for p, r := range a.Removing {
		j.RemovingReplicas[strconv.Itoa(int(p))] = r
	}
	body, _ := json.Marshal(j)
	return body
}

func orEmpty(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}
