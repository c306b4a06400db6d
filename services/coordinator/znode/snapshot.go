package znode

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// Snapshot format, version 1. Fields use jute's encoding (big-endian ints
// and longs, length-prefixed buffers and strings):
//
//	magic "RZNS", version byte
//	long lastZxid
//	int aclCount, then aclCount ACL vectors
//	long nodeCount, then per node, parents before children:
//	    string path, buffer data, int aclIndex,
//	    long czxid, mzxid, ctime, mtime, int version, cversion, aversion,
//	    long ephemeralOwner, pzxid           (stored form, see persisted)
//	int sessionCount, then per session: long id, int timeout, buffer passwd
//	CRC-32C (Castagnoli) of everything before it, big-endian
//
// Watches are not part of it: they belong to connections.
const (
	snapMagic   = "RZNS"
	snapVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteSnapshot writes the tree, the session table and LastZxid to w under
// the read lock, so Apply waits while it runs.
func (db *DB) WriteSnapshot(w io.Writer) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	e := &jute.Encoder{B: make([]byte, 0, 4096)}
	flush := func() error {
		_, err := bw.Write(e.B)
		e.B = e.B[:0]
		return err
	}

	e.B = append(e.B, snapMagic...)
	e.B = append(e.B, snapVersion)
	e.Long(db.lastZxid)

	// ACL table: every distinct list once, nodes refer to it by index.
	aclIndex := make(map[*jute.ACL]int32)
	var aclLists [][]jute.ACL
	indexOf := func(acl []jute.ACL) int32 {
		if len(acl) == 0 {
			return -1
		}
		if i, ok := aclIndex[&acl[0]]; ok {
			return i
		}
		i := int32(len(aclLists))
		aclIndex[&acl[0]] = i
		aclLists = append(aclLists, acl)
		return i
	}
	order := db.preorder()
	nodeACL := make([]int32, len(order))
	for i, p := range order {
		nodeACL[i] = indexOf(db.nodes[p].acl)
	}
	e.Int(int32(len(aclLists)))
	for _, acl := range aclLists {
		e.Int(int32(len(acl)))
		for i := range acl {
			acl[i].Encode(e)
		}
	}
	e.Long(int64(len(order)))
	for i, p := range order {
		n := db.nodes[p]
		e.String(p)
		e.Buffer(n.data)
		e.Int(nodeACL[i])
		e.Long(n.st.czxid)
		e.Long(n.st.mzxid)
		e.Long(n.st.ctime)
		e.Long(n.st.mtime)
		e.Int(n.st.version)
		e.Int(n.st.cversion)
		e.Int(n.st.aversion)
		e.Long(n.st.owner)
		e.Long(n.st.pzxid)
		if len(e.B) >= 32<<10 {
			if err := flush(); err != nil {
				return fmt.Errorf("znode: write snapshot: %w", err)
			}
		}
	}
	ids := make([]int64, 0, len(db.sessions))
	for id := range db.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	e.Int(int32(len(ids)))
	for _, id := range ids {
		s := db.sessions[id]
		e.Long(s.ID)
		e.Int(s.Timeout)
		e.Buffer(s.Passwd)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("znode: write snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("znode: write snapshot: %w", err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return fmt.Errorf("znode: write snapshot: %w", err)
	}
	return nil
}

// preorder lists every path, each parent before its children and siblings
// in name order, so the output is deterministic.
func (db *DB) preorder() []string {
	out := make([]string, 0, len(db.nodes))
	var walk func(path string, n *node)
	walk = func(path string, n *node) {
		out = append(out, path)
		for _, name := range n.childList() {
			child := "/" + name
			if path != "/" {
				child = path + child
			}
			walk(child, n.children[name])
		}
	}
	walk("/", db.root)
	return out
}

// ReadSnapshot replaces the tree, the session table and LastZxid with a
// snapshot written by WriteSnapshot. The input is checked whole (format
// version, checksum, structure) before anything changes; corrupt input
// yields an error wrapping ErrCorrupt and leaves the DB as it was. Watches
// stay registered and do not fire.
func (db *DB) ReadSnapshot(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("znode: read snapshot: %w", err)
	}
	fresh, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	db.nodes = fresh.nodes
	db.root = fresh.root
	db.sessions = fresh.sessions
	db.ephemerals = fresh.ephemerals
	db.containers = fresh.containers
	db.ttls = fresh.ttls
	db.lastZxid = fresh.lastZxid
	db.dataSize = fresh.dataSize
	db.acls = fresh.acls
	return nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: snapshot: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// decodeSnapshot builds a DB (without watches) from a snapshot.
func decodeSnapshot(b []byte) (*DB, error) {
	if len(b) < len(snapMagic)+1+4 || string(b[:len(snapMagic)]) != snapMagic {
		return nil, corrupt("bad magic")
	}
	if v := b[len(snapMagic)]; v != snapVersion {
		return nil, corrupt("format version %d", v)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, corrupt("checksum mismatch")
	}
	d := jute.NewDecoder(body[len(snapMagic)+1:])
	db := &DB{
		nodes:      make(map[string]*node),
		sessions:   make(map[int64]Session),
		ephemerals: make(map[int64]map[string]struct{}),
		containers: make(map[string]struct{}),
		ttls:       make(map[string]struct{}),
		acls:       make(map[string][]jute.ACL),
	}
	db.lastZxid = d.Long()

	// An ACL is at least 12 bytes (perms and two string lengths), a vector 4.
	nACL := d.VectorLen(4)
	if nACL < 0 {
		return nil, corrupt("null ACL table")
	}
	aclLists := make([][]jute.ACL, 0, nACL)
	for i := 0; i < nACL && d.Err() == nil; i++ {
		n := d.VectorLen(12)
		if n <= 0 {
			return nil, corrupt("ACL list %d is empty or null", i)
		}
		acl := make([]jute.ACL, n)
		for j := range acl {
			acl[j].Decode(d)
		}
		aclLists = append(aclLists, db.internACL(acl))
	}
	if d.Err() != nil {
		return nil, corrupt("ACL table: %v", d.Err())
	}

	// A node record is at least 4+4+4+8*6+4*3 = 72 bytes.
	count := d.Long()
	if count < 1 || count > int64(d.Remaining()/72) {
		return nil, corrupt("node count %d", count)
	}
	for i := int64(0); i < count; i++ {
		path := d.String()
		data := d.Buffer()
		ai := d.Int()
		n := &node{data: data}
		n.st.czxid = d.Long()
		n.st.mzxid = d.Long()
		n.st.ctime = d.Long()
		n.st.mtime = d.Long()
		n.st.version = d.Int()
		n.st.cversion = d.Int()
		n.st.aversion = d.Int()
		n.st.owner = d.Long()
		n.st.pzxid = d.Long()
		if d.Err() != nil {
			return nil, corrupt("node %d: %v", i, d.Err())
		}
		switch {
		case ai == -1:
		case ai >= 0 && int(ai) < len(aclLists):
			n.acl = aclLists[ai]
		default:
			return nil, corrupt("node %q: ACL index %d", path, ai)
		}
		if i == 0 {
			if path != "/" {
				return nil, corrupt("first node is %q, not the root", path)
			}
			if n.st.owner != 0 {
				return nil, corrupt("the root has owner 0x%x", n.st.owner)
			}
			db.root = n
			db.nodes["/"] = n
			db.dataSize += nodeSize("/", data)
			continue
		}
		if !validPath(path) || path == "/" {
			return nil, corrupt("invalid path %q", path)
		}
		if db.nodes[path] != nil {
			return nil, corrupt("duplicate path %q", path)
		}
		parentPath, name := splitPath(path)
		parent := db.lookup(parentPath)
		if parent == nil {
			return nil, corrupt("node %q precedes its parent", path)
		}
		if ownerType(parent.st.owner) == ephNormal {
			return nil, corrupt("node %q under an ephemeral", path)
		}
		db.insertNode(path, parent, name, n)
	}

	nSess := d.VectorLen(16)
	if nSess < 0 {
		return nil, corrupt("null session table")
	}
	for i := 0; i < nSess && d.Err() == nil; i++ {
		s := Session{ID: d.Long(), Timeout: d.Int(), Passwd: d.Buffer()}
		if _, dup := db.sessions[s.ID]; dup && d.Err() == nil {
			return nil, corrupt("duplicate session 0x%x", s.ID)
		}
		db.sessions[s.ID] = s
	}
	if d.Err() != nil {
		return nil, corrupt("sessions: %v", d.Err())
	}
	if d.Remaining() != 0 {
		return nil, corrupt("%d trailing bytes", d.Remaining())
	}
	// Closing a session deletes its ephemerals in the same Txn, so an
	// ephemeral without its session cannot come from WriteSnapshot.
	for owner := range db.ephemerals {
		if _, ok := db.sessions[owner]; !ok {
			return nil, corrupt("ephemerals of unknown session 0x%x", owner)
		}
	}
	return db, nil
}
