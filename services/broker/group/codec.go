package group

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrRecord means a __consumer_offsets key or value does not decode: too
// short, an unknown schema version, or a length past its end. Loading
// skips such records, as Kafka fails only on keys it cannot classify.
var ErrRecord = errors.New("group: malformed __consumer_offsets record")

// Versions of the schemas this broker writes: the ones Kafka 2.x writes,
// which Burrow and other readers of __consumer_offsets understand.
const (
	// OffsetKeyVersion is the offset commit key version (0 and 1 share
	// the layout; Kafka writes 1).
	OffsetKeyVersion = 1
	// OffsetValueVersion is the offset commit value version (KIP-320:
	// with the leader epoch, without an expire timestamp).
	OffsetValueVersion = 3
	// GroupKeyVersion is the group metadata key version.
	GroupKeyVersion = 2
	// GroupValueVersion is the group metadata value version (KIP-345:
	// with static members' instance ids).
	GroupValueVersion = 3
)

// KeyKind tells which record a __consumer_offsets key introduces.
type KeyKind int8

// Kinds of keys.
const (
	OffsetKind KeyKind = iota + 1 // a committed offset of one partition
	GroupKind                     // a group's metadata
)

// Key is a decoded __consumer_offsets key.
type Key struct {
	Kind      KeyKind
	Group     string
	Topic     string // OffsetKind only
	Partition int32  // OffsetKind only
}

// OffsetKey encodes the key of a committed offset (version 1).
func OffsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: OffsetKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

// GroupKey encodes the key of a group's metadata (version 2).
func GroupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: GroupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// DecodeKey decodes a __consumer_offsets key of any version Kafka wrote:
// 0 and 1 for offsets, 2 for group metadata.
func DecodeKey(b []byte) (Key, error) {
	if len(b) < 2 {
		return Key{}, fmt.Errorf("%w: key of %d bytes", ErrRecord, len(b))
	}
	switch v := int16(b[0])<<8 | int16(b[1]); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(b); err != nil {
			return Key{}, fmt.Errorf("%w: offset key: %v", ErrRecord, err)
		}
		return Key{Kind: OffsetKind, Group: k.Group, Topic: k.Topic, Partition: k.Partition}, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(b); err != nil {
			return Key{}, fmt.Errorf("%w: group key: %v", ErrRecord, err)
		}
		return Key{Kind: GroupKind, Group: k.Group}, nil
	default:
		return Key{}, fmt.Errorf("%w: key version %d", ErrRecord, v)
	}
}

// OffsetValue is a committed offset as __consumer_offsets stores it.
type OffsetValue struct {
	Offset      int64
	LeaderEpoch int32 // -1 when the committer did not know it
	Metadata    string
	// CommitTimestamp is when the commit was made, in Unix milliseconds.
	CommitTimestamp int64
	// ExpireTimestamp is only in version 1 values (-1 otherwise).
	ExpireTimestamp int64
}

// Encode returns the value in version 3.
func (v OffsetValue) Encode() []byte {
	kv := kmsg.OffsetCommitValue{Version: OffsetValueVersion, Offset: v.Offset, LeaderEpoch: v.LeaderEpoch,
		Metadata: v.Metadata, CommitTimestamp: v.CommitTimestamp}
	return kv.AppendTo(nil)
}

// DecodeOffsetValue decodes an offset commit value of versions 0 to 4.
func DecodeOffsetValue(b []byte) (OffsetValue, error) {
	if len(b) < 2 {
		return OffsetValue{}, fmt.Errorf("%w: offset value of %d bytes", ErrRecord, len(b))
	}
	var kv kmsg.OffsetCommitValue
	if v := int16(b[0])<<8 | int16(b[1]); v < 0 || v > 4 {
		return OffsetValue{}, fmt.Errorf("%w: offset value version %d", ErrRecord, v)
	}
	if err := kv.ReadFrom(b); err != nil {
		return OffsetValue{}, fmt.Errorf("%w: offset value: %v", ErrRecord, err)
	}
	out := OffsetValue{Offset: kv.Offset, LeaderEpoch: -1, Metadata: kv.Metadata, CommitTimestamp: kv.CommitTimestamp, ExpireTimestamp: -1}
	if kv.Version >= 3 {
		out.LeaderEpoch = kv.LeaderEpoch
	}
	if kv.Version == 1 {
		out.ExpireTimestamp = kv.ExpireTimestamp
	}
	return out, nil
}

// GroupValue is a group's metadata as __consumer_offsets stores it; it is
// kmsg's rendering of Kafka's schema.
type GroupValue = kmsg.GroupMetadataValue

// GroupValueMember is one member in a GroupValue.
type GroupValueMember = kmsg.GroupMetadataValueMember

// EncodeGroupValue returns v in version 3.
func EncodeGroupValue(v *GroupValue) []byte {
	c := *v
	c.Version = GroupValueVersion
	return c.AppendTo(nil)
}

// DecodeGroupValue decodes a group metadata value of versions 0 to 4.
func DecodeGroupValue(b []byte) (*GroupValue, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: group value of %d bytes", ErrRecord, len(b))
	}
	if v := int16(b[0])<<8 | int16(b[1]); v < 0 || v > 4 {
		return nil, fmt.Errorf("%w: group value version %d", ErrRecord, v)
	}
	v := new(GroupValue)
	if err := v.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("%w: group value: %v", ErrRecord, err)
	}
	return v, nil
}
