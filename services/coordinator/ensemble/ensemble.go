package ensemble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// Errors a proposal can fail with. The server turns any of them into a
// dropped connection (ZooKeeper's ConnectionLoss): the client reconnects
// and finds out whether the write happened.
var (
	// ErrStopped: the ensemble is shutting down or has stopped.
	ErrStopped = errors.New("ensemble: stopped")
	// ErrNoLeader: no leader is known (an election is running, or this
	// member is in a minority partition), so no write can commit now.
	ErrNoLeader = errors.New("ensemble: no leader")
	// ErrLeaderUnreachable: a leader is known but the forward connection to
	// it could not be opened or broke before the write was acknowledged.
	ErrLeaderUnreachable = errors.New("ensemble: leader unreachable")
	// ErrNotLeader: the member a write was forwarded to was no longer the
	// leader.
	ErrNotLeader = errors.New("ensemble: not the leader")
	// ErrTimeout: the write was not applied here within
	// Options.ProposeTimeout.
	ErrTimeout = errors.New("ensemble: proposal timed out")
	// ErrSnapshotInstalled: the leader replaced this member's state with a
	// snapshot while the write was in flight, so its result is unknown here.
	ErrSnapshotInstalled = errors.New("ensemble: state replaced by a snapshot")
)

// Options configure a member of an ensemble.
type Options struct {
	// ID is this member's id, a key of Peers (1-254).
	ID int
	// Peers maps every member's id, this one's included, to its raft
	// address. All members must be started with the same map.
	Peers map[int]string
	// DataDir holds the raft log, raft's stable state and the snapshots
	// (in DataDir/raft).
	DataDir string
	// Listener, when set, is the bound listener for Peers[ID] (tests bind
	// port 0 first); otherwise Open listens on Peers[ID].
	Listener net.Listener
	// NoSync skips fsync of the raft log: acknowledged writes can be lost
	// if a majority loses power at once. Tests and benchmarks only.
	NoSync bool
	// SnapshotThreshold is the number of log entries between snapshots
	// (ZooKeeper's snapCount; default 100000).
	SnapshotThreshold uint64
	// TrailingLogs is how many entries stay in the log after a snapshot,
	// so a briefly absent member catches up from the log rather than from
	// a whole snapshot (default 10240).
	TrailingLogs uint64
	// LogSegmentSize is the size at which the raft log starts a new
	// segment file (default 64 MiB). Compaction frees whole segments.
	LogSegmentSize int64
	// SnapshotInterval is how often raft checks whether SnapshotThreshold
	// entries have accumulated (default 30s).
	SnapshotInterval time.Duration
	// HeartbeatTimeout and ElectionTimeout bound how long followers and
	// candidates wait before starting an election (default 1s each).
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout is how long a leader keeps leading without
	// hearing from a quorum (default 500ms).
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest a follower waits to learn that entries
	// were committed when no new writes arrive to carry the news; it is
	// the floor of a follower's write latency when idle (default 5ms).
	// Measured on a 2-core box, three idle members burn about 35% of a
	// core at 2ms, 20% at 5ms and 11% at 10ms, for a lone client's
	// follower write p50 of 6ms, 11ms and 19ms; under load new appends
	// carry the commit index and the setting hardly matters.
	CommitTimeout time.Duration
	// ProposeTimeout fails a proposal that has not been applied on this
	// member in time (default 20s).
	ProposeTimeout time.Duration
	// KeepLeadershipOnStop makes Stop leave like a crash: a leader does not
	// hand leadership over first, and the others elect one after their
	// heartbeat timeout. Tests use it to exercise that path.
	KeepLeadershipOnStop bool
	// Logger receives the ensemble's and raft's logs.
	Logger *slog.Logger
	// RaftLogLevel filters raft's own logs (default hclog.Info).
	RaftLogLevel hclog.Level
}

func (o *Options) withDefaults() error {
	if _, ok := o.Peers[o.ID]; !ok {
		return fmt.Errorf("ensemble: member id %d is not in the peer list", o.ID)
	}
	if o.ID < 1 || o.ID > 254 {
		return fmt.Errorf("ensemble: member id %d: must be from 1 to 254", o.ID)
	}
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = 100000
	}
	if o.TrailingLogs == 0 {
		o.TrailingLogs = 10240
	}
	if o.LogSegmentSize <= 0 {
		o.LogSegmentSize = defaultSegmentSize
	}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = 30 * time.Second
	}
	// A 2-core machine shared with other work starves processes for
	// hundreds of milliseconds at times; shorter timeouts than these made
	// leadership flap under load there.
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = time.Second
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = time.Second
	}
	if o.LeaderLeaseTimeout == 0 {
		o.LeaderLeaseTimeout = 500 * time.Millisecond
	}
	if o.CommitTimeout == 0 {
		o.CommitTimeout = 5 * time.Millisecond
	}
	if o.ProposeTimeout == 0 {
		o.ProposeTimeout = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RaftLogLevel == hclog.NoLevel {
		o.RaftLogLevel = hclog.Info
	}
	return nil
}

const (
	originShift = 48
	originMask  = 1<<originShift - 1
	// dialTimeout bounds opening a forward connection to the leader.
	dialTimeout = time.Second
	// transportTimeout is raft's I/O deadline for one RPC.
	transportTimeout = 10 * time.Second
)

// proposal is a write waiting for its result on this member.
type proposal struct {
	done    func(znode.Result, error)
	created time.Time
}

// localFuture is a write this member appended to raft itself (as leader).
type localFuture struct {
	origin uint64
	f      raft.ApplyFuture
}

// Ensemble is one member of a raft-replicated coordinator. It implements
// server.Replicator.
type Ensemble struct {
	opts   Options
	db     *znode.DB
	lg     *slog.Logger
	selfID raft.ServerID

	store *Store
	logs  *FileLog
	snaps raft.SnapshotStore
	mux   *mux
	trans *raft.NetworkTransport
	raft  *raft.Raft
	fwd   *forwarder

	seq atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*proposal

	toucher atomic.Pointer[func([]int64)]

	local chan localFuture

	// forward connections served as leader, closed on Stop.
	connsMu sync.Mutex
	conns   map[net.Conn]struct{}

	stopped  chan struct{}
	stopOnce sync.Once
	started  bool
	wg       sync.WaitGroup
}

// Open prepares a member: it checks the options, opens the raft stores in
// opts.DataDir and binds the raft address (so a port conflict fails here).
// Start runs it.
func Open(db *znode.DB, opts Options) (*Ensemble, error) {
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ensemble: create %s: %w", dir, err)
	}
	e := &Ensemble{
		opts:    opts,
		db:      db,
		lg:      opts.Logger.With("component", "ensemble", "member", opts.ID),
		selfID:  raft.ServerID(strconv.Itoa(opts.ID)),
		pending: make(map[uint64]*proposal),
		local:   make(chan localFuture, 4096),
		conns:   make(map[net.Conn]struct{}),
		stopped: make(chan struct{}),
	}
	// A sequence seeded from the clock keeps origins unique across
	// restarts: entries of an earlier run that are replayed after a
	// restart must not complete this run's proposals.
	e.seq.Store(uint64(time.Now().UnixMilli()<<7) & originMask)
	hl := newHclogAdapter(opts.Logger.With("member", opts.ID), opts.RaftLogLevel)

	var err error
	if e.store, err = OpenStore(filepath.Join(dir, "raft.db"), opts.NoSync); err != nil {
		return nil, err
	}
	if e.logs, err = openFileLog(filepath.Join(dir, "log"), opts.NoSync, opts.LogSegmentSize); err != nil {
		e.store.Close()
		return nil, err
	}
	if e.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, hl.Named("snapshots")); err != nil {
		e.closeStores()
		return nil, fmt.Errorf("ensemble: snapshot store in %s: %w", dir, err)
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", opts.Peers[opts.ID]); err != nil {
			e.closeStores()
			return nil, fmt.Errorf("ensemble: listen on raft address %s: %w (is another member using the port?)", opts.Peers[opts.ID], err)
		}
	}
	e.mux = newMux(ln, opts.Peers[opts.ID], e.lg)
	e.mux.onForward = e.serveForward
	e.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  streamLayer{e.mux},
		MaxPool: 3,
		Timeout: transportTimeout,
		Logger:  hl.Named("transport"),
	})
	e.fwd = newForwarder(e)
	return e, nil
}

func (e *Ensemble) raftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = e.selfID
	c.HeartbeatTimeout = e.opts.HeartbeatTimeout
	c.ElectionTimeout = e.opts.ElectionTimeout
	c.LeaderLeaseTimeout = e.opts.LeaderLeaseTimeout
	c.CommitTimeout = e.opts.CommitTimeout
	// Large appends and a buffered apply channel turn concurrent writes
	// into one log append and one fsync per batch.
	c.MaxAppendEntries = 1024
	c.BatchApplyCh = true
	c.SnapshotThreshold = e.opts.SnapshotThreshold
	c.TrailingLogs = e.opts.TrailingLogs
	c.SnapshotInterval = e.opts.SnapshotInterval
	c.Logger = newHclogAdapter(e.opts.Logger.With("member", e.opts.ID), e.opts.RaftLogLevel)
	return c
}

// Start bootstraps the ensemble on first start (every member bootstraps the
// same configuration from Peers), or resumes from the stored raft state,
// restoring the newest snapshot into the DB; then it serves.
func (e *Ensemble) Start() error {
	cfg := e.raftConfig()
	existing, err := raft.HasExistingState(e.logs, e.store, e.snaps)
	if err != nil {
		return fmt.Errorf("ensemble: read raft state: %w", err)
	}
	// The cache serves recent entries to lagging followers without a
	// round trip through bbolt.
	logs, err := raft.NewLogCache(4096, e.logs)
	if err != nil {
		return fmt.Errorf("ensemble: log cache: %w", err)
	}
	e.mux.serve()
	r, err := raft.NewRaft(cfg, &fsm{e: e}, logs, e.store, e.snaps, e.trans)
	if err != nil {
		e.mux.close()
		e.mux.wait()
		return fmt.Errorf("ensemble: start raft: %w", err)
	}
	e.raft = r
	e.started = true
	if !existing {
		if err := r.BootstrapCluster(e.configuration()).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("ensemble: bootstrap: %w", err)
		}
		e.lg.Info("bootstrapped a new ensemble", "peers", e.opts.Peers)
	} else {
		e.lg.Info("resumed from stored raft state", "last_index", r.LastIndex(), "applied_zxid", fmt.Sprintf("0x%x", e.db.LastZxid()))
	}

	obs := make(chan raft.Observation, 16)
	r.RegisterObserver(raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	e.wg.Add(4)
	go e.watchLeader(obs)
	go e.waitLocal()
	go e.sweep()
	go e.fwd.run()
	return nil
}

func (e *Ensemble) configuration() raft.Configuration {
	ids := make([]int, 0, len(e.opts.Peers))
	for id := range e.opts.Peers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var c raft.Configuration
	for _, id := range ids {
		c.Servers = append(c.Servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(strconv.Itoa(id)),
			Address:  raft.ServerAddress(e.opts.Peers[id]),
		})
	}
	return c
}

// Stop shuts the member down: no more proposals, forward connections
// closed, raft shut down (a leader simply stops; the others elect a new
// one), every waiting proposal failed with ErrStopped, stores closed.
func (e *Ensemble) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() { close(e.stopped) })
	e.connsMu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.connsMu.Unlock()
	e.fwd.close()
	if e.started && !e.opts.KeepLeadershipOnStop && e.raft.State() == raft.Leader {
		e.handOver(ctx)
	}

	done := make(chan error, 1)
	go func() {
		var err error
		if e.started {
			err = e.raft.Shutdown().Error()
		}
		// Closing the transport closes the mux (its stream layer) too.
		if cerr := e.trans.Close(); err == nil {
			err = cerr
		}
		e.mux.close()
		e.wg.Wait()
		e.mux.wait()
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("ensemble: stop: %w", ctx.Err())
	}
	e.failAll(ErrStopped)
	if cerr := e.closeStores(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ensemble: stop: %w", err)
	}
	return nil
}

func (e *Ensemble) closeStores() error {
	err := e.store.Close()
	if e.logs != nil {
		err = errors.Join(err, e.logs.Close())
	}
	return err
}

// handOver asks raft to make another member leader before this one stops,
// so writes pause for a round trip instead of an election timeout. It
// gives up after two election timeouts; stopping goes on either way.
func (e *Ensemble) handOver(ctx context.Context) {
	f := e.raft.LeadershipTransfer()
	res := make(chan error, 1)
	go func() { res <- f.Error() }()
	t := time.NewTimer(2 * e.opts.ElectionTimeout)
	defer t.Stop()
	select {
	case err := <-res:
		if err != nil {
			e.lg.Warn("leadership transfer before stopping failed; the others will elect a leader", "err", err)
			return
		}
		e.lg.Info("handed leadership over before stopping")
	case <-t.C:
		e.lg.Warn("leadership transfer before stopping timed out; the others will elect a leader")
	case <-ctx.Done():
	}
}

// SetSessionToucher sets the function the leader calls with the sessions
// other members report live (server.Server.TouchSessions). Until it is set,
// such reports are dropped.
func (e *Ensemble) SetSessionToucher(f func(ids []int64)) { e.toucher.Store(&f) }

func (e *Ensemble) touch(ids []int64) {
	if f := e.toucher.Load(); f != nil && len(ids) > 0 {
		(*f)(ids)
	}
}

// Propose implements server.Replicator. On the leader the write is
// appended to raft at once; on a follower it is queued for the leader.
// Either way done runs when this member's state machine applies it, so a
// client reads its own write on the member it is connected to.
func (e *Ensemble) Propose(t *znode.Txn, done func(znode.Result, error)) {
	select {
	case <-e.stopped:
		done(znode.Result{}, ErrStopped)
		return
	default:
	}
	if e.raft == nil {
		// Not started: nothing can commit yet.
		done(znode.Result{}, ErrNoLeader)
		return
	}
	origin := uint64(e.opts.ID)<<originShift | e.seq.Add(1)&originMask
	t.Origin = origin
	b, err := t.MarshalBinary()
	if err != nil {
		done(znode.Result{}, fmt.Errorf("ensemble: encode transaction: %w", err))
		return
	}
	env := appendEnvelope(make([]byte, 0, envelopeHeaderSize+len(b)), origin, b)
	e.mu.Lock()
	e.pending[origin] = &proposal{done: done, created: time.Now()}
	e.mu.Unlock()
	if e.raft.State() == raft.Leader {
		e.applyLocal(origin, env)
		return
	}
	e.fwd.enqueue(origin, env)
}

// applyLocal appends a write to raft on this member and watches the future
// for a failure; success is reported by the state machine.
func (e *Ensemble) applyLocal(origin uint64, env []byte) {
	f := e.raft.Apply(env, 0)
	select {
	case e.local <- localFuture{origin, f}:
	case <-e.stopped:
		e.fail(origin, ErrStopped)
	}
}

// waitLocal fails the local writes whose raft future failed (leadership
// lost before commit, shutdown).
func (e *Ensemble) waitLocal() {
	defer e.wg.Done()
	for {
		select {
		case lf := <-e.local:
			if err := lf.f.Error(); err != nil {
				e.fail(lf.origin, fmt.Errorf("ensemble: raft: %w", err))
			}
		case <-e.stopped:
			return
		}
	}
}

// IsLeader implements server.Replicator.
func (e *Ensemble) IsLeader() bool { return e.raft != nil && e.raft.State() == raft.Leader }

// Mode implements server.Replicator.
func (e *Ensemble) Mode() string {
	if e.IsLeader() {
		return "leader"
	}
	return "follower"
}

// ReportLive implements server.Replicator: the session ids are sent to the
// leader, which extends their timeouts.
func (e *Ensemble) ReportLive(ids []int64) {
	if e.IsLeader() {
		e.touch(ids)
		return
	}
	e.fwd.reportLive(ids)
}

// Writable implements server.Replicator: this member leads, or it follows
// a leader it is connected to.
func (e *Ensemble) Writable() bool {
	if e.raft == nil {
		return false
	}
	if e.raft.State() == raft.Leader {
		return true
	}
	return e.fwd.connected()
}

// Leader returns the current leader's member id (0 when none is known).
func (e *Ensemble) Leader() int {
	if e.raft == nil {
		return 0
	}
	_, id := e.raft.LeaderWithID()
	n, _ := strconv.Atoi(string(id))
	return n
}

func (e *Ensemble) ours(origin uint64) bool { return origin>>originShift == uint64(e.opts.ID) }

func (e *Ensemble) take(origin uint64) *proposal {
	e.mu.Lock()
	p := e.pending[origin]
	delete(e.pending, origin)
	e.mu.Unlock()
	return p
}

func (e *Ensemble) complete(origin uint64, res znode.Result) {
	if p := e.take(origin); p != nil {
		p.done(res, nil)
	}
}

func (e *Ensemble) fail(origin uint64, err error) {
	if p := e.take(origin); p != nil {
		p.done(znode.Result{}, err)
	}
}

func (e *Ensemble) failAll(err error) {
	e.mu.Lock()
	ps := make([]*proposal, 0, len(e.pending))
	for o, p := range e.pending {
		ps = append(ps, p)
		delete(e.pending, o)
	}
	e.mu.Unlock()
	for _, p := range ps {
		p.done(znode.Result{}, err)
	}
}

// sweep fails proposals that waited longer than ProposeTimeout: a follower
// cut off after the leader acknowledged a write would otherwise hold it
// forever.
func (e *Ensemble) sweep() {
	defer e.wg.Done()
	t := time.NewTicker(min(time.Second, e.opts.ProposeTimeout/2))
	defer t.Stop()
	for {
		select {
		case <-e.stopped:
			return
		case now := <-t.C:
			var late []*proposal
			e.mu.Lock()
			for o, p := range e.pending {
				if now.Sub(p.created) > e.opts.ProposeTimeout {
					late = append(late, p)
					delete(e.pending, o)
				}
			}
			e.mu.Unlock()
			for _, p := range late {
				p.done(znode.Result{}, ErrTimeout)
			}
		}
	}
}

func (e *Ensemble) watchLeader(obs chan raft.Observation) {
	defer e.wg.Done()
	for {
		select {
		case <-e.stopped:
			return
		case o := <-obs:
			if lo, ok := o.Data.(raft.LeaderObservation); ok {
				e.lg.Info("leader changed", "leader_id", string(lo.LeaderID), "leader_addr", string(lo.LeaderAddr),
					"self_leads", lo.LeaderID == e.selfID)
			}
			e.fwd.poke()
		}
	}
}
