// Package notify tells people about consumer groups in trouble, the way
// Burrow's notifiers do.
//
// Every notifier module evaluates each group every `interval`. A group whose
// status rises above OK opens an incident (an id and a start time, shared by
// all modules). A module sends its open message when the status is at or
// above its `threshold`, at most once every `send-interval` (or once per
// incident with `send-once`); with `send-close` it sends the close message
// when the group is OK again, if it had sent an open one. Messages are Go
// text/templates over Burrow's template data: .Cluster, .Group, .ID, .Start,
// .Extras and .Result (the group status), with Burrow's helper functions
// (jsonencoder, topicsbystatus, partitioncounts, add, minus, multiply,
// divide, maxlag, formattimestamp).
//
// Two kinds of module exist: "http" (a webhook: the URLs are templates too)
// and "log" (a structured log line).
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"regexp"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

// Event is one notification.
type Event struct {
	Cluster, Group string
	// ID identifies the incident; Start is when it opened.
	ID    string
	Start time.Time
	// Result is the group's evaluation (all partitions).
	Result *evaluate.GroupStatus
	// Close is set for the message that closes an incident.
	Close bool
}

// Notifier sends events somewhere.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// Module is a configured notifier with Burrow's sending rules.
type Module struct {
	Name         string
	Allow, Deny  *regexp.Regexp
	Interval     time.Duration
	SendInterval time.Duration
	Threshold    evaluate.Status
	SendClose    bool
	SendOnce     bool
	Notifier     Notifier
}

func (m *Module) accepts(group string) bool {
	if m.Allow != nil && !m.Allow.MatchString(group) {
		return false
	}
	return m.Deny == nil || !m.Deny.MatchString(group)
}

type groupKey struct{ cluster, group string }

type incident struct {
	id    string
	start time.Time
}

// moduleState is what a module remembers of one group.
type moduleState struct {
	lastEval   time.Time
	lastNotify time.Time
	openedFor  string // incident id the last open message was for
}

// Manager runs the modules over a store.
type Manager struct {
	store   *window.Store
	eval    evaluate.Config
	modules []*Module
	log     *slog.Logger
	now     func() time.Time

	incidents map[groupKey]*incident
	state     []map[groupKey]*moduleState // per module
}

// NewManager builds a manager; now defaults to time.Now.
func NewManager(store *window.Store, eval evaluate.Config, modules []*Module, logger *slog.Logger, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	m := &Manager{store: store, eval: eval, modules: modules, log: logger, now: now, incidents: map[groupKey]*incident{}}
	for range modules {
		m.state = append(m.state, map[groupKey]*moduleState{})
	}
	return m
}

// Run checks the groups every smallest module interval until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	if len(m.modules) == 0 {
		<-ctx.Done()
		return nil
	}
	tick := m.modules[0].Interval
	for _, mod := range m.modules {
		tick = min(tick, mod.Interval)
	}
	t := time.NewTicker(max(tick, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.Check(ctx)
		}
	}
}

// Check evaluates every group whose modules are due and sends what the
// rules call for. Run calls it; tests call it directly.
func (m *Manager) Check(ctx context.Context) {
	now := m.now()
	live := map[groupKey]bool{}
	for _, cluster := range m.store.Clusters() {
		groups, _ := m.store.Groups(cluster)
		for _, g := range groups {
			key := groupKey{cluster, g}
			live[key] = true
			m.checkGroup(ctx, key, now)
		}
	}
	// Forget groups that are gone.
	for key := range m.incidents {
		if !live[key] {
			delete(m.incidents, key)
		}
	}
	for _, st := range m.state {
		for key := range st {
			if !live[key] {
				delete(st, key)
			}
		}
	}
}

func (m *Manager) checkGroup(ctx context.Context, key groupKey, now time.Time) {
	var due []int
	for i, mod := range m.modules {
		st := m.state[i][key]
		if st == nil {
			st = &moduleState{}
			m.state[i][key] = st
		}
		if mod.accepts(key.group) && now.Sub(st.lastEval) >= mod.Interval {
			st.lastEval = now
			due = append(due, i)
		}
	}
	if len(due) == 0 {
		return
	}
	snap, err := m.store.Group(key.cluster, key.group)
	if err != nil {
		return
	}
	status := evaluate.Group(snap, now, m.eval, true)
	inc := m.incidents[key]
	if inc == nil && status.Status > evaluate.OK {
		inc = &incident{id: newID(), start: now}
		m.incidents[key] = inc
	}
	for _, i := range due {
		m.apply(ctx, i, key, status, inc, now)
	}
	if status.Status == evaluate.OK {
		delete(m.incidents, key)
	}
}

// apply is Burrow's per-module decision.
func (m *Manager) apply(ctx context.Context, i int, key groupKey, status *evaluate.GroupStatus, inc *incident, now time.Time) {
	mod, st := m.modules[i], m.state[i][key]
	if inc == nil {
		return
	}
	ev := Event{Cluster: key.cluster, Group: key.group, ID: inc.id, Start: inc.start, Result: status}
	if status.Status == evaluate.OK {
		if mod.SendClose && st.openedFor == inc.id {
			ev.Close = true
			m.send(ctx, mod, ev)
		}
		st.lastNotify, st.openedFor = time.Time{}, ""
		return
	}
	if status.Status < mod.Threshold {
		return
	}
	if mod.SendOnce && st.openedFor == inc.id {
		return
	}
	if !st.lastNotify.IsZero() && now.Sub(st.lastNotify) < mod.SendInterval {
		return
	}
	m.send(ctx, mod, ev)
	st.lastNotify, st.openedFor = now, inc.id
}

func (m *Manager) send(ctx context.Context, mod *Module, ev Event) {
	if err := mod.Notifier.Notify(ctx, ev); err != nil {
		m.log.Warn("notification failed", "notifier", mod.Name, "cluster", ev.Cluster, "group", ev.Group, "close", ev.Close, "err", err)
	}
}

// newID returns a random incident id (a UUID-shaped hex string).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
