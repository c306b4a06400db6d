package znode

import (
	"slices"
	"strings"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// watchKind is a set of watch kinds one watcher holds on one path. The
// kinds are independent: a persistent watch survives a one-shot data watch
// on the same path firing (ZooKeeper 3.9 semantics, ZOOKEEPER-4466; 3.8
// let the later registration replace the earlier one's mode).
type watchKind uint8

const (
	// watchData is a one-shot data watch (getData, or exists, which on a
	// missing node waits for its creation).
	watchData watchKind = 1 << iota
	// watchChild is a one-shot child watch (getChildren).
	watchChild
	// watchPersistent fires for the node's own changes and stays.
	watchPersistent
	// watchRecursive fires for the node and its descendants and stays.
	watchRecursive
)

// watcherState is what the registry keeps per watcher: its paths, and the
// order in which it first registered, which fixes the order of
// notifications when one event reaches several watchers.
type watcherState struct {
	w     Watcher
	seq   uint64
	paths map[string]watchKind
	mark  uint64 // last event that notified it, for de-duplication
}

// watchRegistry is DataTree's pair of WatchManagers folded into one table.
type watchRegistry struct {
	byPath    map[string]map[*watcherState]watchKind
	byWatcher map[Watcher]*watcherState
	seq       uint64
	recursive int    // number of recursive watches; 0 skips ancestor walks
	event     uint64 // event counter for watcherState.mark
	hits      []*watcherState
	consumed  []*watcherState
}

func newWatchRegistry() watchRegistry {
	return watchRegistry{
		byPath:    make(map[string]map[*watcherState]watchKind),
		byWatcher: make(map[Watcher]*watcherState),
	}
}

// add registers kind for w on path and reports whether it was new.
func (r *watchRegistry) add(w Watcher, path string, kind watchKind) bool {
	ws := r.byWatcher[w]
	if ws == nil {
		r.seq++
		ws = &watcherState{w: w, seq: r.seq, paths: make(map[string]watchKind)}
		r.byWatcher[w] = ws
	}
	old := ws.paths[path]
	if old&kind == kind {
		return false
	}
	ws.paths[path] = old | kind
	m := r.byPath[path]
	if m == nil {
		m = make(map[*watcherState]watchKind, 1)
		r.byPath[path] = m
	}
	m[ws] = old | kind
	if kind&watchRecursive != 0 && old&watchRecursive == 0 {
		r.recursive++
	}
	return true
}

// remove drops the kinds in mask that w holds on path and returns the kinds
// it actually held.
func (r *watchRegistry) remove(ws *watcherState, path string, mask watchKind) watchKind {
	old := ws.paths[path]
	gone := old & mask
	if gone == 0 {
		return 0
	}
	left := old &^ mask
	if gone&watchRecursive != 0 {
		r.recursive--
	}
	m := r.byPath[path]
	if left == 0 {
		delete(ws.paths, path)
		delete(m, ws)
		if len(m) == 0 {
			delete(r.byPath, path)
		}
	} else {
		ws.paths[path] = left
		m[ws] = left
	}
	if len(ws.paths) == 0 {
		delete(r.byWatcher, ws.w)
	}
	return gone
}

// removeWatcher drops every watch of w.
func (r *watchRegistry) removeWatcher(w Watcher) {
	ws := r.byWatcher[w]
	if ws == nil {
		return
	}
	for path, kinds := range ws.paths {
		if kinds&watchRecursive != 0 {
			r.recursive--
		}
		m := r.byPath[path]
		delete(m, ws)
		if len(m) == 0 {
			delete(r.byPath, path)
		}
	}
	delete(r.byWatcher, w)
}

// kinds returns what w holds on path.
func (r *watchRegistry) kinds(w Watcher, path string) (*watcherState, watchKind) {
	ws := r.byWatcher[w]
	if ws == nil {
		return nil, 0
	}
	return ws, ws.paths[path]
}

// Which watch kinds an event reaches on the node's own path. One-shot kinds
// in the mask are consumed.
const (
	dataEventKinds    = watchData | watchPersistent              // created, data changed
	deletedEventKinds = watchData | watchChild | watchPersistent // deleted
	childEventKinds   = watchChild | watchPersistent             // children changed
	oneShotKinds      = watchData | watchChild
)

// trigger delivers one event, like WatchManager.triggerWatch on the data
// and child managers together: every watcher holding a matching watch on
// path (and, except for NodeChildrenChanged, a recursive watch on path or an
// ancestor) is notified once, in registration order, and its one-shot
// watches on path are consumed.
func (r *watchRegistry) trigger(typ int32, path string, zxid int64) {
	if len(r.byPath) == 0 {
		return
	}
	var mask watchKind
	switch typ {
	case jute.EventNodeDeleted:
		mask = deletedEventKinds
	case jute.EventNodeChildrenChanged:
		mask = childEventKinds
	default:
		mask = dataEventKinds
	}
	r.event++
	hits := r.hits[:0]
	if m := r.byPath[path]; m != nil {
		consumed := r.consumed[:0]
		for ws, kinds := range m {
			if kinds&mask == 0 {
				continue
			}
			ws.mark = r.event
			hits = append(hits, ws)
			if kinds&mask&oneShotKinds != 0 {
				consumed = append(consumed, ws)
			}
		}
		for _, ws := range consumed {
			r.remove(ws, path, mask&oneShotKinds)
		}
		clear(consumed)
		r.consumed = consumed[:0]
	}
	if r.recursive > 0 && typ != jute.EventNodeChildrenChanged {
		for p := path; ; {
			if m := r.byPath[p]; m != nil {
				for ws, kinds := range m {
					if kinds&watchRecursive != 0 && ws.mark != r.event {
						ws.mark = r.event
						hits = append(hits, ws)
					}
				}
			}
			if p == "/" {
				break
			}
			if i := strings.LastIndexByte(p, '/'); i > 0 {
				p = p[:i]
			} else {
				p = "/"
			}
		}
	}
	if len(hits) == 0 {
		r.hits = hits
		return
	}
	slices.SortFunc(hits, func(a, b *watcherState) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	ev := jute.WatcherEvent{Type: typ, State: jute.StateSyncConnected, Path: path}
	for _, ws := range hits {
		ws.w.Notify(ev, zxid)
	}
	clear(hits)
	r.hits = hits[:0]
}

// count returns the number of watches (one per kind held on a path) and the
// number of watched paths.
func (r *watchRegistry) count() (watches, paths int) {
	for _, m := range r.byPath {
		for _, kinds := range m {
			for k := kinds; k != 0; k &= k - 1 {
				watches++
			}
		}
	}
	return watches, len(r.byPath)
}
