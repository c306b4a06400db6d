// Package server is the coordinator's network front end: it accepts
// ZooKeeper client connections, performs the session handshake, decodes
// requests with jute, serves reads from the local znode.DB, hands writes to a
// Replicator (the standalone transaction log or the raft ensemble), and sends
// responses back in request order. It also answers the four-letter words on
// the client port and runs the leader's housekeeping: session expiry and
// container/TTL cleanup.
//
// Ordering. Each connection processes its requests in arrival order. Writes
// are pipelined: several may be in flight, and their responses are queued in
// order. A read waits until every earlier write of its connection has been
// applied, so a client always reads its own writes. Watch notifications are
// queued by znode.DB.Apply while it holds the tree lock, so they precede any
// response that reflects the change.
//
// Lock order: znode.DB's lock, then conn.mu. Server.mu is never held while
// taking either.
package server
