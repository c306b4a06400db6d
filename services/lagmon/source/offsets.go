package source

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sentinel errors of DecodeOffsetsRecord.
var (
	// ErrMalformed: the key or value does not parse in its declared version.
	ErrMalformed = errors.New("malformed __consumer_offsets record")
	// ErrUnknownVersion: a key or value version this decoder does not know
	// (newer Kafka record types); such records are skipped.
	ErrUnknownVersion = errors.New("unknown __consumer_offsets record version")
)

// RecordKind says what a __consumer_offsets record holds.
type RecordKind int

// The kinds of record.
const (
	// KindCommit is an offset commit (key versions 0 and 1).
	KindCommit RecordKind = iota + 1
	// KindGroupMetadata is a group's metadata (key version 2).
	KindGroupMetadata
)

// OffsetsRecord is a decoded __consumer_offsets record.
type OffsetsRecord struct {
	Kind RecordKind
	// Tombstone is set when the value is empty: the commit or the group was
	// deleted. Only the key fields are filled then.
	Tombstone bool
	Group     string
	// The commit (KindCommit).
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the commit time in Unix ms (KindCommit).
	Timestamp int64
	// ProtocolType and Members describe the group (KindGroupMetadata).
	ProtocolType string
	Members      []GroupMember
}

// GroupMember is a member of a group and the partitions assigned to it.
type GroupMember struct {
	ClientID   string
	ClientHost string
	// Assignments maps topics to partitions; empty when the member's
	// assignment is not in the consumer protocol.
	Assignments map[string][]int32
}

// DecodeOffsetsRecord decodes a record of Kafka's __consumer_offsets topic:
// offset-commit keys (versions 0-1) with values (versions 0-4), and
// group-metadata keys (version 2) with values (versions 0-4), including the
// members' client ids, hosts and (for the "consumer" protocol) assignments.
// The binary schemas are kmsg's; nothing is hand-parsed but the leading
// version.
func DecodeOffsetsRecord(key, value []byte) (OffsetsRecord, error) {
	if len(key) < 2 {
		return OffsetsRecord{}, fmt.Errorf("%w: key of %d bytes", ErrMalformed, len(key))
	}
	switch v := int16(binary.BigEndian.Uint16(key)); v {
	case 0, 1:
		return decodeCommit(key, value)
	case 2:
		return decodeGroupMetadata(key, value)
	default:
		return OffsetsRecord{}, fmt.Errorf("%w: key version %d", ErrUnknownVersion, v)
	}
}

func decodeCommit(key, value []byte) (OffsetsRecord, error) {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return OffsetsRecord{}, fmt.Errorf("%w: offset commit key: %w", ErrMalformed, err)
	}
	rec := OffsetsRecord{Kind: KindCommit, Group: k.Group, Topic: k.Topic, Partition: k.Partition}
	if len(value) == 0 {
		rec.Tombstone = true
		return rec, nil
	}
	if err := checkValueVersion(value, 4); err != nil {
		return OffsetsRecord{}, err
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return OffsetsRecord{}, fmt.Errorf("%w: offset commit value v%d: %w", ErrMalformed, v.Version, err)
	}
	rec.Offset, rec.Timestamp = v.Offset, v.CommitTimestamp
	return rec, nil
}

func decodeGroupMetadata(key, value []byte) (OffsetsRecord, error) {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return OffsetsRecord{}, fmt.Errorf("%w: group metadata key: %w", ErrMalformed, err)
	}
	rec := OffsetsRecord{Kind: KindGroupMetadata, Group: k.Group}
	if len(value) == 0 {
		rec.Tombstone = true
		return rec, nil
	}
	if err := checkValueVersion(value, 4); err != nil {
		return OffsetsRecord{}, err
	}
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return OffsetsRecord{}, fmt.Errorf("%w: group metadata value v%d: %w", ErrMalformed, v.Version, err)
	}
	rec.ProtocolType = v.ProtocolType
	rec.Members = make([]GroupMember, 0, len(v.Members))
	for _, m := range v.Members {
		gm := GroupMember{ClientID: m.ClientID, ClientHost: m.ClientHost}
		// Only the consumer protocol's assignments have a known layout
		// (Connect and others use their own).
		if v.ProtocolType == "consumer" && len(m.Assignment) > 0 {
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(m.Assignment); err != nil {
				return OffsetsRecord{}, fmt.Errorf("%w: assignment of member %q: %w", ErrMalformed, m.MemberID, err)
			}
			gm.Assignments = make(map[string][]int32, len(a.Topics))
			for _, t := range a.Topics {
				gm.Assignments[t.Topic] = append(gm.Assignments[t.Topic], t.Partitions...)
			}
		}
		rec.Members = append(rec.Members, gm)
	}
	return rec, nil
}

func checkValueVersion(value []byte, newest int16) error {
	if len(value) < 2 {
		return fmt.Errorf("%w: value of %d bytes", ErrMalformed, len(value))
	}
	if v := int16(binary.BigEndian.Uint16(value)); v < 0 || v > newest {
		return fmt.Errorf("%w: value version %d", ErrUnknownVersion, v)
	}
	return nil
}
