package znode

import (
	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// Internal opcodes for transactions no client sends directly. Client
// opcodes (jute.OpCreate, ...) are used as they are; jute.OpCreateSession and
// jute.OpCloseSession open and close sessions; jute.OpDeleteContainer removes
// an empty container or an expired TTL node (a no-op when the node no longer
// qualifies).
const (
	// OpNoop orders nothing and changes nothing; ensembles use it for sync.
	OpNoop int32 = -1000
)

// Txn is one replicated transaction. Everything Apply needs is inside it, so
// applying the same Txn sequence yields the same state on every member.
type Txn struct {
	// Zxid is assigned by the log: strictly increasing, never reused.
	Zxid int64
	// Time is the proposer's wall clock in milliseconds since the epoch; it
	// becomes ctime/mtime and drives TTL expiry.
	Time int64
	// SessionID is the session that issued the request (0 for housekeeping).
	SessionID int64
	// Cxid is the client's xid, echoed in the reply.
	Cxid int32
	// Op is a jute opcode or an internal opcode above.
	Op int32
	// Req is the decoded request body (nil for ops without one).
	Req jute.Record
	// Auth lists the identities of the issuing connection (digest ids added
	// by auth packets and the "ip" id of its remote address); ACL checks use
	// them.
	Auth []jute.Id
	// Timeout (ms) and Passwd describe a session for OpCreateSession.
	Timeout int32
	Passwd  []byte
	// Origin identifies who waits for the result (member id and a local
	// request number); Apply ignores it.
	Origin uint64
}

// Result is what Apply returns for one Txn.
type Result struct {
	Zxid int64
	// Err is the ZooKeeper error code of the operation (DataTree's
	// ProcessTxnResult.err). It is the reply header's code for every Txn but
	// a multi, whose failed reply ZooKeeper sends with OK in the header:
	// write HeaderErr to the wire.
	Err jute.Err
	// Resp is the response body (nil when Err != OK, except for multi whose
	// MultiResponse always carries per-operation results).
	Resp jute.Record
}

// Session is one row of the session table.
type Session struct {
	ID      int64
	Timeout int32 // negotiated, ms
	Passwd  []byte
}

// Watcher receives notifications for the watches it registered. Notify is
// called with the DB lock held: it must enqueue and return, never block.
// The DB keeps watchers as map keys, so a Watcher must be comparable (a
// pointer, typically the connection).
type Watcher interface {
	Notify(ev jute.WatcherEvent, zxid int64)
	// WatcherSession names the session behind the watcher, for the wchc,
	// wchp and wchs reports.
	WatcherSession() int64
}
