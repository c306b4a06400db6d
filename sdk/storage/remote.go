package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-io/runnel/sdk/plugin"
)

// conn runs a call against the plugin: the same client for an in-process
// test connection, the current process (started again after a crash) for a
// supervised one.
type conn interface {
	do(ctx context.Context, fn func(ctx context.Context, c *client) error) error
}

// fixedConn is a connection without a process behind it to restart.
type fixedConn struct{ c *client }

func (f fixedConn) do(ctx context.Context, fn func(ctx context.Context, c *client) error) error {
	return fn(ctx, f.c)
}

// PluginBackend is a Backend served by a plugin over gRPC, usually a
// supervised plugin process (StartProcess). It keeps every log it opened in
// a registry, so that when the process dies and is started again it
// reopens them before any other call reaches the new process.
//
// Its logs cache StartOffset and EndOffset from the answers of their calls
// (the contract has no error for them), and Segments, which has neither a
// context nor an error, answers nil when the plugin cannot be reached.
type PluginBackend struct {
	conn       conn
	proc       *plugin.Process[*client] // nil for a test connection
	info       plugin.Description
	cacheBytes int

	mu     sync.Mutex
	logs   map[*remoteLog]struct{}
	closed bool

	restarting atomic.Bool
}

var _ Backend = (*PluginBackend)(nil)

// Name is the plugin's name, as its Describe answered.
func (b *PluginBackend) Name() string { return b.info.Name }

// Info is the plugin's description.
func (b *PluginBackend) Info() plugin.Description { return b.info }

// Open opens the partition's log in the plugin. With a tail cache
// configured, the log is wrapped in it (see NewTailCache).
func (b *PluginBackend) Open(ctx context.Context, p PartitionID, cfg Config) (Log, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("storage plugin %s: open %s: %w", b.info.Name, p, err)
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("storage plugin %s: open %s: %w", b.info.Name, p, ErrClosed)
	}
	l := &remoteLog{b: b, id: p, cfg: cfg}
	err := b.conn.do(ctx, func(ctx context.Context, c *client) error {
		h, off, err := c.open(ctx, p, cfg)
		if err != nil {
			return err
		}
		l.c, l.h = c, h
		l.setOffsets(off)
		return nil
	})
	if err != nil {
		return nil, b.fail(ctx, "open", &p, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = l.Close()
		return nil, fmt.Errorf("storage plugin %s: open %s: %w", b.info.Name, p, ErrClosed)
	}
	b.logs[l] = struct{}{}
	b.mu.Unlock()
	if b.cacheBytes > 0 {
		return NewTailCache(l, b.cacheBytes), nil
	}
	return l, nil
}

// Delete removes the partition's data in the plugin, closing its open log.
func (b *PluginBackend) Delete(ctx context.Context, p PartitionID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage plugin %s: delete %s: %w", b.info.Name, p, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("storage plugin %s: delete %s: %w", b.info.Name, p, ErrClosed)
	}
	for l := range b.logs {
		if l.id == p {
			l.markClosed()
			delete(b.logs, l)
		}
	}
	b.mu.Unlock()
	err := b.conn.do(ctx, func(ctx context.Context, c *client) error { return c.delete(ctx, p) })
	return b.fail(ctx, "delete", &p, err)
}

// Close closes every open log, asks the plugin to close its backend (so
// the file backend flushes) and stops the process.
func (b *PluginBackend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for l := range b.logs {
		l.markClosed()
	}
	b.logs = nil
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := b.fail(ctx, "shutdown", nil, b.conn.do(ctx, func(ctx context.Context, c *client) error { return c.shutdown(ctx) }))
	if b.proc != nil {
		err = errors.Join(err, b.proc.Close())
	}
	return err
}

// Kill stops the plugin process (tests use it), asking it to stop first as
// go-plugin does; the next call starts it again. To crash it for real,
// kill Pid with SIGKILL.
func (b *PluginBackend) Kill() {
	if b.proc != nil {
		b.proc.Kill()
	}
}

// Pid is the plugin process's id, or 0 when none is running (or for a
// test connection).
func (b *PluginBackend) Pid() int {
	if b.proc != nil {
		return b.proc.Pid()
	}
	return 0
}

// Starts is how many times the plugin process was started (1 until a
// restart); 1 for a test connection.
func (b *PluginBackend) Starts() int {
	if b.proc != nil {
		return b.proc.Starts()
	}
	return 1
}

// fail converts a call's error and, when the process died, starts it again
// in the background so that the partitions are back before clients retry.
func (b *PluginBackend) fail(ctx context.Context, op string, p *PartitionID, err error) error {
	if err == nil {
		return nil
	}
	if p != nil {
		op += " " + p.String()
	}
	dead := errors.Is(err, plugin.ErrCrashed) || errors.Is(err, plugin.ErrHung)
	if b.proc != nil && dead && b.restarting.CompareAndSwap(false, true) {
		go func() {
			defer b.restarting.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = b.conn.do(ctx, func(context.Context, *client) error { return nil })
		}()
	}
	return fromStatus(ctx, op, err)
}

// reopenAll runs after every start of the plugin process, before any call
// reaches it: it reopens every open log in the new process. A log that
// fails to reopen is left for its next call, which tries again and
// reports the error, so that one bad partition does not keep the others
// down.
func (b *PluginBackend) reopenAll(ctx context.Context, c *client) {
	b.mu.Lock()
	logs := make([]*remoteLog, 0, len(b.logs))
	for l := range b.logs {
		logs = append(logs, l)
	}
	b.mu.Unlock()
	for _, l := range logs {
		_, _ = l.handle(ctx, c)
	}
}

func (b *PluginBackend) forget(l *remoteLog) {
	b.mu.Lock()
	delete(b.logs, l)
	b.mu.Unlock()
}

// remoteLog is one partition's log in the plugin.
type remoteLog struct {
	b   *PluginBackend
	id  PartitionID
	cfg Config

	// wmu serializes the mutating calls, so that the offsets their answers
	// carry are stored in the order the plugin applied them; reads do not
	// take it and do not store offsets (an answer overtaken by an append
	// would move EndOffset back).
	wmu sync.Mutex

	mu       sync.Mutex
	c        *client // the client of the process the handle belongs to
	h        uint64
	reopened bool // reopened in a new process since the last append

	// closed is set once, by Close or by the Backend's Delete or Close;
	// atomic because the tail cache asks on every read.
	closed atomic.Bool

	start, end atomic.Int64
	gen        atomic.Uint64 // bumped on every reopen
}

func (l *remoteLog) setOffsets(o offsets) {
	l.start.Store(o.start)
	l.end.Store(o.end)
}

// generation changes whenever the log is reopened in a new process; the
// tail cache drops what it holds when it sees it change.
func (l *remoteLog) generation() uint64 { return l.gen.Load() }

func (l *remoteLog) isClosed() bool { return l.closed.Load() }

func (l *remoteLog) markClosed() { l.closed.Store(true) }

// handle returns the log's handle in the process behind c, reopening the
// log there first when its handle belongs to an earlier process.
func (l *remoteLog) handle(ctx context.Context, c *client) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return 0, toStatus(fmt.Errorf("%s: %w", l.id, ErrClosed))
	}
	if l.c == c {
		return l.h, nil
	}
	h, off, err := c.open(ctx, l.id, l.cfg)
	if err != nil {
		return 0, err
	}
	l.c, l.h, l.reopened = c, h, true
	l.setOffsets(off)
	l.gen.Add(1)
	return h, nil
}

// call runs fn with the log's current handle. Errors that fn or handle
// return are gRPC statuses, so that the process supervisor tells a dead
// plugin from an answer.
func (l *remoteLog) call(ctx context.Context, op string, fn func(ctx context.Context, c *client, h uint64) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage plugin %s: %s %s: %w", l.b.info.Name, op, l.id, err)
	}
	if l.closed.Load() {
		return fmt.Errorf("storage plugin %s: %s %s: %w", l.b.info.Name, op, l.id, ErrClosed)
	}
	err := l.b.conn.do(ctx, func(ctx context.Context, c *client) error {
		h, err := l.handle(ctx, c)
		if err != nil {
			return err
		}
		return fn(ctx, c, h)
	})
	return l.b.fail(ctx, op, &l.id, err)
}

func (l *remoteLog) Append(ctx context.Context, batches []byte) (AppendInfo, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	var info AppendInfo
	var off offsets
	err := l.call(ctx, "append", func(ctx context.Context, c *client, h uint64) (err error) {
		info, off, err = c.append(ctx, h, batches)
		return err
	})
	l.mu.Lock()
	reopened := l.reopened
	if err == nil {
		l.reopened = false
	}
	l.mu.Unlock()
	if err != nil {
		// The caller set the batch's offsets from EndOffset before the
		// plugin restarted; the new process may hold an append the old one
		// stored without answering. Retrying with fresh offsets succeeds.
		if reopened && errors.Is(err, ErrNotContiguous) {
			return AppendInfo{}, fmt.Errorf("%w: %s was reopened after its plugin restarted (%v)", ErrUnavailable, l.id, err)
		}
		return AppendInfo{}, err
	}
	l.setOffsets(off)
	return info, nil
}

func (l *remoteLog) Read(ctx context.Context, offset int64, maxBytes int32, maxOffset int64) (ReadResult, error) {
	var r ReadResult
	err := l.call(ctx, "read", func(ctx context.Context, c *client, h uint64) (err error) {
		r, err = c.read(ctx, h, offset, maxBytes, maxOffset)
		return err
	})
	if err != nil {
		return ReadResult{NextOffset: offset, StartOffset: l.StartOffset(), EndOffset: l.EndOffset()}, err
	}
	return r, nil
}

func (l *remoteLog) StartOffset() int64 { return l.start.Load() }
func (l *remoteLog) EndOffset() int64   { return l.end.Load() }

func (l *remoteLog) OffsetForTimestamp(ctx context.Context, ts int64) (int64, int64, error) {
	off, rts := int64(-1), int64(-1)
	err := l.call(ctx, "offset for timestamp", func(ctx context.Context, c *client, h uint64) (err error) {
		off, rts, err = c.offsetForTimestamp(ctx, h, ts)
		return err
	})
	if err != nil {
		return -1, -1, err
	}
	return off, rts, nil
}

// mutate runs a mutating call that answers with the log's offsets.
func (l *remoteLog) mutate(ctx context.Context, op string, fn func(ctx context.Context, c *client, h uint64) (offsets, error)) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	var off offsets
	err := l.call(ctx, op, func(ctx context.Context, c *client, h uint64) (err error) {
		off, err = fn(ctx, c, h)
		return err
	})
	if err != nil {
		return err
	}
	l.setOffsets(off)
	return nil
}

func (l *remoteLog) Truncate(ctx context.Context, offset int64) error {
	return l.mutate(ctx, "truncate", func(ctx context.Context, c *client, h uint64) (offsets, error) {
		return c.truncate(ctx, h, offset)
	})
}

func (l *remoteLog) DeleteBefore(ctx context.Context, offset int64) error {
	return l.mutate(ctx, "delete before", func(ctx context.Context, c *client, h uint64) (offsets, error) {
		return c.deleteBefore(ctx, h, offset)
	})
}

func (l *remoteLog) Roll(ctx context.Context) error {
	return l.mutate(ctx, "roll", func(ctx context.Context, c *client, h uint64) (offsets, error) {
		return c.roll(ctx, h)
	})
}

func (l *remoteLog) Flush(ctx context.Context) error {
	return l.call(ctx, "flush", func(ctx context.Context, c *client, h uint64) error { return c.flush(ctx, h) })
}

// segmentsTimeout bounds Segments, which has no context of its own.
const segmentsTimeout = 30 * time.Second

func (l *remoteLog) Segments() []SegmentInfo {
	ctx, cancel := context.WithTimeout(context.Background(), segmentsTimeout)
	defer cancel()
	var segs []SegmentInfo
	err := l.call(ctx, "segments", func(ctx context.Context, c *client, h uint64) (err error) {
		segs, err = c.segments(ctx, h)
		return err
	})
	if err != nil {
		return nil
	}
	return segs
}

// Close closes the log in the plugin. A log whose process died has nothing
// left to close there: a later start of the process does not reopen it.
func (l *remoteLog) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.mu.Lock()
	c, h := l.c, l.h
	l.mu.Unlock()
	l.b.forget(l)
	ctx, cancel := context.WithTimeout(context.Background(), segmentsTimeout)
	defer cancel()
	err := c.closeLog(ctx, h)
	if err == nil {
		return nil
	}
	err = fromStatus(ctx, "close "+l.id.String(), err)
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}
