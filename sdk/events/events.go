// Package events is the wire contract of Runnel's offset events: the NATS
// subjects and JSON payloads through which brokers tell lagmon (or any
// other subscriber) about log-end offsets, offset commits and group
// membership, without polling or reading __consumer_offsets. Runnel's
// broker publishes them (services/broker/natsevents); lagmon's NATS source
// subscribes (services/lagmon/source). Any other publisher may use them.
//
// Subjects (PREFIX defaults to "runnel"; CLUSTER is the cluster's name,
// the broker's --cluster-name, which must match lagmon's cluster name):
//
//	PREFIX.CLUSTER.offsets.log_end   log-end offsets of topic partitions
//	PREFIX.CLUSTER.offsets.commit    offsets committed by a consumer group
//	PREFIX.CLUSTER.groups.members    a group's members and their assignments
//
// Payloads are JSON objects; timestamps are Unix milliseconds.
//
// offsets.log_end, published by each partition leader on an interval (a
// partition may appear in any number of messages; a broker sends the high
// watermark, the end consumers can read to and what ListOffsets answers for
// "latest"):
//
//	{"timestamp": 1700000000000,
//	 "partitions": [{"topic": "orders", "partition": 0, "partition_count": 3, "offset": 1234}]}
//
// offsets.commit, published for every accepted OffsetCommit (one message
// carries the partitions of one request, all of one group):
//
//	{"group": "billing", "timestamp": 1700000000000, "order": 42,
//	 "offsets": [{"topic": "orders", "partition": 0, "offset": 1200}]}
//
// "order" places the commit in the group's commit stream: a broker sends
// the offset in __consumer_offsets of the commit's first record, which
// grows with every commit of the group (0 is a valid order). When it is
// absent, a subscriber uses the order of arrival, which NATS keeps per
// publisher.
//
// groups.members, published whenever a group's coordinator stores its
// metadata: a new generation (the join completed, or the group became
// empty) and that generation's assignment. An empty member list means the
// group has no members. "generation" is informational:
//
//	{"group": "billing", "generation": 3,
//	 "members": [{"client_id": "c-1", "client_host": "/10.0.0.7", "assignments": {"orders": [0, 1]}}]}
//
// The decoders check what a subscriber relies on and answer ErrInvalid,
// naming the field, for anything else; unknown fields are ignored, so a
// publisher may add some.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalid marks a payload that is not valid JSON or misses a required
// field; the message says which.
var ErrInvalid = errors.New("invalid offset event")

// DefaultPrefix is the first token of every subject.
const DefaultPrefix = "runnel"

// LogEndSubject is the subject of a cluster's log-end offsets.
func LogEndSubject(prefix, cluster string) string { return prefix + "." + cluster + ".offsets.log_end" }

// CommitSubject is the subject of a cluster's committed offsets.
func CommitSubject(prefix, cluster string) string { return prefix + "." + cluster + ".offsets.commit" }

// MembersSubject is the subject of a cluster's group memberships.
func MembersSubject(prefix, cluster string) string { return prefix + "." + cluster + ".groups.members" }

// LogEnd is the payload of offsets.log_end.
type LogEnd struct {
	Timestamp  int64             `json:"timestamp"`
	Partitions []LogEndPartition `json:"partitions"`
}

// LogEndPartition is one partition's log-end offset.
type LogEndPartition struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	PartitionCount int32  `json:"partition_count"`
	Offset         int64  `json:"offset"`
}

// Commit is the payload of offsets.commit.
type Commit struct {
	Group     string `json:"group"`
	Timestamp int64  `json:"timestamp"`
	// Order is nil when the publisher gives none.
	Order   *int64            `json:"order,omitempty"`
	Offsets []CommitPartition `json:"offsets"`
}

// CommitPartition is one committed offset.
type CommitPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Members is the payload of groups.members.
type Members struct {
	Group      string   `json:"group"`
	Generation int32    `json:"generation,omitempty"`
	Members    []Member `json:"members"`
}

// Member is one group member and the partitions assigned to it.
type Member struct {
	ClientID    string             `json:"client_id"`
	ClientHost  string             `json:"client_host"`
	Assignments map[string][]int32 `json:"assignments"`
}

// DecodeLogEnd parses and checks an offsets.log_end payload.
func DecodeLogEnd(b []byte) (LogEnd, error) {
	var v LogEnd
	if err := json.Unmarshal(b, &v); err != nil {
		return LogEnd{}, fmt.Errorf("%w: log_end: %w", ErrInvalid, err)
	}
	for _, p := range v.Partitions {
		if p.Topic == "" || p.Partition < 0 || p.PartitionCount <= p.Partition || p.Offset < 0 {
			return LogEnd{}, fmt.Errorf("%w: log_end: partition %q/%d of %d at offset %d", ErrInvalid, p.Topic, p.Partition, p.PartitionCount, p.Offset)
		}
	}
	return v, nil
}

// DecodeCommit parses and checks an offsets.commit payload.
func DecodeCommit(b []byte) (Commit, error) {
	var v Commit
	if err := json.Unmarshal(b, &v); err != nil {
		return Commit{}, fmt.Errorf("%w: commit: %w", ErrInvalid, err)
	}
	if v.Group == "" {
		return Commit{}, fmt.Errorf("%w: commit: no group", ErrInvalid)
	}
	if v.Order != nil && *v.Order < 0 {
		return Commit{}, fmt.Errorf("%w: commit: negative order %d", ErrInvalid, *v.Order)
	}
	for _, p := range v.Offsets {
		if p.Topic == "" || p.Partition < 0 {
			return Commit{}, fmt.Errorf("%w: commit: partition %q/%d", ErrInvalid, p.Topic, p.Partition)
		}
	}
	return v, nil
}

// DecodeMembers parses and checks a groups.members payload.
func DecodeMembers(b []byte) (Members, error) {
	var v Members
	if err := json.Unmarshal(b, &v); err != nil {
		return Members{}, fmt.Errorf("%w: members: %w", ErrInvalid, err)
	}
	if v.Group == "" {
		return Members{}, fmt.Errorf("%w: members: no group", ErrInvalid)
	}
	for _, m := range v.Members {
		for topic, parts := range m.Assignments {
			for _, p := range parts {
				if topic == "" || p < 0 {
					return Members{}, fmt.Errorf("%w: members: %s assigned partition %q/%d", ErrInvalid, m.ClientID, topic, p)
				}
			}
		}
	}
	return v, nil
}
