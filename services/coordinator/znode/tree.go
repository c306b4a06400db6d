package znode

import (
	"slices"
	"sync/atomic"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// persisted is a znode's stored metadata, ZooKeeper's StatPersisted. Two
// fields differ from what clients see (jute.Stat): cversion counts child
// creations only, and owner keeps the container and TTL markers. See
// node.stat for the translation.
type persisted struct {
	czxid, mzxid, pzxid int64
	ctime, mtime        int64
	version             int32
	cversion            int32
	aversion            int32
	owner               int64
}

// node is one znode. Data and ACL slices are never modified in place once
// stored, so readers may hand them out without copying.
type node struct {
	data     []byte
	acl      []jute.ACL
	st       persisted
	children map[string]*node // by name
	// sorted caches the children in order; nil when it must be rebuilt.
	// Readers holding only the read lock may fill it, hence the atomic.
	sorted atomic.Pointer[[]string]
}

// stat fills out the client view of the node, as DataNode.copyStat does:
// cversion becomes the number of child changes (every creation except those
// still present has a matching deletion: 2*creations - children), and the
// owner of a container or TTL node reads as 0.
func (n *node) stat(out *jute.Stat) {
	nc := int32(len(n.children))
	*out = jute.Stat{
		Czxid:          n.st.czxid,
		Mzxid:          n.st.mzxid,
		Ctime:          n.st.ctime,
		Mtime:          n.st.mtime,
		Version:        n.st.version,
		Cversion:       n.st.cversion*2 - nc,
		Aversion:       n.st.aversion,
		EphemeralOwner: clientOwner(n.st.owner),
		DataLength:     int32(len(n.data)),
		NumChildren:    nc,
		Pzxid:          n.st.pzxid,
	}
}

// childList returns the sorted child names. The slice is shared with the
// cache and must not be modified; a later change replaces the cache rather
// than editing it.
func (n *node) childList() []string {
	if p := n.sorted.Load(); p != nil {
		return *p
	}
	s := make([]string, 0, len(n.children))
	for c := range n.children {
		s = append(s, c)
	}
	slices.Sort(s)
	n.sorted.Store(&s)
	return s
}

func (n *node) addChild(name string, child *node) {
	if n.children == nil {
		n.children = make(map[string]*node, 1)
	}
	n.children[name] = child
	n.sorted.Store(nil)
}

func (n *node) removeChild(name string) {
	delete(n.children, name)
	n.sorted.Store(nil)
}

// lookup finds a node; "" is ZooKeeper's alias of the root.
func (db *DB) lookup(path string) *node {
	if path == "" {
		return db.root
	}
	return db.nodes[path]
}

// nodeSize is DataTree.getNodeSize, the unit of the approximate data size.
func nodeSize(path string, data []byte) int64 { return utf16Len(path) + int64(len(data)) }

// insertNode links n under parent and updates every index. It does not touch
// the parent's stat: callers do, so undo can restore it exactly.
func (db *DB) insertNode(path string, parent *node, name string, n *node) {
	parent.addChild(name, n)
	db.nodes[path] = n
	db.dataSize += nodeSize(path, n.data)
	switch ownerType(n.st.owner) {
	case ephNormal:
		set := db.ephemerals[n.st.owner]
		if set == nil {
			set = make(map[string]struct{})
			db.ephemerals[n.st.owner] = set
		}
		set[path] = struct{}{}
	case ephContainer:
		db.containers[path] = struct{}{}
	case ephTTL:
		db.ttls[path] = struct{}{}
	}
}

// unlinkNode is the inverse of insertNode.
func (db *DB) unlinkNode(path string, parent *node, name string, n *node) {
	parent.removeChild(name)
	delete(db.nodes, path)
	db.dataSize -= nodeSize(path, n.data)
	switch ownerType(n.st.owner) {
	case ephNormal:
		if set := db.ephemerals[n.st.owner]; set != nil {
			delete(set, path)
			if len(set) == 0 {
				delete(db.ephemerals, n.st.owner)
			}
		}
	case ephContainer:
		delete(db.containers, path)
	case ephTTL:
		delete(db.ttls, path)
	}
}

// internACL returns a stored ACL list equal to acl, sharing one slice among
// every node with the same ACL as ZooKeeper's ReferenceCountedACLCache does.
// Lists are never evicted; their number is small in practice.
func (db *DB) internACL(acl []jute.ACL) []jute.ACL {
	key := db.aclKey[:0]
	for i := range acl {
		key = appendACLKey(key, &acl[i])
	}
	db.aclKey = key
	if s, ok := db.acls[string(key)]; ok {
		return s
	}
	s := slices.Clone(acl)
	db.acls[string(key)] = s
	return s
}

func appendACLKey(b []byte, a *jute.ACL) []byte {
	p := uint32(a.Perms)
	b = append(b, byte(p>>24), byte(p>>16), byte(p>>8), byte(p))
	b = appendLenString(b, a.ID.Scheme)
	return appendLenString(b, a.ID.ID)
}

func appendLenString(b []byte, s string) []byte {
	n := uint32(len(s))
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, s...)
}
