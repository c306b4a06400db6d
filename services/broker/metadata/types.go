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
// partition states and topic configs that watches keep current. Every
// partition carries its own leader, leader epoch, replica list and ISR, so
// that followers can be added by a replication layer without another
// layout. Writes made through the Store are applied to its copy before they
// return, so a client that creates a topic sees it in the next Metadata
// response.
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
	// conditional updates.
	StateVersion int32
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
}

// Spec describes a topic to create.
type Spec struct {
	Name string
	// Assignment lists each partition's replicas, indexed by partition.
	Assignment [][]int32
	Config     map[string]string
}
