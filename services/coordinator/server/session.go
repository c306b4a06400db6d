package server

import (
	"sync"
	"time"
)

// tracker records when each session was last heard from, and finds the
// sessions whose timeout has passed. Only the leader's tracker expires
// anything; followers report liveness to it through the Replicator.
type tracker struct {
	mu       sync.Mutex
	deadline map[int64]time.Time
}

func newTracker() *tracker { return &tracker{deadline: make(map[int64]time.Time)} }

// touch extends a session's life by timeout from now.
func (t *tracker) touch(id int64, timeout time.Duration, now time.Time) {
	t.mu.Lock()
	t.deadline[id] = now.Add(timeout)
	t.mu.Unlock()
}

// touchKnown extends only sessions the tracker already knows, using their
// stored timeouts looked up by timeoutOf.
func (t *tracker) touchAll(ids []int64, timeoutOf func(int64) (time.Duration, bool), now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if to, ok := timeoutOf(id); ok {
			t.deadline[id] = now.Add(to)
		}
	}
}

// forget drops a session.
func (t *tracker) forget(id int64) {
	t.mu.Lock()
	delete(t.deadline, id)
	t.mu.Unlock()
}

// reset forgets every session (leadership lost).
func (t *tracker) reset() {
	t.mu.Lock()
	clear(t.deadline)
	t.mu.Unlock()
}

// sync makes the tracker hold exactly the sessions in live: unknown ones
// get a full timeout from now (a new leader, or a restart, grants every
// session its whole timeout, as ZooKeeper does), vanished ones are dropped.
// It returns the sessions whose deadline has passed.
func (t *tracker) expired(live map[int64]time.Duration, now time.Time) []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int64
	for id := range t.deadline {
		if _, ok := live[id]; !ok {
			delete(t.deadline, id)
		}
	}
	for id, to := range live {
		d, ok := t.deadline[id]
		if !ok {
			t.deadline[id] = now.Add(to)
			continue
		}
		if now.After(d) {
			out = append(out, id)
		}
	}
	return out
}
