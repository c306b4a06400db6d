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
//
// # Writes
//
// Every change is a Txn: a client write (create, create2, createContainer,
// createTTL, delete, setData, setACL, check, multi) with the caller's session
// and identities, or a housekeeping operation (createSession, closeSession,
// deleteContainer for the nodes Expirable lists, OpNoop, sync). Apply checks
// a request exactly as ZooKeeper's PrepRequestProcessor does, in the same
// order, so an invalid request fails with the same code; then it changes the
// tree as DataTree does. Txns travel through the log or raft as
// Txn.MarshalBinary bytes.
//
// Stats are ZooKeeper's, down to its quirks: the stored cversion counts child
// creations and clients see 2*creations-children (so a deletion also moves
// it, and /zookeeper starts at -2); sequence numbers come from the stored
// count; containers and TTL nodes keep markers in ephemeralOwner that clients
// see as 0; version increments skip -1.
//
// # Reads
//
// Read answers from the local tree under the read lock (the write lock when
// it registers or removes watches): exists, getData, getChildren(2), getACL,
// getAllChildrenNumber, getEphemerals, multiRead, and the watch requests.
// Responses may share slices with the tree; they must be encoded, not
// modified.
//
// # Watches
//
// A connection holds one-shot data watches (getData, exists), one-shot child
// watches (getChildren) and the persistent and persistent-recursive watches
// of addWatch, each at most once per path; a notification reaches a watcher
// once per event however many of its watches match. The kinds coexist on a
// path (ZooKeeper 3.9's behaviour; 3.8 let a later registration replace an
// earlier one's mode). setWatches and setWatches2 re-register after a
// reconnect and fire at once what changed after the client's last zxid.
// removeWatches notifies nothing: like ZooKeeper's server it only drops the
// watches, and the client library produces the *WatchRemoved events.
//
// # Snapshots
//
// WriteSnapshot and ReadSnapshot save and restore the tree, the sessions and
// LastZxid in a versioned, checksummed format; a member restores one and
// then applies the Txns after LastZxid.
//
// # Differences from ZooKeeper 3.8 on purpose
//
//   - check is honoured as a top-level operation (3.8.0 answers OK without
//     checking anything).
//   - createContainer refuses sequential, ephemeral and TTL flags, and
//     createTTL refuses non-TTL flags (3.8 accepts some and misbehaves).
//   - An ephemeral create from session 0 is BadArguments, from a session not
//     in the table SessionExpired.
//   - deleteContainer deletes only what Expirable would list at the Txn's
//     time (3.8 deletes any empty node that is not an ephemeral).
//   - Quotas (/zookeeper/quota accounting) are not kept.
package znode
