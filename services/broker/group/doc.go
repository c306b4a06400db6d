// Package group is the broker's group coordinator: Kafka's classic
// consumer group protocol and the committed offsets, kept in the internal
// __consumer_offsets topic in Kafka's own binary schemas so that tools
// reading that topic (Burrow, Runnel's lagmon) understand it.
//
// # Ownership
//
// A group belongs to one partition of __consumer_offsets,
// abs(javaHashCode(groupId)) % offsets.topic.num.partitions, exactly as in
// Kafka, and the leader of that partition is the group's coordinator.
// Sync tells the Coordinator which partitions this broker leads; it loads
// each new one from the log in the background (requests for its groups get
// COORDINATOR_LOAD_IN_PROGRESS meanwhile) and drops the groups of those it
// lost (NOT_COORDINATOR), so groups and offsets survive restarts and
// leader moves.
//
// # Records
//
//	offset commit:  key v1 {group, topic, partition}  value v3 {offset, leader epoch, metadata, commit timestamp}
//	group metadata: key v2 {group}                    value v3 {protocol type, generation, protocol, leader,
//	                                                             state timestamp, members with subscriptions and assignments}
//
// A deleted offset or group is a tombstone (a null value) for its key; the
// topic is compacted, so the latest value of each key is what a load sees.
// Keys and values of older versions (written by earlier Kafka releases)
// decode too.
//
// # Rebalance protocol
//
// Groups move through Empty, PreparingRebalance, CompletingRebalance and
// Stable (and Dead once deleted or expired), as in Kafka 2.x:
//
//   - JoinGroup parks each member until every known member has rejoined or
//     the longest rebalance timeout passed; dynamic members that did not
//     rejoin are dropped. The first rebalance of an empty group waits
//     group.initial.rebalance.delay.ms for more members, extended while
//     they keep coming, up to the rebalance timeout.
//   - The members vote for a protocol (assignor) they all support: each
//     for its first choice among the common ones. The leader gets every
//     member's metadata and assigns with whatever assignor the clients
//     bring (range, roundrobin, sticky, cooperative-sticky: the broker only
//     relays the bytes).
//   - SyncGroup parks the members until the leader sends the assignment,
//     which is stored before anyone gets theirs.
//   - Heartbeats keep a member's session; one that misses
//     session.timeout.ms is removed and the group rebalances. Members
//     waiting in JoinGroup or SyncGroup are kept alive.
//   - From JoinGroup v4 a member without an id is handed one with
//     MEMBER_ID_REQUIRED and joins again with it (KIP-394).
//   - Static members (group.instance.id, KIP-345) keep their place across
//     restarts: a known instance rejoining a stable group takes over its old
//     member id's assignment without a rebalance, and the old id is fenced
//     (FENCED_INSTANCE_ID).
//
// # Offsets
//
// A commit from the current generation's member is stored; one that
// claims no generation is accepted while the group has no members (tools
// and consumers that assign partitions themselves). offsets.retention.minutes
// is applied with Kafka's 2.1+ rules (see ExpireOffsets).
//
// # Concurrency and time
//
// One mutex guards all groups. Timers (sessions, join phases, retention)
// come from a Clock, so tests drive time by hand with ManualClock.
package group
