// Package ensemble replicates the coordinator's znode state machine across
// three or five members with github.com/hashicorp/raft. It implements
// server.Replicator, so the client-facing server works the same standalone
// and in an ensemble.
//
// # Shape
//
// Each member has one TCP listener on its raft address (the one named for it
// in --peers). The first byte of every connection says what it carries, as
// in Consul: raft's NetworkTransport (muxRaft), or the forward protocol
// between members (muxForward). One port per member keeps deployment and
// firewalls simple.
//
// Raft's log is a FileLog: append-only segment files where a batch of
// entries costs one write and one fdatasync, ZooKeeper's group commit. Its
// stable state (term, vote) is a small bbolt file (Store); its snapshots a
// raft.FileSnapshotStore; all under DataDir/raft. On first start every
// member bootstraps the same configuration from the peer list (server id =
// the member id in decimal, address = its raft address); later starts
// resume from the stored state.
//
// # Writes
//
// A write (znode.Txn) is marshalled into an envelope that carries its
// origin: the proposing member's id in the top bits and a per-run sequence
// below. On the leader, Propose appends it with raft.Apply (raft batches
// concurrent appends into one log write and one fsync). On a follower it is
// queued for the forwarder, which sends whatever has queued to the leader
// as one batch over a single stream; the leader appends the envelopes in the
// order received and acknowledges each. Either way, the proposal is
// answered when this member's state machine applies the entry: the FSM sets
// Txn.Zxid to the raft index (strictly increasing and the same everywhere),
// calls DB.Apply, and completes the waiting proposal whose origin matches.
// So a client reads its own write on the member it is connected to, and
// sync (which the server proposes like a write) returns only when the member
// has applied everything committed before it.
//
// A proposal fails, and the server drops the client's connection
// (ZooKeeper's ConnectionLoss), when no leader is known, when the leader
// cannot be reached or stops leading before acknowledging it, when raft
// reports leadership lost before commit, and when it has not been applied
// within Options.ProposeTimeout. A forward stream is fail-stop: once it
// breaks, every unacknowledged write sent on it and everything queued behind
// them fails, so one session's writes never commit out of order.
//
// # Sessions
//
// Only the leader expires sessions. Followers report their live sessions
// (Ensemble.ReportLive, every half tick) over the forward stream; the leader
// passes them to the function given to SetSessionToucher
// (server.Server.TouchSessions). When leadership moves, the new leader's
// server starts every session's timeout afresh, as ZooKeeper does.
//
// # Timing
//
// Defaults suit a small loopback or LAN ensemble: heartbeat and election
// timeouts of 1s, a 500ms leader lease, and a 5ms commit timeout, which
// bounds how long an idle follower waits to learn that its forwarded write
// committed (under load the next append carries that news sooner).
//
// # Lock order
//
// Ensemble.mu (pending proposals), forwarder.mu and Ensemble.connsMu are
// leaves: no code holds one while taking another, and no proposal's done
// callback runs under any of them.
package ensemble
