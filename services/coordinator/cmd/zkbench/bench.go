package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// Config is one benchmark's load.
type Config struct {
	// Sessions is how many client sessions run in parallel, each with
	// one request in flight.
	Sessions int
	// Ops bounds the operations of each phase.
	Ops int
	// PhaseTimeout bounds each phase's duration; a phase that reaches it
	// reports what it completed.
	PhaseTimeout time.Duration
	// Size is the data size of each znode in bytes.
	Size int
	// Root is the parent of the benchmark's znodes; it is created if
	// missing and removed at the end.
	Root string
}

// Phase names, in the order they run.
var phaseNames = []string{"create", "get", "set", "delete"}

// PhaseResult is the outcome of one phase.
type PhaseResult struct {
	Name    string
	Ops     int // operations that completed without error
	Errors  int
	Elapsed time.Duration
	P50     time.Duration
	P99     time.Duration
	// FirstError is the first error met, for the report.
	FirstError error
}

// Rate returns completed operations per second.
func (p PhaseResult) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Ops) / p.Elapsed.Seconds()
}

// ErrNoSession means a session could not be established.
var ErrNoSession = errors.New("zkbench: no session")

// connectAll opens cfg.Sessions sessions, spreading them over addrs in
// turn, and waits until all have a session.
func connectAll(ctx context.Context, addrs []string, sessions int) ([]*zk.Conn, error) {
	conns := make([]*zk.Conn, sessions)
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], errs[i] = connect(ctx, addrs[i%len(addrs)])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func connect(ctx context.Context, addr string) (*zk.Conn, error) {
	conn, events, err := zk.Connect([]string{addr}, 30*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		return nil, fmt.Errorf("zkbench: connect %s: %w", addr, err)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn, nil
			}
		case <-timeout.C:
			conn.Close()
			return nil, fmt.Errorf("%w with %s within 30s", ErrNoSession, addr)
		case <-ctx.Done():
			conn.Close()
			return nil, ctx.Err()
		}
	}
}

func closeAll(conns []*zk.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// Run runs the four phases against addrs and returns their results.
func Run(ctx context.Context, addrs []string, cfg Config) ([]PhaseResult, error) {
	if len(addrs) == 0 {
		return nil, errors.New("zkbench: no address to benchmark")
	}
	conns, err := connectAll(ctx, addrs, cfg.Sessions)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	if _, err := conns[0].Create(cfg.Root, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return nil, fmt.Errorf("zkbench: create %s: %w", cfg.Root, err)
	}
	data := make([]byte, cfg.Size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	acl := zk.WorldACL(zk.PermAll)
	path := func(i int) string { return fmt.Sprintf("%s/n%08d", cfg.Root, i) }

	// created bounds the later phases: if the create phase stopped at
	// its time limit, only the nodes it made exist.
	created := cfg.Ops
	ops := map[string]func(c *zk.Conn, i int) error{
		"create": func(c *zk.Conn, i int) error { _, err := c.Create(path(i), data, 0, acl); return err },
		"get":    func(c *zk.Conn, i int) error { _, _, err := c.Get(path(i % created)); return err },
		"set":    func(c *zk.Conn, i int) error { _, err := c.Set(path(i%created), data, -1); return err },
		"delete": func(c *zk.Conn, i int) error { return c.Delete(path(i), -1) },
	}
	var results []PhaseResult
	for _, name := range phaseNames {
		n := cfg.Ops
		if name == "delete" {
			n = created
		}
		res := runPhase(ctx, conns, name, n, cfg.PhaseTimeout, ops[name])
		results = append(results, res)
		if name == "create" {
			// Nodes that failed to be created leave holes; reads and
			// writes of them fail and are counted as errors.
			created = max(res.Ops+res.Errors, 1)
		}
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	if err := cleanup(ctx, conns, cfg.Root); err != nil {
		return results, err
	}
	return results, nil
}

// cleanup removes whatever a time-bounded delete phase left, then the
// root. It is not measured.
func cleanup(ctx context.Context, conns []*zk.Conn, root string) error {
	kids, _, err := conns[0].Children(root)
	if err != nil {
		return fmt.Errorf("zkbench: list %s: %w", root, err)
	}
	var next atomic.Int64
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for w, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(kids) {
					return
				}
				if err := c.Delete(root+"/"+kids[i], -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("zkbench: clean up %s: %w", root, err)
	}
	if err := conns[0].Delete(root, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("zkbench: remove %s: %w", root, err)
	}
	return nil
}

// runPhase runs op for indexes 0..n-1 spread over the sessions, each
// session one request at a time, until all are done or timeout passes.
func runPhase(ctx context.Context, conns []*zk.Conn, name string, n int, timeout time.Duration,
	op func(c *zk.Conn, i int) error) PhaseResult {
	// One slot per operation, allocated before the clock starts.
	lat := make([]time.Duration, n)
	var next, errCount atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(timeout)
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if t0.After(deadline) {
					lat[i] = -1
					return
				}
				err := op(c, i)
				if err != nil {
					lat[i] = -1
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	ok := lat[:0]
	for _, d := range lat {
		if d > 0 {
			ok = append(ok, d)
		}
	}
	res := PhaseResult{Name: name, Ops: len(ok), Errors: int(errCount.Load()), Elapsed: elapsed}
	if v := firstErr.Load(); v != nil {
		res.FirstError = v.(error)
	}
	res.P50, res.P99 = percentiles(ok)
	return res
}

// percentiles sorts d in place and returns its 50th and 99th percentiles
// (nearest rank).
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return rank(0.50), rank(0.99)
}
