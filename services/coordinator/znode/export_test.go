package znode

import "fmt"

// CheckInvariants verifies that every index of db agrees with the tree and
// that the watch registry's two views agree. Tests call it after each step.
func CheckInvariants(db *DB) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.nodes["/"] != db.root {
		return fmt.Errorf("root is not nodes[/]")
	}
	var size int64
	eph := map[int64]int{}
	containers, ttls := 0, 0
	for path, n := range db.nodes {
		size += nodeSize(path, n.data)
		if path != "/" {
			parentPath, name := splitPath(path)
			parent := db.lookup(parentPath)
			if parent == nil {
				return fmt.Errorf("%s: no parent", path)
			}
			if parent.children[name] != n {
				return fmt.Errorf("%s: parent does not list it", path)
			}
		}
		for name, c := range n.children {
			child := path + "/" + name
			if path == "/" {
				child = "/" + name
			}
			if db.nodes[child] != c {
				return fmt.Errorf("%s: child %s missing from the index", path, name)
			}
		}
		if p := n.sorted.Load(); p != nil && len(*p) != len(n.children) {
			return fmt.Errorf("%s: stale sorted children", path)
		}
		switch ownerType(n.st.owner) {
		case ephNormal:
			eph[n.st.owner]++
			if _, ok := db.ephemerals[n.st.owner][path]; !ok {
				return fmt.Errorf("%s: missing from ephemerals of 0x%x", path, n.st.owner)
			}
		case ephContainer:
			containers++
			if _, ok := db.containers[path]; !ok {
				return fmt.Errorf("%s: missing from containers", path)
			}
		case ephTTL:
			ttls++
			if _, ok := db.ttls[path]; !ok {
				return fmt.Errorf("%s: missing from ttls", path)
			}
		}
	}
	if size != db.dataSize {
		return fmt.Errorf("data size %d, recomputed %d", db.dataSize, size)
	}
	for id, set := range db.ephemerals {
		if len(set) == 0 || len(set) != eph[id] {
			return fmt.Errorf("ephemerals of 0x%x: %d indexed, %d nodes", id, len(set), eph[id])
		}
	}
	if len(db.containers) != containers || len(db.ttls) != ttls {
		return fmt.Errorf("containers %d/%d, ttls %d/%d", len(db.containers), containers, len(db.ttls), ttls)
	}
	recursive := 0
	for w, ws := range db.watches.byWatcher {
		if ws.w != w || len(ws.paths) == 0 {
			return fmt.Errorf("watcher state mismatch")
		}
		for p, k := range ws.paths {
			if k == 0 || db.watches.byPath[p][ws] != k {
				return fmt.Errorf("watch on %s: kinds %b vs %b", p, k, db.watches.byPath[p][ws])
			}
			if k&watchRecursive != 0 {
				recursive++
			}
		}
	}
	for p, m := range db.watches.byPath {
		if len(m) == 0 {
			return fmt.Errorf("empty watch set on %s", p)
		}
		for ws, k := range m {
			if db.watches.byWatcher[ws.w] != ws || ws.paths[p] != k {
				return fmt.Errorf("watch on %s not indexed by watcher", p)
			}
		}
	}
	if recursive != db.watches.recursive {
		return fmt.Errorf("recursive count %d, actual %d", db.watches.recursive, recursive)
	}
	if len(db.pending) != 0 || len(db.undo) != 0 {
		return fmt.Errorf("scratch not cleared")
	}
	return nil
}
