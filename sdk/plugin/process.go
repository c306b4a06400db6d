package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrCrashed is matched (errors.Is) by the error of a call that was in
// flight when its plugin process died. The call is not retried: the plugin
// may or may not have done its work. The next call starts the plugin again.
var ErrCrashed = errors.New("plugin process crashed")

// ErrClosed is matched by the error of a call made after Close.
var ErrClosed = errors.New("plugin process closed")

// ErrStart is matched by the error of a call whose plugin could not be
// started (missing binary, failed handshake, failed initialisation).
var ErrStart = errors.New("plugin did not start")

// CrashError is the error of a call whose plugin process died during it.
type CrashError struct {
	Kind Kind
	Name string
	Path string
	// Stderr is the last lines the plugin wrote on stderr (often a panic).
	Stderr string
	// Restart is how long the next call waits before starting the plugin
	// again.
	Restart time.Duration
	// Err is the transport error the call ended with.
	Err error
}

func (e *CrashError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s plugin %q (%s) crashed during the call", e.Kind, e.Name, e.Path)
	if e.Stderr != "" {
		fmt.Fprintf(&b, " (its stderr ends with: %s)", e.Stderr)
	}
	fmt.Fprintf(&b, "; it is started again on the next call, after %s", e.Restart)
	return b.String()
}

// Unwrap lets errors.Is match ErrCrashed and the transport error.
func (e *CrashError) Unwrap() []error { return []error{ErrCrashed, e.Err} }

// Backoff is the wait before restarting a plugin that crashed: Initial
// after the first crash, doubled after each further consecutive crash, never
// more than Max.
type Backoff struct {
	Initial, Max time.Duration
}

// DefaultBackoff waits 100ms after a first crash and at most 10s.
var DefaultBackoff = Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second}

// after returns the wait after n consecutive crashes.
func (b Backoff) after(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// ProcessConfig describes one supervised plugin process.
type ProcessConfig[T any] struct {
	Kind Kind
	Name string
	Path string
	// Client returns a fresh go-plugin configuration for each start (an
	// exec.Cmd cannot be reused); usually ClientConfig of the contract.
	Client func() *goplugin.ClientConfig
	// Dispense is the key of the plugin in the plugin set.
	Dispense string
	// Init runs after every start, before the first call, for instance to
	// send the plugin its configuration again after a restart.
	Init func(ctx context.Context, impl T) error
	// Backoff is the restart policy; zero means DefaultBackoff.
	Backoff Backoff
	// Logger receives go-plugin's and the plugin's log lines; nil means
	// warnings and errors on stderr.
	Logger hclog.Logger
	// CallTimeout bounds each call whose context has no sooner deadline; a
	// plugin that does not answer in time is taken for hung, killed and
	// started again on the next call. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
}

// DefaultCallTimeout bounds a plugin call whose context has no deadline, so
// a hung plugin cannot hang its host.
const DefaultCallTimeout = 2 * time.Minute

// ErrHung is matched by the error of a call the plugin did not answer
// within the call timeout; the process was killed.
var ErrHung = errors.New("plugin did not answer in time")

// Process is a plugin binary running as a child process, restarted with
// backoff after it crashes. Its methods are safe for concurrent use.
type Process[T any] struct {
	cfg ProcessConfig[T]
	// sem is a one-slot semaphore guarding the fields below; a channel
	// rather than a mutex so waiting for it (and for a backoff) honours the
	// caller's context.
	sem chan struct{}

	client    *goplugin.Client
	impl      T
	stderr    *tail
	crashes   int
	lastCrash time.Time
	closed    bool
	starts    int
}

// Start launches the plugin and returns once it is serving (or failed).
func Start[T any](ctx context.Context, cfg ProcessConfig[T]) (*Process[T], error) {
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: BinaryName(cfg.Kind, cfg.Name), Level: hclog.Warn})
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	p := &Process[T]{cfg: cfg, sem: make(chan struct{}, 1)}
	if _, _, err := p.current(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Starts is how many times the binary was started (1 until a restart).
func (p *Process[T]) Starts() int {
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	return p.starts
}

// Kill kills the running process as a crash would; tests use it.
func (p *Process[T]) Kill() {
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	if p.client != nil {
		p.client.Kill()
	}
}

// Close stops the process; later calls fail with ErrClosed.
func (p *Process[T]) Close() error {
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	p.closed = true
	if p.client != nil {
		p.client.Kill()
		p.client = nil
	}
	return nil
}

// Do calls fn with the running plugin, starting it first if needed. If the
// process dies during fn, Do returns a *CrashError.
func (p *Process[T]) Do(ctx context.Context, fn func(ctx context.Context, impl T) error) error {
	impl, c, err := p.current(ctx)
	if err != nil {
		return err
	}
	callCtx, cancel := ctx, context.CancelFunc(func() {})
	bounded := false
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > p.cfg.CallTimeout {
		callCtx, cancel = context.WithTimeout(ctx, p.cfg.CallTimeout)
		bounded = true
	}
	err = fn(callCtx, impl)
	// The plugin's side of the call (told the deadline by gRPC) may give
	// up a moment before callCtx's own timer fires, so its
	// DeadlineExceeded counts too.
	timedOut := bounded && ctx.Err() == nil &&
		(callCtx.Err() != nil || status.Code(err) == codes.DeadlineExceeded)
	cancel()
	switch {
	case err == nil:
		p.succeeded(c)
		return nil
	case timedOut:
		p.hung(c)
		return fmt.Errorf("%w: %s plugin %q (%s) gave no answer in %s; it was killed and starts again on the next call: %w",
			ErrHung, p.cfg.Kind, p.cfg.Name, p.cfg.Path, p.cfg.CallTimeout, err)
	case ctx.Err() == nil && transportFailure(err) && waitExited(c, 5*time.Second):
		return p.crashed(c, err)
	}
	return err
}

// hung kills the process that ran c, which stopped answering.
func (p *Process[T]) hung(c *goplugin.Client) {
	p.sem <- struct{}{}
	defer p.unlock()
	if p.client == c {
		p.noteCrash()
	}
}

// transportFailure reports whether err is the gRPC connection failing
// rather than the plugin answering with an error.
func transportFailure(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// waitExited waits (briefly) for go-plugin to notice the process ended: the
// connection can close a moment before the process is reaped.
func waitExited(c *goplugin.Client, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for !c.Exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func (p *Process[T]) lock(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s plugin %q: %w", p.cfg.Kind, p.cfg.Name, ctx.Err())
	}
}

func (p *Process[T]) unlock() { <-p.sem }

// crashed records the death of the process that ran c and builds the
// error of the call in flight.
func (p *Process[T]) crashed(c *goplugin.Client, cause error) error {
	p.sem <- struct{}{}
	defer p.unlock()
	if p.client == c {
		p.noteCrash()
	}
	return &CrashError{
		Kind: p.cfg.Kind, Name: p.cfg.Name, Path: p.cfg.Path,
		Stderr:  p.stderr.last(),
		Restart: p.cfg.Backoff.after(p.crashes),
		Err:     cause,
	}
}

// noteCrash forgets the dead process; the caller holds sem.
func (p *Process[T]) noteCrash() {
	p.client.Kill()
	p.client = nil
	p.crashes++
	p.lastCrash = time.Now()
}

func (p *Process[T]) succeeded(c *goplugin.Client) {
	p.sem <- struct{}{}
	defer p.unlock()
	if p.client == c {
		p.crashes = 0
	}
}

// current returns the running plugin, starting it (after any backoff) when
// there is none.
func (p *Process[T]) current(ctx context.Context) (T, *goplugin.Client, error) {
	var zero T
	if err := p.lock(ctx); err != nil {
		return zero, nil, err
	}
	defer p.unlock()
	if p.closed {
		return zero, nil, fmt.Errorf("%s plugin %q: %w", p.cfg.Kind, p.cfg.Name, ErrClosed)
	}
	if p.client != nil && !p.client.Exited() {
		return p.impl, p.client, nil
	}
	if p.client != nil {
		// It died between calls.
		p.noteCrash()
	}
	if wait := p.cfg.Backoff.after(p.crashes) - time.Since(p.lastCrash); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, nil, fmt.Errorf("%s plugin %q is restarting after a crash: %w", p.cfg.Kind, p.cfg.Name, ctx.Err())
		}
	}
	impl, c, err := p.launch(ctx)
	if err != nil {
		p.crashes++
		p.lastCrash = time.Now()
		return zero, nil, err
	}
	p.client, p.impl = c, impl
	p.starts++
	return impl, c, nil
}

func (p *Process[T]) launch(ctx context.Context) (T, *goplugin.Client, error) {
	var zero T
	cc := p.cfg.Client()
	cc.Logger = p.cfg.Logger
	p.stderr = &tail{}
	cc.Stderr = p.stderr
	c := goplugin.NewClient(cc)
	fail := func(err error) (T, *goplugin.Client, error) {
		c.Kill()
		msg := fmt.Sprintf("%s plugin %q (%s)", p.cfg.Kind, p.cfg.Name, p.cfg.Path)
		if s := p.stderr.last(); s != "" {
			msg += " (stderr: " + s + ")"
		}
		return zero, nil, fmt.Errorf("%w: %s: %w", ErrStart, msg, err)
	}
	rpc, err := c.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := rpc.Dispense(p.cfg.Dispense)
	if err != nil {
		return fail(err)
	}
	impl, ok := raw.(T)
	if !ok {
		return fail(fmt.Errorf("dispensed %T, not the contract's client", raw))
	}
	if p.cfg.Init != nil {
		if err := p.cfg.Init(ctx, impl); err != nil {
			return fail(err)
		}
	}
	return impl, c, nil
}

// tail keeps the last lines a plugin wrote on stderr, so a crash can be
// explained by its panic message.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 4096

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(b), nil
}

// last returns the most telling line: the first "panic:" or "fatal error:"
// line if there is one, else the last non-empty line the plugin wrote.
func (t *tail) last() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := bytes.Split(bytes.TrimSpace(t.buf), []byte("\n"))
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte("panic:")) || bytes.HasPrefix(l, []byte("fatal error:")) {
			return string(bytes.TrimSpace(l))
		}
	}
	// go-plugin's own log lines (JSON) say nothing about the crash.
	for i := len(lines) - 1; i >= 0; i-- {
		if l := bytes.TrimSpace(lines[i]); len(l) > 0 && !bytes.HasPrefix(l, []byte(`{"@level"`)) {
			return string(l)
		}
	}
	return ""
}
