package znode

import (
	"slices"
	"strings"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// Watcher types of checkWatches and removeWatches beyond the three jute
// names; ZooKeeper's WatcherType has them since 3.6.
const (
	watcherTypePersistent          int32 = 4
	watcherTypePersistentRecursive int32 = 5
)

// Read answers a request that changes nothing in the tree, on this member's
// state, like FinalRequestProcessor: exists, getData, getChildren,
// getChildren2, getACL, getAllChildrenNumber, getEphemerals (of sessionID),
// multiRead, sync (an echo), and the watch requests addWatch, checkWatches,
// removeWatches, setWatches and setWatches2. auth holds the connection's
// identities for ACL checks. w receives the watches the request registers
// (nil registers none); it must be comparable, as it is a map key.
//
// The response is nil when the code is not OK. It may share data, children
// and ACL slices with the tree: encode it, never modify it. An unknown op
// gives jute.ErrUnimplemented, a request record of the wrong type
// jute.ErrMarshallingError.
//
// Deviations from ZooKeeper 3.8's wire behaviour that Read does not copy:
// removeWatches sends no notification (the client library makes the
// DataWatchRemoved and similar events itself), and notifications that
// setWatches fires immediately carry zxid -1, as every ZooKeeper 3.8
// notification does.
func (db *DB) Read(sessionID int64, auth []jute.Id, op int32, req jute.Record, w Watcher) (jute.Record, jute.Err) {
	if db.readLocks(op, req, w) {
		db.mu.Lock()
		defer db.mu.Unlock()
	} else {
		db.mu.RLock()
		defer db.mu.RUnlock()
	}
	switch op {
	case jute.OpExists:
		r, ok := req.(*jute.PathWatchRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		return db.exists(r, w)
	case jute.OpGetData:
		r, ok := req.(*jute.PathWatchRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		return db.getData(r, auth, w)
	case jute.OpGetChildren, jute.OpGetChildren2:
		r, ok := req.(*jute.PathWatchRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		return db.getChildren(op, r, auth, w)
	case jute.OpGetACL:
		r, ok := req.(*jute.PathRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		return db.getACL(r.Path, auth)
	case jute.OpGetAllChildrenNumber:
		r, ok := req.(*jute.PathRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		n := db.lookup(r.Path)
		if n == nil {
			return nil, jute.ErrNoNode
		}
		if !checkACL(n.acl, jute.PermRead, auth) {
			return nil, jute.ErrNoAuth
		}
		return &jute.CountResponse{TotalNumber: int32(descendants(n))}, jute.ErrOK
	case jute.OpGetEphemerals:
		r, ok := req.(*jute.PathRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		return db.getEphemerals(sessionID, r.Path), jute.ErrOK
	case jute.OpSync:
		r, ok := req.(*jute.PathRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		return &jute.PathRequest{Path: r.Path}, jute.ErrOK
	case jute.OpMultiRead:
		r, ok := req.(*jute.MultiRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		return db.multiRead(r, auth, w)
	case jute.OpAddWatch:
		r, ok := req.(*jute.AddWatchRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		var kind watchKind
		switch r.Mode {
		case jute.AddWatchPersistent:
			kind = watchPersistent
		case jute.AddWatchPersistentRecursive:
			kind = watchRecursive
		default:
			// WatcherMode.fromZooDef throws; the server reports it as a
			// marshalling error.
			return nil, jute.ErrMarshallingError
		}
		if w != nil {
			db.watches.add(w, r.Path, kind)
		}
		// ZooKeeper answers addWatch with an ErrorResponse(0) body, and
		// clients read those four bytes.
		return &jute.ErrorResponse{Err: jute.ErrOK}, jute.ErrOK
	case jute.OpCheckWatches, jute.OpRemoveWatches:
		r, ok := req.(*jute.RemoveWatchesRequest)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		return db.watchQuery(op, r, w)
	case jute.OpSetWatches:
		r, ok := req.(*jute.SetWatches)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		if w != nil {
			db.setWatches(r.RelativeZxid, r.DataWatches, r.ExistWatches, r.ChildWatches, nil, nil, w)
		}
		return &jute.Empty{}, jute.ErrOK
	case jute.OpSetWatches2:
		r, ok := req.(*jute.SetWatches2)
		if !ok {
			return nil, jute.ErrMarshallingError
		}
		if w != nil {
			db.setWatches(r.RelativeZxid, r.DataWatches, r.ExistWatches, r.ChildWatches,
				r.PersistentWatches, r.PersistentRecursiveWatches, w)
		}
		return &jute.Empty{}, jute.ErrOK
	}
	return nil, jute.ErrUnimplemented
}

// readLocks reports whether a read changes the watch registry, and so
// needs the write lock.
func (db *DB) readLocks(op int32, req jute.Record, w Watcher) bool {
	if w == nil {
		return false
	}
	switch op {
	case jute.OpExists, jute.OpGetData, jute.OpGetChildren, jute.OpGetChildren2:
		r, ok := req.(*jute.PathWatchRequest)
		return ok && r.Watch
	case jute.OpMultiRead:
		r, ok := req.(*jute.MultiRequest)
		if !ok {
			return false
		}
		for _, o := range r.Ops {
			if pw, ok := o.Req.(*jute.PathWatchRequest); ok && pw.Watch {
				return true
			}
		}
		return false
	case jute.OpAddWatch, jute.OpRemoveWatches, jute.OpSetWatches, jute.OpSetWatches2:
		return true
	}
	return false
}

// exists registers its watch before looking, so a missing node gets an
// exist watch that fires NodeCreated. It checks no ACL and no path syntax
// beyond a NUL, like ZooKeeper.
func (db *DB) exists(r *jute.PathWatchRequest, w Watcher) (jute.Record, jute.Err) {
	if strings.IndexByte(r.Path, 0) >= 0 {
		return nil, jute.ErrBadArguments
	}
	if r.Watch && w != nil {
		db.watches.add(w, r.Path, watchData)
	}
	n := db.lookup(r.Path)
	if n == nil {
		return nil, jute.ErrNoNode
	}
	resp := &jute.StatResponse{}
	n.stat(&resp.Stat)
	return resp, jute.ErrOK
}

func (db *DB) getData(r *jute.PathWatchRequest, auth []jute.Id, w Watcher) (jute.Record, jute.Err) {
	n := db.lookup(r.Path)
	if n == nil {
		return nil, jute.ErrNoNode
	}
	if !checkACL(n.acl, jute.PermRead, auth) {
		return nil, jute.ErrNoAuth
	}
	if r.Watch && w != nil {
		db.watches.add(w, r.Path, watchData)
	}
	resp := &jute.GetDataResponse{Data: n.data}
	n.stat(&resp.Stat)
	return resp, jute.ErrOK
}

func (db *DB) getChildren(op int32, r *jute.PathWatchRequest, auth []jute.Id, w Watcher) (jute.Record, jute.Err) {
	n := db.lookup(r.Path)
	if n == nil {
		return nil, jute.ErrNoNode
	}
	if !checkACL(n.acl, jute.PermRead, auth) {
		return nil, jute.ErrNoAuth
	}
	if r.Watch && w != nil {
		db.watches.add(w, r.Path, watchChild)
	}
	if op == jute.OpGetChildren {
		return &jute.ChildrenResponse{Children: n.childList()}, jute.ErrOK
	}
	resp := &jute.Children2Response{Children: n.childList()}
	n.stat(&resp.Stat)
	return resp, jute.ErrOK
}

// getACL needs READ or ADMIN; without ADMIN the digest hashes are masked
// (ZooKeeper 3.8's rule, ZOOKEEPER-1392).
func (db *DB) getACL(path string, auth []jute.Id) (jute.Record, jute.Err) {
	n := db.lookup(path)
	if n == nil {
		return nil, jute.ErrNoNode
	}
	if !checkACL(n.acl, jute.PermRead|jute.PermAdmin, auth) {
		return nil, jute.ErrNoAuth
	}
	resp := &jute.GetACLResponse{ACL: n.acl}
	if !checkACL(n.acl, jute.PermAdmin, auth) {
		resp.ACL = maskDigests(n.acl)
	}
	n.stat(&resp.Stat)
	return resp, jute.ErrOK
}

// descendants counts the nodes below n.
func descendants(n *node) int {
	total := 0
	stack := []*node{n}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		total += len(cur.children)
		for _, c := range cur.children {
			if len(c.children) > 0 {
				stack = append(stack, c)
			}
		}
	}
	return total
}

// getEphemerals lists the session's ephemerals under a prefix; a blank
// prefix or "/" means all of them.
func (db *DB) getEphemerals(sessionID int64, prefix string) *jute.PathsResponse {
	set := db.ephemerals[sessionID]
	paths := make([]string, 0, len(set))
	all := strings.TrimSpace(prefix) == "" || strings.TrimSpace(prefix) == "/"
	for p := range set {
		if all || strings.HasPrefix(p, prefix) {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	return &jute.PathsResponse{Paths: paths}
}

// multiRead answers each getData and getChildren independently; a failed
// one becomes an error result and the reply itself is OK.
func (db *DB) multiRead(r *jute.MultiRequest, auth []jute.Id, w Watcher) (jute.Record, jute.Err) {
	for _, op := range r.Ops {
		if op.Type != jute.OpGetData && op.Type != jute.OpGetChildren {
			return nil, jute.ErrMarshallingError
		}
		if _, ok := op.Req.(*jute.PathWatchRequest); !ok {
			return nil, jute.ErrMarshallingError
		}
	}
	results := make([]jute.MultiResult, len(r.Ops))
	for i, op := range r.Ops {
		pw := op.Req.(*jute.PathWatchRequest)
		var resp jute.Record
		var code jute.Err
		if op.Type == jute.OpGetData {
			resp, code = db.getData(pw, auth, w)
		} else {
			resp, code = db.getChildren(jute.OpGetChildren, pw, auth, w)
		}
		if code != jute.ErrOK {
			results[i] = jute.MultiResult{Type: jute.OpError, Err: code}
			continue
		}
		results[i] = jute.MultiResult{Type: op.Type, Resp: resp}
	}
	return &jute.MultiResponse{Results: results}, jute.ErrOK
}

// watchQuery serves checkWatches and removeWatches. Children and Data name
// the one-shot watches, Persistent and PersistentRecursive the added
// watches, Any all of them.
func (db *DB) watchQuery(op int32, r *jute.RemoveWatchesRequest, w Watcher) (jute.Record, jute.Err) {
	var mask watchKind
	switch r.Type {
	case jute.WatcherTypeChildren:
		mask = watchChild
	case jute.WatcherTypeData:
		mask = watchData
	case jute.WatcherTypeAny:
		mask = watchData | watchChild | watchPersistent | watchRecursive
	case watcherTypePersistent:
		mask = watchPersistent
	case watcherTypePersistentRecursive:
		mask = watchRecursive
	default:
		return nil, jute.ErrMarshallingError // WatcherType.fromInt throws
	}
	if w == nil {
		return nil, jute.ErrNoWatcher
	}
	ws, kinds := db.watches.kinds(w, r.Path)
	if kinds&mask == 0 {
		return nil, jute.ErrNoWatcher
	}
	if op == jute.OpRemoveWatches {
		db.watches.remove(ws, r.Path, mask)
	}
	return &jute.Empty{}, jute.ErrOK
}

// setWatches re-registers a reconnecting client's watches, firing at once
// those whose condition changed after relativeZxid (DataTree.setWatches).
func (db *DB) setWatches(rel int64, data, exist, child, persistent, recursive []string, w Watcher) {
	notify := func(typ int32, path string) {
		w.Notify(jute.WatcherEvent{Type: typ, State: jute.StateSyncConnected, Path: path}, -1)
	}
	for _, p := range data {
		switch n := db.lookup(p); {
		case n == nil:
			notify(jute.EventNodeDeleted, p)
		case n.st.mzxid > rel:
			notify(jute.EventNodeDataChanged, p)
		default:
			db.watches.add(w, p, watchData)
		}
	}
	for _, p := range exist {
		if db.lookup(p) != nil {
			notify(jute.EventNodeCreated, p)
		} else {
			db.watches.add(w, p, watchData)
		}
	}
	for _, p := range child {
		switch n := db.lookup(p); {
		case n == nil:
			notify(jute.EventNodeDeleted, p)
		case n.st.pzxid > rel:
			notify(jute.EventNodeChildrenChanged, p)
		default:
			db.watches.add(w, p, watchChild)
		}
	}
	for _, p := range persistent {
		db.watches.add(w, p, watchPersistent)
	}
	for _, p := range recursive {
		db.watches.add(w, p, watchRecursive)
	}
}
