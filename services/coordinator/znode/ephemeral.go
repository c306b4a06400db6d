package znode

// The ephemeralOwner field of a znode's stat says more than which session
// owns an ephemeral: ZooKeeper packs container and TTL markers into it (see
// its EphemeralType), and this package stores the field the same way so a
// tree can be compared with a ZooKeeper snapshot field by field.
//
// Clients never see the markers: like DataNode.copyStat, Stat reports an
// ephemeralOwner of 0 for containers and TTL nodes.

const (
	// ContainerOwner is the ephemeralOwner of a container node.
	ContainerOwner int64 = -1 << 63 // 0x8000000000000000

	// MaxTTL is the largest time to live (ms) a TTL node accepts: the 40 low
	// bits of the ephemeralOwner.
	MaxTTL int64 = 1<<40 - 1

	// extendedMask marks an "extended" owner (top byte 0xff); the next two
	// bytes name the feature, and feature 0 is TTL.
	extendedMask     = -1 << 56 // 0xff00000000000000
	extendedFeatures = 0x00ffff0000000000
)

type ephemeralType uint8

const (
	ephVoid      ephemeralType = iota // persistent
	ephNormal                         // owned by a session
	ephContainer                      // container
	ephTTL                            // persistent with a time to live
)

// ttlOwner encodes a TTL into an ephemeralOwner; the caller has checked the
// range.
func ttlOwner(ttl int64) int64 { return extendedMask | ttl }

// ownerType classifies an ephemeralOwner the way ZooKeeper does with
// extended types enabled. An extended owner whose feature bits are not TTL's
// cannot be produced here; it counts as a plain session owner rather than
// failing.
func ownerType(owner int64) ephemeralType {
	switch {
	case owner == 0:
		return ephVoid
	case owner == ContainerOwner:
		return ephContainer
	case owner&extendedMask == extendedMask && owner&extendedFeatures == 0:
		return ephTTL
	}
	return ephNormal
}

// ownerTTL returns the time to live of a TTL node's owner field.
func ownerTTL(owner int64) int64 { return owner &^ (extendedMask | extendedFeatures) }

// clientOwner is the ephemeralOwner that clients see.
func clientOwner(owner int64) int64 {
	if ownerType(owner) == ephNormal {
		return owner
	}
	return 0
}

// createMode is a decoded CreateMode flag.
type createMode struct {
	ephemeral  bool
	sequential bool
	container  bool
	ttl        bool
}

// modeFromFlags decodes CreateMode.fromFlag; ok is false for unknown flags.
func modeFromFlags(flags int32) (m createMode, ok bool) {
	switch flags {
	case 0: // PERSISTENT
	case 1:
		m.ephemeral = true
	case 2:
		m.sequential = true
	case 3:
		m.ephemeral, m.sequential = true, true
	case 4:
		m.container = true
	case 5:
		m.ttl = true
	case 6:
		m.ttl, m.sequential = true, true
	default:
		return m, false
	}
	return m, true
}
