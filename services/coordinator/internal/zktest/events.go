package zktest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// Barrier makes a round trip on conn (a sync of "/"). A server sends a
// session's notifications in order with its responses, so once the
// barrier returns, every notification caused by a write that completed
// before it was called has reached the client. This is what makes event
// collection deterministic without sleeping.
func Barrier(conn *zk.Conn) error {
	if _, err := conn.Sync("/"); err != nil {
		return fmt.Errorf("zktest: barrier: %w", err)
	}
	return nil
}

// EventLog records, in arrival order, the watch notifications one session
// receives (session state changes are left out). It is fed by
// go-zookeeper's event callback, which runs on the receive loop before the
// response that follows the notification is delivered.
type EventLog struct {
	mu     sync.Mutex
	events []zk.Event
}

func (l *EventLog) record(ev zk.Event) {
	if ev.Type == zk.EventSession {
		return
	}
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

// Take returns the notifications recorded since the last Take.
func (l *EventLog) Take() []zk.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

// Settle makes a Barrier on conn (the session this log belongs to) and
// then returns what Take returns.
func (l *EventLog) Settle(t testing.TB, conn *zk.Conn) []zk.Event {
	t.Helper()
	if err := Barrier(conn); err != nil {
		t.Fatal(err)
	}
	return l.Take()
}

// Fired is a notification delivered to a named one-shot watch.
type Fired struct {
	Name  string
	Event zk.Event
}

func (f Fired) String() string {
	return fmt.Sprintf("%s: %v %s", f.Name, f.Event.Type, f.Event.Path)
}

// Watches collects the channels of one-shot watches (GetW, ExistsW,
// ChildrenW) under names, and reports which fired in a deterministic order:
// the order the watches were added, not the order goroutines ran.
type Watches struct {
	mu      sync.Mutex
	pending []namedWatch
}

type namedWatch struct {
	name string
	ch   <-chan zk.Event
}

// Add registers a watch channel under name.
func (w *Watches) Add(name string, ch <-chan zk.Event) {
	w.mu.Lock()
	w.pending = append(w.pending, namedWatch{name, ch})
	w.mu.Unlock()
}

// Collect makes a Barrier on every conn given (the sessions owning the
// watches), then returns the watches that have fired, in the order they
// were added, and forgets them: a one-shot watch fires once.
func (w *Watches) Collect(t testing.TB, conns ...*zk.Conn) []Fired {
	t.Helper()
	for _, c := range conns {
		if err := Barrier(c); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var fired []Fired
	kept := w.pending[:0]
	for _, nw := range w.pending {
		select {
		case ev := <-nw.ch:
			fired = append(fired, Fired{nw.name, ev})
		default:
			kept = append(kept, nw)
		}
	}
	w.pending = kept
	return fired
}

// Pending returns the names of the watches that have not fired yet.
func (w *Watches) Pending() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(w.pending))
	for i, nw := range w.pending {
		out[i] = nw.name
	}
	return out
}

// Next waits up to timeout for the next event on ch, for notifications
// that a server timer rather than a client write causes (session expiry,
// container and TTL cleanup).
func Next(t testing.TB, ch <-chan zk.Event, timeout time.Duration) zk.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("zktest: watch channel closed without an event")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("zktest: no event within %v", timeout)
	}
	return zk.Event{}
}
