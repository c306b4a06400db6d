package server

import "github.com/runnel-io/runnel/services/coordinator/znode"

// Replicator orders and persists transactions. The standalone transaction
// log and the raft ensemble implement it.
type Replicator interface {
	// Propose submits t for ordering. done is called exactly once: after t
	// has been made durable (per the replicator's contract) and applied to
	// the local DB, with its result; or with an error when t could not be
	// committed (the client then sees ConnectionLoss and reconnects).
	// Propose must not block for long; done must not block.
	Propose(t *znode.Txn, done func(znode.Result, error))
	// IsLeader reports whether this member runs housekeeping: session
	// expiry and container/TTL cleanup. A standalone server always is.
	IsLeader() bool
	// Mode names the member's role for srvr/mntr: "standalone", "leader"
	// or "follower".
	Mode() string
	// ReportLive tells the leader that these sessions have live
	// connections here. Standalone replicators need not do anything: the
	// local tracker is already touched.
	ReportLive(ids []int64)
	// Writable reports whether writes can currently be committed (false in
	// a minority partition); it only affects the read-only flag reported by
	// isro, never correctness.
	Writable() bool
}
