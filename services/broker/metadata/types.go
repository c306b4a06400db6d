// Package metadata keeps the cluster's metadata in a ZooKeeper-compatible
// coordinator (Runnel's own, or Apache ZooKeeper 3.8) under Apache Kafka
// 2.x's znode layout, so that Kafka tooling that reads ZooKeeper sees a
// familiar cluster:
//
//	/cluster/id                                   {"version":"1","id":"<22 chars>"}
//	/controller                 (ephemeral)       {"version":1,"brokerid":1,"timestamp":"..."}
//	/controller_epoch                             1
//	/brokers/ids/<id>           (ephemeral)       {"version":5,"host":...,"port":...,"endpoints":[...],"rack":...}
//	/brokers/topics/<t>                           {"version":2,"partitions":{"0":[1]},...}
//	/brokers/topics/<t>/partitions/<p>/state      {"controller_epoch":1,"leader":1,"version":1,"leader_epoch":0,"isr":[1]}
//	/config/topics/<t>                            {"version":1,"config":{...}}
//	/config/changes/config_change_<seq>           {"version":2,"entity_path":"topics/<t>"}
//	/admin/delete_topics/<t>                      (a deletion request)
//
// A Store registers the broker, takes part in the controller election (a
// lone broker elects itself) and keeps an in-memory copy of brokers, topics,
// partition states and topic configs that watches keep current. Writes made
// through the Store are applied to its copy before they return, so a client
// that creates a topic sees it in the next Metadata response.
//
// Two kinds of writer change partition states, and both write
// conditionally on the state znode's version, so that neither overwrites a
// change it has not seen:
//
//   - the controller (package controller) elects leaders and moves replicas
//     with WriteAsController, whose multi also checks the version of
//     /controller_epoch, so that a controller that lost its office (a
//     zombie whose session expired) cannot write at all, as in Kafka 2.x;
//   - a partition's leader shrinks and expands its ISR with UpdateISR.
//
// Every broker watches every partition's state znode: that is how brokers
// learn of new leaders and ISRs (Kafka's controller sends LeaderAndIsr
// requests instead; here the coordinator's watches carry the same news, in
// the order of the state versions).
package metadata

import (
	"errors"
	"slices"
)

// Errors of the Store. Each is wrapped with context; test with errors.Is.
var (
	// ErrTopicExists means a topic of that name already exists
	// (TOPIC_ALREADY_EXISTS, 36).
	ErrTopicExists = errors.New("metadata: topic already exists")
	// ErrNoTopic means the topic does not exist (UNKNOWN_TOPIC_OR_PARTITION, 3).
	ErrNoTopic = errors.New("metadata: unknown topic")
	// ErrClosed means the Store was closed.
	ErrClosed = errors.New("metadata: store closed")
	// ErrNotController means the operation needs the controller and this
	// broker is not it (NOT_CONTROLLER, 41).
	ErrNotController = errors.New("metadata: this broker is not the controller")
	// ErrConflict means a concurrent writer changed the znode first; the
	// caller may retry.
	ErrConflict = errors.New("metadata: concurrent modification")
)

// Broker is one registered broker.
type Broker struct {
	ID   int32
	Host string
	Port int32
	Rack *string
	// Epoch is the creation zxid of the broker's registration, which
	// increases every time a broker registers (Kafka's broker epoch).
	Epoch int64
}

// Partition is one partition's assignment and leadership state.
type Partition struct {
	Topic string
	ID    int32
	// Replicas is the assignment, preferred leader first.
	Replicas []int32
	// Leader is the leader's broker id, -1 when there is none.
	Leader          int32
	LeaderEpoch     int32
	ISR             []int32
	ControllerEpoch int32
	// StateVersion is the znode version of the state node, for
	// conditional updates; -1 when the partition has no state yet.
	StateVersion int32
	// Adding and Removing are the replicas an ongoing reassignment adds to
	// and removes from Replicas (KIP-455); both empty otherwise.
	Adding, Removing []int32
}

// Reassigning reports whether a reassignment of the partition is ongoing.
func (p *Partition) Reassigning() bool { return len(p.Adding) > 0 || len(p.Removing) > 0 }

// Target is the replica set a reassignment ends with: Replicas without
// Removing (Replicas itself when none is ongoing).
func (p *Partition) Target() []int32 {
	if len(p.Removing) == 0 {
		return p.Replicas
	}
	out := make([]int32, 0, len(p.Replicas))
	for _, r := range p.Replicas {
		if !slices.Contains(p.Removing, r) {
			out = append(out, r)
		}
	}
	return out
}

// StateChange is a new leader and ISR for one partition, computed from the
// state at Version: the write fails with ErrConflict when the state has
// changed since. Version -1 creates the partition's first state.
type StateChange struct {
	Partition   int32
	Leader      int32
	LeaderEpoch int32
	ISR         []int32
	Version     int32
}

// TopicChange is one fenced write of the controller to one topic: new
// partition states and, when Assignment is set, a new replica assignment.
type TopicChange struct {
	Topic  string
	States []StateChange
	// Assignment replaces the topic's assignment (/brokers/topics/<t>),
	// conditionally on AssignmentVersion, the topic znode version it was
	// computed from.
	Assignment        *Assignment
	AssignmentVersion int32
}

// Assignment is a topic's replica assignment, indexed by partition.
type Assignment struct {
	Replicas [][]int32
	// Adding and Removing map a partition under reassignment to the
	// replicas it adds and removes.
	Adding, Removing map[int32][]int32
}

// HasReplica reports whether broker id holds a replica of the partition.
func (p *Partition) HasReplica(id int32) bool { return slices.Contains(p.Replicas, id) }

// Topic is a topic's metadata. Values handed out by the Store are shared
// and must not be modified.
type Topic struct {
	Name string
	// Partitions is indexed by partition id.
	Partitions []Partition
	// Config holds the topic's overrides (/config/topics/<t>).
	Config map[string]string
	// Deleting is set while a deletion is pending (/admin/delete_topics).
	Deleting bool
	// Version is the topic znode's version, for conditional updates of the
	// assignment.
	Version int32
}

// Assignment returns the topic's current assignment.
func (t *Topic) Assignment() *Assignment {
	a := &Assignment{Replicas: make([][]int32, len(t.Partitions)), Adding: map[int32][]int32{}, Removing: map[int32][]int32{}}
	for i, p := range t.Partitions {
		a.Replicas[i] = slices.Clone(p.Replicas)
		if len(p.Adding) > 0 {
			a.Adding[p.ID] = slices.Clone(p.Adding)
		}
		if len(p.Removing) > 0 {
			a.Removing[p.ID] = slices.Clone(p.Removing)
		}
	}
	return a
}

// Spec describes a topic to create.
type Spec struct {
	Name string
	// Assignment lists each partition's replicas, indexed by partition.
	Assignment [][]int32
	Config     map[string]string
}
