package znode

import (
	"slices"
	"strings"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// pendingEvent is a watch event produced by a change, delivered once the
// whole Txn has succeeded (a failed multi delivers none).
type pendingEvent struct {
	typ  int32
	path string
}

type undoKind uint8

const (
	undoCreate undoKind = iota
	undoDelete
	undoSetData
	undoSetACL
)

// undoEntry restores one change of a multi whose later operation failed.
// Applying operations one by one and undoing them on failure gives each
// operation the view ZooKeeper's PrepRequestProcessor gets from its
// outstanding change records: the effects of the earlier operations of the
// same multi.
type undoEntry struct {
	kind   undoKind
	path   string
	name   string
	n      *node
	parent *node
	st     persisted // parent's stat (create, delete) or the node's own
	data   []byte
	acl    []jute.ACL
}

// Apply applies one Txn and returns its result. It is deterministic: the
// same sequence of Txns yields the same tree, results and zxids on every
// member. Every Txn, failed ones included, becomes LastZxid, because
// ZooKeeper consumes a zxid for an error transaction too.
//
// Watches fire from inside Apply, after the change, in ZooKeeper's order
// (NodeCreated or NodeDeleted on the node, then NodeChildrenChanged on its
// parent), each notification carrying t.Zxid.
//
// Apply keeps the data and ACL slices of t.Req: the caller must not modify
// them afterwards.
//
// For a multi, Err is the code of the first failing operation (ZooKeeper's
// ProcessTxnResult.err), and Resp is always a *jute.MultiResponse; use
// Result.HeaderErr for the reply header, which ZooKeeper sends as OK. Its
// results carry ZooKeeper's types: a create answers as create (path only),
// a container or TTL create as create2 (path and stat).
func (db *DB) Apply(t *Txn) Result {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.pending = db.pending[:0]
	res := Result{Zxid: t.Zxid}
	switch t.Op {
	case jute.OpMulti:
		res.Err, res.Resp = db.applyMulti(t)
	case jute.OpCreateSession:
		db.sessions[t.SessionID] = Session{ID: t.SessionID, Timeout: t.Timeout, Passwd: slices.Clone(t.Passwd)}
		res.Resp = &jute.Empty{}
	case jute.OpCloseSession:
		db.closeSession(t)
		res.Resp = &jute.Empty{}
	case jute.OpDeleteContainer:
		res.Resp, res.Err = db.deleteContainer(t)
	case OpNoop, jute.OpSync:
		switch r := t.Req.(type) {
		case *jute.PathRequest:
			res.Resp = &jute.PathRequest{Path: r.Path}
		case nil:
			res.Resp = &jute.Empty{}
		default:
			res.Err = jute.ErrMarshallingError
		}
	default:
		res.Resp, res.Err = db.applyOp(t, t.Op, t.Req, false)
	}
	db.lastZxid = t.Zxid
	for i := range db.pending {
		db.watches.trigger(db.pending[i].typ, db.pending[i].path, t.Zxid)
	}
	clear(db.pending)
	db.pending = db.pending[:0]
	return res
}

// HeaderErr is the error code for the reply header of r. It is r.Err,
// except for a multi: ZooKeeper 3.8 answers a failed multi with OK in the
// header and the per-operation codes in the body, and clients (the Java
// client, go-zookeeper) only read the body when the header says OK.
func (r Result) HeaderErr() jute.Err {
	if _, ok := r.Resp.(*jute.MultiResponse); ok {
		return jute.ErrOK
	}
	return r.Err
}

// applyOp applies one create, delete, setData, setACL or check, recording
// undo entries when record is set. The Resp is nil when the code is not OK.
func (db *DB) applyOp(t *Txn, op int32, req jute.Record, record bool) (jute.Record, jute.Err) {
	switch op {
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL:
		return db.create(t, op, req, record)
	case jute.OpDelete:
		return db.delete(t, req, record)
	case jute.OpSetData:
		return db.setData(t, req, record)
	case jute.OpSetACL:
		return db.setACL(t, req, record)
	case jute.OpCheck:
		return db.check(t, req)
	}
	return nil, jute.ErrUnimplemented
}

// multiOp reports the operations a multi may hold; ZooKeeper refuses to
// decode any other (MarshallingError for the whole request).
func multiOp(op int32) bool {
	switch op {
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL,
		jute.OpDelete, jute.OpSetData, jute.OpCheck:
		return true
	}
	return false
}

// normalizeMultiCreate gives a create operation of a multi the opcode
// ZooKeeper's MultiOperationRecord gives it when decoding (Op.create picks
// it from the flags): createTTL for TTL flags in a CreateTTLRequest,
// createContainer for the container flag, create otherwise, so create2 in a
// multi answers like create. A CreateRequest with TTL flags cannot be
// decoded (ok is false: the whole multi is a marshalling error).
func normalizeMultiCreate(op jute.MultiOp) (jute.MultiOp, bool) {
	switch r := op.Req.(type) {
	case *jute.CreateRequest:
		if op.Type != jute.OpCreate && op.Type != jute.OpCreate2 && op.Type != jute.OpCreateContainer {
			return op, true // a mismatch the operation itself reports
		}
		mode, _ := modeFromFlags(r.Flags) // unknown flags: create fails later
		switch {
		case mode.ttl:
			return op, false
		case mode.container:
			op.Type = jute.OpCreateContainer
		default:
			op.Type = jute.OpCreate
		}
	case *jute.CreateTTLRequest:
		if op.Type != jute.OpCreateTTL {
			return op, true
		}
		mode, _ := modeFromFlags(r.Flags)
		if mode.ttl {
			return op, true
		}
		op.Req = &jute.CreateRequest{Path: r.Path, Data: r.Data, ACL: r.ACL, Flags: r.Flags}
		op.Type = jute.OpCreate
		if mode.container {
			op.Type = jute.OpCreateContainer
		}
	}
	return op, true
}

// applyMulti applies the operations of a multi atomically. When one fails,
// the earlier ones are undone and every result is an error: OK for the
// operations before it, its own code for it, RuntimeInconsistency after it.
func (db *DB) applyMulti(t *Txn) (jute.Err, jute.Record) {
	m, ok := t.Req.(*jute.MultiRequest)
	if !ok {
		return jute.ErrMarshallingError, nil
	}
	ops := make([]jute.MultiOp, len(m.Ops))
	for i, op := range m.Ops {
		if !multiOp(op.Type) {
			return jute.ErrMarshallingError, nil
		}
		if ops[i], ok = normalizeMultiCreate(op); !ok {
			return jute.ErrMarshallingError, nil
		}
	}
	results := make([]jute.MultiResult, len(ops))
	db.undo = db.undo[:0]
	for i, op := range ops {
		resp, code := db.applyOp(t, op.Type, op.Req, true)
		if code != jute.ErrOK {
			db.rollback()
			db.pending = db.pending[:0]
			for j := range results {
				switch {
				case j < i:
					results[j] = jute.MultiResult{Type: jute.OpError, Err: jute.ErrOK}
				case j == i:
					results[j] = jute.MultiResult{Type: jute.OpError, Err: code}
				default:
					results[j] = jute.MultiResult{Type: jute.OpError, Err: jute.ErrRuntimeInconsistency}
				}
			}
			return code, &jute.MultiResponse{Results: results}
		}
		typ := op.Type
		switch typ {
		case jute.OpCreateContainer, jute.OpCreateTTL:
			typ = jute.OpCreate2 // OpResult.CreateResult with a stat
		case jute.OpDelete, jute.OpCheck:
			resp = nil // no body
		}
		results[i] = jute.MultiResult{Type: typ, Resp: resp}
	}
	clear(db.undo)
	db.undo = db.undo[:0]
	return jute.ErrOK, &jute.MultiResponse{Results: results}
}

// rollback undoes the recorded changes, newest first.
func (db *DB) rollback() {
	for i := len(db.undo) - 1; i >= 0; i-- {
		u := &db.undo[i]
		switch u.kind {
		case undoCreate:
			db.unlinkNode(u.path, u.parent, u.name, u.n)
			u.parent.st = u.st
		case undoDelete:
			db.insertNode(u.path, u.parent, u.name, u.n)
			u.parent.st = u.st
		case undoSetData:
			db.dataSize += int64(len(u.data)) - int64(len(u.n.data))
			u.n.data = u.data
			u.n.st = u.st
		case undoSetACL:
			u.n.acl = u.acl
			u.n.st = u.st
		}
	}
	clear(db.undo)
	db.undo = db.undo[:0]
}

// parentEventPath names a parent in NodeChildrenChanged: the root's alias
// "" is reported as "/".
func parentEventPath(parent string) string {
	if parent == "" {
		return "/"
	}
	return parent
}

// create follows PrepRequestProcessor.pRequest2TxnCreate, check by check,
// so that each invalid request fails with the code ZooKeeper gives it.
func (db *DB) create(t *Txn, op int32, req jute.Record, record bool) (jute.Record, jute.Err) {
	var (
		path  string
		data  []byte
		acl   []jute.ACL
		flags int32
		ttl   int64 = -1
	)
	switch r := req.(type) {
	case *jute.CreateRequest:
		if op == jute.OpCreateTTL {
			return nil, jute.ErrMarshallingError
		}
		path, data, acl, flags = r.Path, r.Data, r.ACL, r.Flags
	case *jute.CreateTTLRequest:
		if op != jute.OpCreateTTL {
			return nil, jute.ErrMarshallingError
		}
		path, data, acl, flags, ttl = r.Path, r.Data, r.ACL, r.Flags, r.TTL
	default:
		return nil, jute.ErrMarshallingError
	}
	mode, ok := modeFromFlags(flags)
	if !ok {
		return nil, jute.ErrBadArguments
	}
	// EphemeralType.validateTTL: a TTL mode needs 0 < ttl <= MaxTTL, any other
	// mode no TTL. createTTL with another mode is refused outright (ZooKeeper
	// accepts a negative TTL there and then fails applying it).
	if mode.ttl {
		if ttl <= 0 || ttl > MaxTTL {
			return nil, jute.ErrBadArguments
		}
	} else if ttl >= 0 || op == jute.OpCreateTTL {
		return nil, jute.ErrBadArguments
	}
	// createContainer makes a container whatever its flags say in
	// ZooKeeper; refuse the flags that contradict it (sequential, ephemeral).
	if op == jute.OpCreateContainer && flags != jute.FlagPersistent && flags != jute.FlagContainer {
		return nil, jute.ErrBadArguments
	}
	if mode.ephemeral {
		if t.SessionID == 0 || ownerType(t.SessionID) != ephNormal {
			return nil, jute.ErrBadArguments
		}
		if _, ok := db.sessions[t.SessionID]; !ok {
			return nil, jute.ErrSessionExpired
		}
	}
	slash := strings.LastIndexByte(path, '/')
	if slash < 0 || strings.IndexByte(path, 0) >= 0 {
		return nil, jute.ErrBadArguments
	}
	parentPath := path[:slash]
	fixed, ok := fixupACL(acl, t.Auth)
	if !ok {
		return nil, jute.ErrInvalidACL
	}
	parent := db.lookup(parentPath)
	if parent == nil {
		return nil, jute.ErrNoNode
	}
	if !checkACL(parent.acl, jute.PermCreate, t.Auth) {
		return nil, jute.ErrNoAuth
	}
	if mode.sequential {
		path = string(appendSequence([]byte(path), parent.st.cversion))
	}
	if !validPath(path) {
		return nil, jute.ErrBadArguments
	}
	if db.lookup(path) != nil {
		return nil, jute.ErrNodeExists
	}
	if ownerType(parent.st.owner) == ephNormal {
		return nil, jute.ErrNoChildrenForEphemerals
	}

	var owner int64
	switch {
	case op == jute.OpCreateContainer:
		owner = ContainerOwner
	case mode.ttl:
		owner = ttlOwner(ttl)
	case mode.ephemeral:
		owner = t.SessionID
	}
	// A container flag under create/create2 yields a plain persistent node,
	// as in ZooKeeper, whose CreateTxn only records "ephemeral or not".
	n := &node{
		data: data,
		acl:  db.internACL(fixed),
		st: persisted{
			czxid: t.Zxid, mzxid: t.Zxid, pzxid: t.Zxid,
			ctime: t.Time, mtime: t.Time,
			owner: owner,
		},
	}
	name := path[slash+1:]
	if record {
		db.undo = append(db.undo, undoEntry{kind: undoCreate, path: path, name: name, n: n, parent: parent, st: parent.st})
	}
	parent.st.cversion++
	parent.st.pzxid = t.Zxid
	db.insertNode(path, parent, name, n)
	db.pending = append(db.pending,
		pendingEvent{jute.EventNodeCreated, path},
		pendingEvent{jute.EventNodeChildrenChanged, parentEventPath(parentPath)})
	if op == jute.OpCreate {
		return &jute.CreateResponse{Path: path}, jute.ErrOK
	}
	resp := &jute.Create2Response{Path: path}
	n.stat(&resp.Stat)
	return resp, jute.ErrOK
}

// deletable resolves the node a delete names and its parent, with the
// checks getParentPathAndValidate makes: a path with a '/', no NUL, and not
// one of the system nodes.
func (db *DB) deletable(path string) (parentPath, name string, parent *node, code jute.Err) {
	slash := strings.LastIndexByte(path, '/')
	if slash < 0 || strings.IndexByte(path, 0) >= 0 || isSpecialPath(path) {
		return "", "", nil, jute.ErrBadArguments
	}
	parentPath, name = path[:slash], path[slash+1:]
	if parent = db.lookup(parentPath); parent == nil {
		return "", "", nil, jute.ErrNoNode
	}
	return parentPath, name, parent, jute.ErrOK
}

func (db *DB) delete(t *Txn, req jute.Record, record bool) (jute.Record, jute.Err) {
	r, ok := req.(*jute.DeleteRequest)
	if !ok {
		return nil, jute.ErrMarshallingError
	}
	parentPath, name, parent, code := db.deletable(r.Path)
	if code != jute.ErrOK {
		return nil, code
	}
	if !checkACL(parent.acl, jute.PermDelete, t.Auth) {
		return nil, jute.ErrNoAuth
	}
	n := db.nodes[r.Path]
	if n == nil {
		return nil, jute.ErrNoNode
	}
	if r.Version != -1 && r.Version != n.st.version {
		return nil, jute.ErrBadVersion
	}
	if len(n.children) > 0 {
		return nil, jute.ErrNotEmpty
	}
	db.removeNode(r.Path, parentPath, name, parent, n, t.Zxid, record)
	return &jute.Empty{}, jute.ErrOK
}

// removeNode is DataTree.deleteNode: the parent's pzxid moves (its stored
// cversion counts creations and stays), and NodeDeleted then
// NodeChildrenChanged are queued.
func (db *DB) removeNode(path, parentPath, name string, parent, n *node, zxid int64, record bool) {
	if record {
		db.undo = append(db.undo, undoEntry{kind: undoDelete, path: path, name: name, n: n, parent: parent, st: parent.st})
	}
	if zxid > parent.st.pzxid {
		parent.st.pzxid = zxid
	}
	db.unlinkNode(path, parent, name, n)
	db.pending = append(db.pending,
		pendingEvent{jute.EventNodeDeleted, path},
		pendingEvent{jute.EventNodeChildrenChanged, parentEventPath(parentPath)})
}

// nextVersion is checkAndIncVersion's increment, which skips -1 so a client
// can always name the current version (ZOOKEEPER-4743).
func nextVersion(v int32) int32 {
	if v+1 == -1 {
		return 0
	}
	return v + 1
}

func (db *DB) setData(t *Txn, req jute.Record, record bool) (jute.Record, jute.Err) {
	r, ok := req.(*jute.SetDataRequest)
	if !ok {
		return nil, jute.ErrMarshallingError
	}
	n, code := db.versioned(r.Path, r.Version, jute.PermWrite, t.Auth)
	if code != jute.ErrOK {
		return nil, code
	}
	if record {
		db.undo = append(db.undo, undoEntry{kind: undoSetData, n: n, st: n.st, data: n.data})
	}
	db.dataSize += int64(len(r.Data)) - int64(len(n.data))
	n.data = r.Data
	n.st.version = nextVersion(n.st.version)
	n.st.mtime = t.Time
	n.st.mzxid = t.Zxid
	db.pending = append(db.pending, pendingEvent{jute.EventNodeDataChanged, r.Path})
	resp := &jute.StatResponse{}
	n.stat(&resp.Stat)
	return resp, jute.ErrOK
}

func (db *DB) setACL(t *Txn, req jute.Record, record bool) (jute.Record, jute.Err) {
	r, ok := req.(*jute.SetACLRequest)
	if !ok {
		return nil, jute.ErrMarshallingError
	}
	if !validPath(r.Path) {
		return nil, jute.ErrBadArguments
	}
	fixed, ok := fixupACL(r.ACL, t.Auth)
	if !ok {
		return nil, jute.ErrInvalidACL
	}
	n := db.nodes[r.Path]
	if n == nil {
		return nil, jute.ErrNoNode
	}
	if !checkACL(n.acl, jute.PermAdmin, t.Auth) {
		return nil, jute.ErrNoAuth
	}
	if r.Version != -1 && r.Version != n.st.aversion {
		return nil, jute.ErrBadVersion
	}
	if record {
		db.undo = append(db.undo, undoEntry{kind: undoSetACL, n: n, st: n.st, acl: n.acl})
	}
	n.acl = db.internACL(fixed)
	n.st.aversion = nextVersion(n.st.aversion)
	resp := &jute.StatResponse{}
	n.stat(&resp.Stat)
	return resp, jute.ErrOK
}

// check is the version check of a multi (and of ZooKeeper 3.9's top-level
// check): it needs READ on the node.
func (db *DB) check(t *Txn, req jute.Record) (jute.Record, jute.Err) {
	r, ok := req.(*jute.DeleteRequest)
	if !ok {
		return nil, jute.ErrMarshallingError
	}
	if _, code := db.versioned(r.Path, r.Version, jute.PermRead, t.Auth); code != jute.ErrOK {
		return nil, code
	}
	return &jute.Empty{}, jute.ErrOK
}

// versioned finds the node an operation on its data version targets, in
// ZooKeeper's order of checks: a valid path, an existing node, perm granted
// by its ACL, then the expected version (-1 matches any).
func (db *DB) versioned(path string, version, perm int32, auth []jute.Id) (*node, jute.Err) {
	if !validPath(path) {
		return nil, jute.ErrBadArguments
	}
	n := db.nodes[path]
	if n == nil {
		return nil, jute.ErrNoNode
	}
	if !checkACL(n.acl, perm, auth) {
		return nil, jute.ErrNoAuth
	}
	if version != -1 && version != n.st.version {
		return nil, jute.ErrBadVersion
	}
	return n, jute.ErrOK
}

// deleteContainer removes a container or TTL node that still qualifies at
// the Txn's time. A node that does not is left alone, with the code
// ZooKeeper's prep would give: NoNode, NotEmpty, or BadVersion for one that
// is not (or no longer) due.
func (db *DB) deleteContainer(t *Txn) (jute.Record, jute.Err) {
	r, ok := t.Req.(*jute.DeleteRequest)
	if !ok {
		return nil, jute.ErrMarshallingError
	}
	parentPath, name, parent, code := db.deletable(r.Path)
	if code != jute.ErrOK {
		return nil, code
	}
	n := db.nodes[r.Path]
	if n == nil {
		return nil, jute.ErrNoNode
	}
	if len(n.children) > 0 {
		return nil, jute.ErrNotEmpty
	}
	if !expired(n, t.Time) {
		return nil, jute.ErrBadVersion
	}
	db.removeNode(r.Path, parentPath, name, parent, n, t.Zxid, false)
	return &jute.Empty{}, jute.ErrOK
}

// closeSession drops a session and deletes its ephemeral nodes in path
// order, firing their watches. Unknown sessions are fine.
func (db *DB) closeSession(t *Txn) {
	delete(db.sessions, t.SessionID)
	set := db.ephemerals[t.SessionID]
	if len(set) == 0 {
		return
	}
	paths := make([]string, 0, len(set))
	for p := range set {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		n := db.nodes[p]
		parentPath, name := splitPath(p)
		parent := db.lookup(parentPath)
		if n == nil || parent == nil {
			continue
		}
		db.removeNode(p, parentPath, name, parent, n, t.Zxid, false)
	}
}
