package metadata

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Config configures a Store.
type Config struct {
	// Connect is a ZooKeeper connect string: host:port[,host:port...][/chroot].
	Connect string
	// SessionTimeout is zookeeper.session.timeout.ms.
	SessionTimeout time.Duration
	// Self is this broker's registration (ID, advertised Host and Port, Rack).
	Self Broker
	// ConnectTimeout bounds how long Start waits for a first session.
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Store is the broker's view of the cluster metadata in ZooKeeper.
type Store struct {
	cfg    Config
	log    *slog.Logger
	chroot string
	conn   *zk.Conn
	events <-chan zk.Event

	mu           sync.RWMutex
	clusterID    string
	controllerID int32
	ctrlEpoch    int32
	// ctrlEpochVersion is the znode version of /controller_epoch this
	// broker wrote when it became controller: its controller writes check
	// it (fencing).
	ctrlEpochVersion int32
	brokers          map[int32]Broker
	topics           map[string]*Topic
	listeners        []func()

	writeMu sync.Mutex // serializes this broker's metadata writes

	watchMu  sync.Mutex
	watches  map[string]uint64 // pending watches by kind and path, with their token
	watchGen uint64

	pidMu           sync.Mutex
	pidNext, pidEnd int64

	// Keys of cached metadata a watch reported as changed, coalesced:
	// a key already pending is not queued twice.
	pendingMu sync.Mutex
	pending   map[string]bool
	dirty     chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Persistent paths Kafka creates at start-up.
var persistentPaths = []string{
	"/brokers/ids", "/brokers/topics", "/brokers/seqid", "/config/changes", "/config/topics",
	"/config/brokers", "/config/clients", "/config/users", "/admin/delete_topics",
	"/isr_change_notification", "/log_dir_event_notification", "/cluster", "/consumers",
}

// New returns a Store that is not connected yet.
func New(cfg Config) (*Store, error) {
	servers, chroot, err := ParseConnect(cfg.Connect)
	if err != nil {
		return nil, err
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 18 * time.Second
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	_ = servers
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{cfg: cfg, log: cfg.Logger.With("component", "metadata"), chroot: chroot,
		controllerID: -1, brokers: map[int32]Broker{}, topics: map[string]*Topic{},
		pending: map[string]bool{}, dirty: make(chan struct{}, 1), ctx: ctx, cancel: cancel, watches: map[string]uint64{}}, nil
}

// ParseConnect splits a connect string into servers and a chroot ("" for
// none). A server without a port gets 2181.
func ParseConnect(s string) ([]string, string, error) {
	hosts, chroot := s, ""
	if i := strings.IndexByte(s, '/'); i >= 0 {
		hosts, chroot = s[:i], strings.TrimRight(s[i:], "/")
	}
	var out []string
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, "2181")
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("metadata: connect string %q names no server", s)
	}
	if chroot != "" && path.Clean(chroot) != chroot {
		return nil, "", fmt.Errorf("metadata: connect string %q has an invalid chroot", s)
	}
	return out, chroot, nil
}

type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) { z.l.Debug(fmt.Sprintf(format, args...)) }

// Start connects, registers the broker, runs the controller election and
// loads the metadata. It returns once the broker is registered.
func (s *Store) Start(ctx context.Context) error {
	servers, _, _ := ParseConnect(s.cfg.Connect)
	conn, events, err := zk.Connect(servers, s.cfg.SessionTimeout, zk.WithLogger(zkLogger{s.log}))
	if err != nil {
		return fmt.Errorf("metadata: connect %s: %w", s.cfg.Connect, err)
	}
	s.conn, s.events = conn, events
	wait, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	for conn.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-wait.Done():
			conn.Close()
			return fmt.Errorf("metadata: no session with %s: %w", s.cfg.Connect, wait.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := s.setup(); err != nil {
		conn.Close()
		return err
	}
	s.wg.Add(2)
	go s.sessionLoop()
	go s.refreshLoop()
	return nil
}

// Close deregisters (by closing the session) and stops the watches.
func (s *Store) Close() error {
	s.cancel()
	if s.conn != nil {
		s.conn.Close()
	}
	s.wg.Wait()
	return nil
}

func (s *Store) p(p string) string { return s.chroot + p }

// setup runs on every new session: paths, cluster id, registration,
// controller election, full reload with fresh watches.
func (s *Store) setup() error {
	if s.chroot != "" {
		if err := s.ensure(""); err != nil {
			return err
		}
	}
	for _, p := range persistentPaths {
		if err := s.ensure(p); err != nil {
			return err
		}
	}
	if err := s.loadClusterID(); err != nil {
		return err
	}
	if err := s.register(); err != nil {
		return err
	}
	if err := s.reloadAll(); err != nil {
		return err
	}
	if err := s.elect(); err != nil {
		return err
	}
	return nil
}

// ensure creates p and its parents (under the chroot) when missing.
func (s *Store) ensure(p string) error {
	full := s.p(p)
	parts := strings.Split(strings.TrimPrefix(full, "/"), "/")
	cur := ""
	for _, part := range parts {
		cur += "/" + part
		if _, err := s.conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("metadata: create %s: %w", cur, err)
		}
	}
	return nil
}

func (s *Store) loadClusterID() error {
	for {
		data, _, err := s.conn.Get(s.p("/cluster/id"))
		if err == nil {
			var v struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(data, &v); err != nil || v.ID == "" {
				return fmt.Errorf("metadata: /cluster/id %q is not Kafka's JSON: %v", data, err)
			}
			s.mu.Lock()
			s.clusterID = v.ID
			s.mu.Unlock()
			return nil
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("metadata: read /cluster/id: %w", err)
		}
		var id [16]byte
		_, _ = rand.Read(id[:])
		id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, as Kafka's Uuid.randomUuid
		id[8] = id[8]&0x3f | 0x80
		body, _ := json.Marshal(map[string]string{"version": "1", "id": base64.RawURLEncoding.EncodeToString(id[:])})
		if _, err := s.conn.Create(s.p("/cluster/id"), body, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("metadata: create /cluster/id: %w", err)
		}
	}
}

// brokerJSON is Kafka's /brokers/ids/<id> registration (version 5).
type brokerJSON struct {
	ListenerSecurityProtocolMap map[string]string `json:"listener_security_protocol_map"`
	Endpoints                   []string          `json:"endpoints"`
	JmxPort                     int               `json:"jmx_port"`
	Features                    map[string]any    `json:"features"`
	Host                        string            `json:"host"`
	Timestamp                   string            `json:"timestamp"`
	Port                        int32             `json:"port"`
	Version                     int               `json:"version"`
	Rack                        *string           `json:"rack,omitempty"`
}

func (s *Store) register() error {
	b := s.cfg.Self
	body, _ := json.Marshal(brokerJSON{
		ListenerSecurityProtocolMap: map[string]string{"PLAINTEXT": "PLAINTEXT"},
		Endpoints:                   []string{"PLAINTEXT://" + net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))},
		JmxPort:                     -1,
		Features:                    map[string]any{},
		Host:                        b.Host,
		Timestamp:                   strconv.FormatInt(time.Now().UnixMilli(), 10),
		Port:                        b.Port,
		Version:                     5,
		Rack:                        b.Rack,
	})
	p := s.p("/brokers/ids/" + strconv.Itoa(int(b.ID)))
	deadline := time.Now().Add(s.cfg.SessionTimeout + 5*time.Second)
	for {
		_, err := s.conn.Create(p, body, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		if err == nil {
			return nil
		}
		if !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("metadata: register broker %d: %w", b.ID, err)
		}
		// The node may belong to this broker's previous session, which
		// the server expires within its timeout (a restart after kill -9).
		_, st, gerr := s.conn.Get(p)
		if gerr == nil && st.EphemeralOwner == s.conn.SessionID() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("metadata: broker id %d is registered by another live session: %w", b.ID, err)
		}
		s.log.Info("waiting for a previous registration to expire", "path", p)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-s.ctx.Done():
			return ErrClosed
		}
	}
}

// elect tries to become the controller, as Kafka's brokers race to create
// the ephemeral /controller node. It watches the node so that a vacancy
// triggers another round.
func (s *Store) elect() error {
	self := s.cfg.Self.ID
	body, _ := json.Marshal(map[string]any{"version": 1, "brokerid": self, "timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10)})
	_, err := s.conn.Create(s.p("/controller"), body, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	switch {
	case err == nil:
		epoch, version, err := s.bumpControllerEpoch()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.controllerID, s.ctrlEpoch, s.ctrlEpochVersion = self, epoch, version
		s.mu.Unlock()
		s.log.Info("elected controller", "broker", self, "controller_epoch", epoch)
		if err := s.onControllerElected(); err != nil {
			return err
		}
	case errors.Is(err, zk.ErrNodeExists):
	default:
		return fmt.Errorf("metadata: controller election: %w", err)
	}
	data, _, err := s.getW(s.p("/controller"), "controller")
	if errors.Is(err, zk.ErrNoNode) {
		return s.elect()
	}
	if err != nil {
		return fmt.Errorf("metadata: read /controller: %w", err)
	}
	var v struct {
		BrokerID int32 `json:"brokerid"`
	}
	if json.Unmarshal(data, &v) == nil {
		s.mu.Lock()
		s.controllerID = v.BrokerID
		s.mu.Unlock()
	}
	return nil
}

// bumpControllerEpoch increments /controller_epoch and returns the new
// epoch and the znode version that holds it.
func (s *Store) bumpControllerEpoch() (int32, int32, error) {
	for {
		data, st, err := s.conn.Get(s.p("/controller_epoch"))
		if errors.Is(err, zk.ErrNoNode) {
			if _, err := s.conn.Create(s.p("/controller_epoch"), []byte("1"), 0, zk.WorldACL(zk.PermAll)); err == nil {
				return 1, 0, nil
			} else if !errors.Is(err, zk.ErrNodeExists) {
				return 0, 0, fmt.Errorf("metadata: create /controller_epoch: %w", err)
			}
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("metadata: read /controller_epoch: %w", err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		n++
		if nst, err := s.conn.Set(s.p("/controller_epoch"), []byte(strconv.Itoa(n)), st.Version); err == nil {
			return int32(n), nst.Version, nil
		} else if !errors.Is(err, zk.ErrBadVersion) {
			return 0, 0, fmt.Errorf("metadata: update /controller_epoch: %w", err)
		}
	}
}

// A znode carries at most one pending watch of ours per kind: re-reading a
// node whose watch has not fired yet reads without a new watch, so repeated
// reloads do not pile up watches (and goroutines) on unchanged nodes.

// getW reads a node, watching it unless a watch is already pending.
func (s *Store) getW(path, key string) ([]byte, *zk.Stat, error) {
	if s.armed("data:" + path) {
		return s.conn.Get(path)
	}
	data, st, ch, err := s.conn.GetW(path)
	if err != nil {
		return nil, nil, err
	}
	s.watch("data:"+path, key, ch)
	return data, st, nil
}

// existsW watches for a node's creation (or change) unless a watch on it
// is already pending.
func (s *Store) existsW(path, key string) {
	if s.armed("data:" + path) {
		return
	}
	if _, _, ch, err := s.conn.ExistsW(path); err == nil {
		s.watch("data:"+path, key, ch)
	}
}

// childrenW lists a node's children, watching them unless a watch is
// already pending.
func (s *Store) childrenW(path, key string) ([]string, error) {
	if s.armed("children:" + path) {
		c, _, err := s.conn.Children(path)
		return c, err
	}
	c, _, ch, err := s.conn.ChildrenW(path)
	if err != nil {
		return nil, err
	}
	s.watch("children:"+path, key, ch)
	return c, nil
}

func (s *Store) armed(id string) bool {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	_, ok := s.watches[id]
	return ok
}

// forgetWatches drops the record of pending watches: a new session has
// none (the server dropped them with the old one).
func (s *Store) forgetWatches() {
	s.watchMu.Lock()
	s.watches = map[string]uint64{}
	s.watchMu.Unlock()
}

// watch marks id as having a pending watch and forwards its firing to the
// refresh loop as a dirty key.
func (s *Store) watch(id, key string, ch <-chan zk.Event) {
	s.watchMu.Lock()
	s.watchGen++
	token := s.watchGen
	s.watches[id] = token
	s.watchMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var ev zk.Event
		select {
		case ev = <-ch:
		case <-s.ctx.Done():
			return
		}
		s.watchMu.Lock()
		if s.watches[id] == token {
			delete(s.watches, id)
		}
		s.watchMu.Unlock()
		if ev.Type == zk.EventNotWatching {
			return // session gone: setup re-arms everything
		}
		s.markDirty(key)
	}()
}

// markDirty queues key for the refresh loop unless it is already queued.
func (s *Store) markDirty(key string) {
	s.pendingMu.Lock()
	s.pending[key] = true
	s.pendingMu.Unlock()
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// takeDirty returns the queued keys, brokers and topic lists first (a
// topic's partitions are read after the list that names it).
func (s *Store) takeDirty() []string {
	s.pendingMu.Lock()
	keys := slices.Collect(maps.Keys(s.pending))
	clear(s.pending)
	s.pendingMu.Unlock()
	rank := func(k string) int {
		switch {
		case k == "controller":
			return 0
		case k == "brokers":
			return 1
		case k == "topics":
			return 2
		case strings.HasPrefix(k, "topic:"):
			return 3
		}
		return 4
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// sessionLoop redoes setup when the session expired and a new one began.
func (s *Store) sessionLoop() {
	defer s.wg.Done()
	session := s.conn.SessionID()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if ev.State == zk.StateHasSession && s.conn.SessionID() != session {
				session = s.conn.SessionID()
				s.log.Warn("new coordinator session after expiry: registering again")
				s.forgetWatches()
				for s.ctx.Err() == nil {
					if err := s.setup(); err != nil {
						s.log.Error("re-registration failed", "err", err)
						time.Sleep(time.Second)
						continue
					}
					break
				}
				s.notify()
			}
		}
	}
}

// refreshLoop re-reads what a watch reported as changed.
func (s *Store) refreshLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.dirty:
			for _, key := range s.takeDirty() {
				if err := s.refresh(key); err != nil && s.ctx.Err() == nil {
					s.log.Warn("metadata refresh failed", "key", key, "err", err)
					if !errors.Is(err, zk.ErrNoNode) {
						time.AfterFunc(time.Second, func() { s.markDirty(key) })
					}
				}
			}
			s.notify()
		}
	}
}

// refresh re-reads what one dirty key names.
func (s *Store) refresh(key string) error {
	kind, name, _ := strings.Cut(key, ":")
	switch kind {
	case "brokers":
		return s.loadBrokers()
	case "topics":
		return s.loadTopicList(false)
	case "topic":
		_, err := s.readTopic(name)
		return err
	case "state":
		i := strings.LastIndexByte(name, ':')
		if i < 0 {
			return nil
		}
		p, err := strconv.Atoi(name[i+1:])
		if err != nil {
			return nil
		}
		return s.loadState(name[:i], int32(p))
	case "deletions":
		return s.loadDeletions()
	case "controller":
		return s.elect()
	}
	return nil
}

// OnChange registers f to run after every change of the cached metadata
// (on the Store's goroutine, or on a writer's after its own write).
func (s *Store) OnChange(f func()) {
	s.mu.Lock()
	s.listeners = append(s.listeners, f)
	s.mu.Unlock()
}

func (s *Store) notify() {
	s.mu.RLock()
	ls := slices.Clone(s.listeners)
	s.mu.RUnlock()
	for _, f := range ls {
		f()
	}
}

// reloadAll reads everything again and re-arms every watch, as on a new
// session (the server dropped the old session's watches with it).
func (s *Store) reloadAll() error {
	if err := s.loadBrokers(); err != nil {
		return err
	}
	if err := s.loadTopicList(true); err != nil {
		return err
	}
	return s.loadDeletions()
}

func (s *Store) loadBrokers() error {
	ids, err := s.childrenW(s.p("/brokers/ids"), "brokers")
	if err != nil {
		return fmt.Errorf("metadata: list brokers: %w", err)
	}
	brokers := map[int32]Broker{}
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil {
			continue
		}
		data, st, err := s.conn.Get(s.p("/brokers/ids/" + id))
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("metadata: read broker %s: %w", id, err)
		}
		var v brokerJSON
		if err := json.Unmarshal(data, &v); err != nil {
			s.log.Warn("unreadable broker registration", "id", id, "err", err)
			continue
		}
		b := Broker{ID: int32(n), Host: v.Host, Port: v.Port, Rack: v.Rack, Epoch: st.Czxid}
		for _, ep := range v.Endpoints { // Kafka 2.x leaves host null for some listeners
			if rest, ok := strings.CutPrefix(ep, "PLAINTEXT://"); ok {
				if h, p, err := net.SplitHostPort(rest); err == nil {
					pn, _ := strconv.Atoi(p)
					b.Host, b.Port = h, int32(pn)
				}
			}
		}
		brokers[b.ID] = b
	}
	s.mu.Lock()
	s.brokers = brokers
	s.mu.Unlock()
	return nil
}

// loadTopicList reads the topic list; topics it did not know are read, and
// with all every topic is.
func (s *Store) loadTopicList(all bool) error {
	names, err := s.childrenW(s.p("/brokers/topics"), "topics")
	if err != nil {
		return fmt.Errorf("metadata: list topics: %w", err)
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
		s.mu.RLock()
		_, known := s.topics[n]
		s.mu.RUnlock()
		if !known || all {
			if _, err := s.readTopic(n); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	for n := range s.topics {
		if !seen[n] {
			delete(s.topics, n)
		}
	}
	s.mu.Unlock()
	return nil
}

// assignmentJSON is /brokers/topics/<t>.
type assignmentJSON struct {
	Version          int                `json:"version"`
	Partitions       map[string][]int32 `json:"partitions"`
	AddingReplicas   map[string][]int32 `json:"adding_replicas"`
	RemovingReplicas map[string][]int32 `json:"removing_replicas"`
}

// stateJSON is /brokers/topics/<t>/partitions/<p>/state.
type stateJSON struct {
	ControllerEpoch int32   `json:"controller_epoch"`
	Leader          int32   `json:"leader"`
	Version         int     `json:"version"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	ISR             []int32 `json:"isr"`
}

type configJSON struct {
	Version int               `json:"version"`
	Config  map[string]string `json:"config"`
}

// readTopic re-reads one topic (assignment, partition states, config) into
// the cache and re-arms its watches; a topic that is gone leaves the cache
// (and nil is returned).
func (s *Store) readTopic(name string) (*Topic, error) {
	data, tst, err := s.getW(s.p("/brokers/topics/"+name), "topic:"+name)
	if errors.Is(err, zk.ErrNoNode) {
		s.mu.Lock()
		delete(s.topics, name)
		s.mu.Unlock()
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: read topic %s: %w", name, err)
	}
	var a assignmentJSON
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("metadata: topic %s assignment %q: %w", name, data, err)
	}
	t := &Topic{Name: name, Partitions: make([]Partition, len(a.Partitions)), Config: map[string]string{}, Version: tst.Version}
	for k, replicas := range a.Partitions {
		id, err := strconv.Atoi(k)
		if err != nil || id < 0 || id >= len(a.Partitions) {
			return nil, fmt.Errorf("metadata: topic %s has partition %q out of sequence", name, k)
		}
		p := Partition{Topic: name, ID: int32(id), Replicas: replicas, Leader: -1,
			Adding: a.AddingReplicas[k], Removing: a.RemovingReplicas[k]}
		if err := s.readState(&p); err != nil {
			return nil, err
		}
		t.Partitions[id] = p
	}
	cd, _, err := s.getW(s.p("/config/topics/"+name), "topic:"+name)
	switch {
	case err == nil:
		var v configJSON
		if err := json.Unmarshal(cd, &v); err == nil && v.Config != nil {
			t.Config = v.Config
		}
	case errors.Is(err, zk.ErrNoNode):
		s.existsW(s.p("/config/topics/"+name), "topic:"+name)
	default:
		return nil, fmt.Errorf("metadata: read topic %s config: %w", name, err)
	}
	if ok, _, err := s.conn.Exists(s.p("/admin/delete_topics/" + name)); err == nil && ok {
		t.Deleting = true
	}
	s.mu.Lock()
	s.topics[name] = t
	s.mu.Unlock()
	return t, nil
}

// readState reads a partition's state znode into p and watches it (or,
// while the controller has not created it, its creation).
func (s *Store) readState(p *Partition) error {
	path := s.p(statePath(p.Topic, p.ID))
	key := "state:" + p.Topic + ":" + strconv.Itoa(int(p.ID))
	sd, st, err := s.getW(path, key)
	switch {
	case err == nil:
		var v stateJSON
		if err := json.Unmarshal(sd, &v); err != nil {
			return fmt.Errorf("metadata: %s state %q: %w", statePath(p.Topic, p.ID), sd, err)
		}
		p.Leader, p.LeaderEpoch, p.ISR, p.ControllerEpoch, p.StateVersion = v.Leader, v.LeaderEpoch, v.ISR, v.ControllerEpoch, st.Version
	case errors.Is(err, zk.ErrNoNode):
		s.existsW(path, key)
		p.Leader, p.LeaderEpoch, p.ISR, p.StateVersion = -1, 0, nil, -1
	default:
		return fmt.Errorf("metadata: read %s: %w", statePath(p.Topic, p.ID), err)
	}
	return nil
}

// loadState re-reads one partition's state into the cached topic (a copy
// replaces it: handed-out topics are never modified).
func (s *Store) loadState(topic string, id int32) error {
	t, ok := s.Topic(topic)
	if !ok || id < 0 || int(id) >= len(t.Partitions) {
		return nil // the topic's own reload covers it
	}
	p := t.Partitions[id]
	if err := s.readState(&p); err != nil {
		return err
	}
	s.replacePartition(topic, p)
	return nil
}

// replacePartition swaps one partition of a cached topic for p, unless the
// cache holds a newer state of it already.
func (s *Store) replacePartition(topic string, p Partition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[topic]
	if !ok || int(p.ID) >= len(t.Partitions) || t.Partitions[p.ID].StateVersion > p.StateVersion {
		return
	}
	nt := *t
	nt.Partitions = slices.Clone(t.Partitions)
	nt.Partitions[p.ID] = p
	s.topics[topic] = &nt
}

func statePath(topic string, p int32) string {
	return "/brokers/topics/" + topic + "/partitions/" + strconv.Itoa(int(p)) + "/state"
}

// loadDeletions handles /admin/delete_topics: the controller deletes the
// listed topics (requests from other brokers or from Kafka's tools).
func (s *Store) loadDeletions() error {
	names, err := s.childrenW(s.p("/admin/delete_topics"), "deletions")
	if err != nil {
		return fmt.Errorf("metadata: list deletions: %w", err)
	}
	if !s.IsController() {
		return nil
	}
	for _, n := range names {
		if err := s.completeDeletion(n); err != nil {
			return err
		}
	}
	return nil
}

// ClusterID is the cluster's id (/cluster/id).
func (s *Store) ClusterID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clusterID
}

// ControllerID is the controller's broker id, -1 when unknown.
func (s *Store) ControllerID() int32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.controllerID
}

// IsController reports whether this broker is the controller.
func (s *Store) IsController() bool { return s.ControllerID() == s.cfg.Self.ID }

// Brokers returns the live brokers sorted by id.
func (s *Store) Brokers() []Broker {
	s.mu.RLock()
	out := make([]Broker, 0, len(s.brokers))
	for _, b := range s.brokers {
		out = append(out, b)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Topic returns a topic's metadata.
func (s *Store) Topic(name string) (*Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.topics[name]
	return t, ok
}

// Topics returns every topic, sorted by name.
func (s *Store) Topics() []*Topic {
	s.mu.RLock()
	out := slices.Collect(maps.Values(s.topics))
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
