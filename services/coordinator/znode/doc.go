// Package znode is the coordinator's replicated state machine: the znode
// tree with ZooKeeper's stat bookkeeping, the session table, ACL checks,
// multi, sequential, ephemeral, container and TTL nodes, and the watch
// registry that turns changes into notifications.
//
// It does no I/O. A transaction log (standalone mode) or raft (ensemble mode)
// orders Txns and calls DB.Apply on every member in the same order; Apply is
// deterministic, so every member computes the same tree, the same results and
// the same zxids. Reads run against the local DB with DB.Read.
//
// Watches are per member and are not replicated: each member registers the
// watches of its own connections, and Apply notifies them through the Watcher
// interface while it still holds the tree lock, so a client always receives a
// notification before any response that reflects the change.
//
// Lock order: DB.mu, then whatever a Watcher's Notify takes (a connection's
// outbound queue lock). Notify must not block and must not call back into DB.
package znode
