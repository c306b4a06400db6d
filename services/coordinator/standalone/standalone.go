// Package standalone is the Replicator of a single coordinator: it orders
// writes with a counter, makes them durable in the transaction log with group
// commit (one fdatasync per batch), applies them to the znode.DB and answers.
// It takes snapshots every SnapCount transactions and recovers the tree and
// the sessions from the newest snapshot plus the log after a restart,
// including after kill -9.
package standalone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/runnel-io/runnel/services/coordinator/txnlog"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// ErrStopped is returned to proposals made after Stop.
var ErrStopped = errors.New("standalone: stopped")

// Options configure the replicator.
type Options struct {
	// Dir holds the transaction log and snapshots.
	Dir string
	// SnapCount is the number of transactions between snapshots
	// (ZooKeeper's snapCount, default 100000).
	SnapCount int64
	// MaxBatch bounds one group commit.
	MaxBatch int
	// NoSync skips fdatasync (tests and benchmarks of the CPU path only).
	NoSync bool
	Logger *slog.Logger
}

type proposal struct {
	t    *znode.Txn
	done func(znode.Result, error)
}

// Replicator implements server.Replicator for a lone server.
type Replicator struct {
	opts Options
	db   *znode.DB
	log  *txnlog.Log
	lg   *slog.Logger

	in      chan proposal
	stopped chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	zxid      int64
	sinceSnap int64
	buf       []proposal
	// snaps are the zxids of the snapshots this process took, oldest
	// first. The log is kept back to the oldest of the last three, so a
	// corrupt newest snapshot can fall back to an older one and replay.
	snaps []int64
}

// Open recovers db from the data in opts.Dir and returns a replicator
// ready to Start.
func Open(db *znode.DB, opts Options) (*Replicator, error) {
	if opts.SnapCount <= 0 {
		opts.SnapCount = 100000
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	lopts := txnlog.DefaultOptions(opts.Dir)
	lopts.NoSync = opts.NoSync
	l, err := txnlog.Open(lopts)
	if err != nil {
		return nil, fmt.Errorf("open transaction log in %s: %w", opts.Dir, err)
	}
	r := &Replicator{opts: opts, db: db, log: l, lg: lg.With("component", "txnlog"),
		in: make(chan proposal, 4096), stopped: make(chan struct{})}
	if err := r.recover(); err != nil {
		l.Close()
		return nil, err
	}
	return r, nil
}

func (r *Replicator) recover() error {
	start := time.Now()
	snapZxid, rd, err := r.log.OpenLatestSnapshot()
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	if rd != nil {
		err := r.db.ReadSnapshot(rd)
		rd.Close()
		if err != nil {
			return fmt.Errorf("read snapshot 0x%x: %w", snapZxid, err)
		}
	}
	n := 0
	err = r.log.Replay(snapZxid, func(zxid int64, payload []byte) error {
		var t znode.Txn
		if err := t.UnmarshalBinary(payload); err != nil {
			return fmt.Errorf("transaction 0x%x: %w", zxid, err)
		}
		t.Zxid = zxid
		r.db.Apply(&t)
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay transaction log: %w", err)
	}
	r.zxid = max(r.db.LastZxid(), r.log.LastZxid())
	r.sinceSnap = int64(n)
	r.lg.Info("recovered", "snapshot_zxid", fmt.Sprintf("0x%x", snapZxid), "replayed", n,
		"last_zxid", fmt.Sprintf("0x%x", r.zxid), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Start runs the commit loop.
func (r *Replicator) Start() {
	r.wg.Add(1)
	go r.loop()
}

// Stop finishes the proposals already queued, takes no more, and closes
// the log.
func (r *Replicator) Stop(ctx context.Context) error {
	r.once.Do(func() { close(r.stopped) })
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.log.Close()
}

// Propose implements server.Replicator.
func (r *Replicator) Propose(t *znode.Txn, done func(znode.Result, error)) {
	select {
	case <-r.stopped:
		done(znode.Result{}, ErrStopped)
		return
	default:
	}
	select {
	case r.in <- proposal{t, done}:
	case <-r.stopped:
		done(znode.Result{}, ErrStopped)
	}
}

// IsLeader implements server.Replicator: a lone server always leads.
func (r *Replicator) IsLeader() bool { return true }

// Mode implements server.Replicator.
func (r *Replicator) Mode() string { return "standalone" }

// ReportLive implements server.Replicator; the local tracker already knows.
func (r *Replicator) ReportLive([]int64) {}

// Writable implements server.Replicator.
func (r *Replicator) Writable() bool { return true }

func (r *Replicator) loop() {
	defer r.wg.Done()
	for {
		var first proposal
		select {
		case first = <-r.in:
		case <-r.stopped:
			// Drain what was accepted before the stop.
			for {
				select {
				case p := <-r.in:
					r.commit([]proposal{p})
				default:
					return
				}
			}
		}
		batch := append(r.buf[:0], first)
	fill:
		for len(batch) < r.opts.MaxBatch {
			select {
			case p := <-r.in:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		r.commit(batch)
		clear(batch)
		r.buf = batch[:0]
		if r.sinceSnap >= r.opts.SnapCount {
			r.snapshot()
		}
	}
}

// commit logs a batch, syncs once, then applies and answers each proposal.
func (r *Replicator) commit(batch []proposal) {
	var err error
	first := r.zxid
	for _, p := range batch {
		r.zxid++
		p.t.Zxid = r.zxid
		var b []byte
		if b, err = p.t.MarshalBinary(); err != nil {
			break
		}
		if err = r.log.Append(r.zxid, b); err != nil {
			break
		}
	}
	if err == nil {
		err = r.log.Sync()
	}
	if err != nil {
		// Nothing in this batch is known durable: fail every proposal and
		// stop taking more; a restart recovers what reached the disk.
		r.lg.Error("transaction log write failed; refusing further writes", "err", err, "first_zxid", first+1)
		for _, p := range batch {
			p.done(znode.Result{}, fmt.Errorf("transaction log: %w", err))
		}
		r.once.Do(func() { close(r.stopped) })
		return
	}
	for _, p := range batch {
		res := r.db.Apply(p.t)
		p.done(res, nil)
	}
	r.sinceSnap += int64(len(batch))
}

func (r *Replicator) snapshot() {
	start := time.Now()
	zxid := r.zxid
	if err := r.log.WriteSnapshot(zxid, r.db.WriteSnapshot); err != nil {
		r.lg.Error("snapshot failed; will retry after the next batch", "err", err)
		return
	}
	r.sinceSnap = 0
	const keep = 3
	r.snaps = append(r.snaps, zxid)
	if len(r.snaps) > keep {
		r.snaps = r.snaps[len(r.snaps)-keep:]
	}
	if len(r.snaps) == keep {
		if err := r.log.PurgeBefore(r.snaps[0]); err != nil {
			r.lg.Warn("purging old log segments failed", "err", err)
		}
		if err := r.log.PurgeSnapshots(keep); err != nil {
			r.lg.Warn("purging old snapshots failed", "err", err)
		}
	}
	r.lg.Info("snapshot taken", "zxid", fmt.Sprintf("0x%x", zxid), "took", time.Since(start).Round(time.Millisecond))
}
