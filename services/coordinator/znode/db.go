package znode

import (
	"slices"
	"sync"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// DB is the znode tree, the session table and the watch registry. It is
// safe for concurrent use: Apply and the calls that change watches take the
// write lock, plain reads the read lock.
type DB struct {
	mu sync.RWMutex

	nodes map[string]*node // every node by path, "/" included
	root  *node

	sessions   map[int64]Session
	ephemerals map[int64]map[string]struct{} // session -> paths it owns
	containers map[string]struct{}
	ttls       map[string]struct{}

	lastZxid int64
	dataSize int64 // sum of nodeSize over all nodes

	acls   map[string][]jute.ACL // interned ACL lists by encoded key
	aclKey []byte                // scratch for internACL

	watches watchRegistry

	// Scratch reused by Apply under the write lock.
	pending []pendingEvent
	undo    []undoEntry
}

// New returns a tree holding what a fresh ZooKeeper 3.8 server starts with:
// "/", "/zookeeper", "/zookeeper/quota" and "/zookeeper/config" (readable by
// anyone, writable by no one, aversion -1), all with zero stats.
func New() *DB {
	db := &DB{}
	db.reset()
	return db
}

// reset installs an empty tree with the system nodes.
func (db *DB) reset() {
	db.nodes = make(map[string]*node)
	db.sessions = make(map[int64]Session)
	db.ephemerals = make(map[int64]map[string]struct{})
	db.containers = make(map[string]struct{})
	db.ttls = make(map[string]struct{})
	db.acls = make(map[string][]jute.ACL)
	db.lastZxid = 0
	db.dataSize = 0
	if db.watches.byPath == nil {
		db.watches = newWatchRegistry()
	}
	// The system nodes hold empty, not null, data.
	open := db.internACL(jute.OpenACLUnsafe)
	db.root = &node{acl: open, data: []byte{}}
	db.nodes["/"] = db.root
	db.dataSize += nodeSize("/", nil)
	proc := &node{acl: open, data: []byte{}}
	db.insertNode("/zookeeper", db.root, "zookeeper", proc)
	db.insertNode("/zookeeper/quota", proc, "quota", &node{acl: open, data: []byte{}})
	// ZooKeeper sets the config node's ACL with version -1 (ZOOKEEPER-2014),
	// which leaves aversion at -1.
	cfg := &node{acl: db.internACL(jute.ReadACLUnsafe), data: []byte{}}
	cfg.st.aversion = -1
	db.insertNode("/zookeeper/config", proc, "config", cfg)
}

// LastZxid returns the zxid of the last applied Txn (0 for a new tree).
func (db *DB) LastZxid() int64 {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.lastZxid
}

// Session returns one row of the session table.
func (db *DB) Session(id int64) (Session, bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	s, ok := db.sessions[id]
	if ok {
		s.Passwd = slices.Clone(s.Passwd)
	}
	return s, ok
}

// Sessions returns the session table sorted by id.
func (db *DB) Sessions() []Session {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make([]Session, 0, len(db.sessions))
	for _, s := range db.sessions {
		s.Passwd = slices.Clone(s.Passwd)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Session) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Expirable returns, sorted, the nodes ZooKeeper's ContainerManager would
// delete at nowMs (ms since the epoch): containers that have had a child
// (cversion > 0) and have none now, and TTL nodes without children whose
// mtime is more than their TTL in the past. The caller proposes a
// jute.OpDeleteContainer Txn for each; Apply re-checks, so a node that
// gained a child or was touched in the meantime survives.
func (db *DB) Expirable(nowMs int64) []string {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []string
	for path := range db.containers {
		if n := db.nodes[path]; n != nil && expired(n, nowMs) {
			out = append(out, path)
		}
	}
	for path := range db.ttls {
		if n := db.nodes[path]; n != nil && expired(n, nowMs) {
			out = append(out, path)
		}
	}
	slices.Sort(out)
	return out
}

// expired applies ContainerManager.getCandidates to one node.
func expired(n *node, nowMs int64) bool {
	if len(n.children) != 0 {
		return false
	}
	switch ownerType(n.st.owner) {
	case ephContainer:
		return n.st.cversion > 0
	case ephTTL:
		ttl := ownerTTL(n.st.owner)
		return ttl != 0 && nowMs-n.st.mtime > ttl
	}
	return false
}

// Stats summarises the tree for the mntr and srvr four-letter words.
type Stats struct {
	// Nodes is ZooKeeper's zk_znode_count, which counts the root twice
	// (DataTree keeps it under "" and "/"): a new tree reports 5.
	Nodes int
	// Watches counts (watcher, path, kind) registrations; WatchPaths the
	// distinct watched paths.
	Watches    int
	WatchPaths int
	// Ephemerals counts ephemeral nodes of all sessions.
	Ephemerals int
	// ApproxDataSize is zk_approximate_data_size: the sum over nodes of the
	// path length (in UTF-16 units, like Java) and the data length.
	ApproxDataSize int64
	Sessions       int
}

// Stats returns the current counters.
func (db *DB) Stats() Stats {
	db.mu.RLock()
	defer db.mu.RUnlock()
	st := Stats{
		Nodes:          len(db.nodes) + 1,
		ApproxDataSize: db.dataSize,
		Sessions:       len(db.sessions),
	}
	for _, set := range db.ephemerals {
		st.Ephemerals += len(set)
	}
	st.Watches, st.WatchPaths = db.watches.count()
	return st
}

// WatchesBySession returns, for each session with watches, its watched
// paths sorted (the wchc report).
func (db *DB) WatchesBySession() map[int64][]string {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make(map[int64][]string)
	for w, ws := range db.watches.byWatcher {
		id := w.WatcherSession()
		for p := range ws.paths {
			out[id] = append(out[id], p)
		}
	}
	for id, paths := range out {
		slices.Sort(paths)
		out[id] = slices.Compact(paths)
	}
	return out
}

// WatchesByPath returns, for each watched path, the sessions watching it
// sorted (the wchp report).
func (db *DB) WatchesByPath() map[string][]int64 {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make(map[string][]int64, len(db.watches.byPath))
	for p, m := range db.watches.byPath {
		ids := make([]int64, 0, len(m))
		for ws := range m {
			ids = append(ids, ws.w.WatcherSession())
		}
		slices.Sort(ids)
		out[p] = slices.Compact(ids)
	}
	return out
}

// EphemeralsBySession returns, for each session owning ephemeral nodes,
// their paths sorted (the dump report).
func (db *DB) EphemeralsBySession() map[int64][]string {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make(map[int64][]string, len(db.ephemerals))
	for id, set := range db.ephemerals {
		paths := make([]string, 0, len(set))
		for p := range set {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		out[id] = paths
	}
	return out
}

// RemoveWatcher drops every watch w registered; the server calls it when a
// connection closes.
func (db *DB) RemoveWatcher(w Watcher) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.watches.removeWatcher(w)
}
