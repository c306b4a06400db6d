package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors reported by the lifecycle methods.
var (
	// ErrNotReady means a server did not answer "ruok" with "imok" within
	// its ready timeout, or exited before it did. The wrapping error names
	// the server and carries the tail of its log.
	ErrNotReady = errors.New("launch: server not ready")
	// ErrRunning means Start was called on a member whose process is still
	// running.
	ErrRunning = errors.New("launch: server already running")
)

// Defaults applied when Options leaves a field zero.
const (
	DefaultReadyTimeout = 60 * time.Second
	DefaultStopTimeout  = 15 * time.Second
	// logTailBytes is how much of a log an error message quotes: enough for
	// a Java stack trace, short enough to read in test output.
	logTailBytes = 6 << 10
)

// Kind says which server implementation a member runs.
type Kind int

const (
	// KindZooKeeper is Apache ZooKeeper.
	KindZooKeeper Kind = iota + 1
	// KindCoordinator is Runnel's coordinator.
	KindCoordinator
)

func (k Kind) String() string {
	switch k {
	case KindZooKeeper:
		return "zookeeper"
	case KindCoordinator:
		return "runnel-coordinator"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Member is one server process of a Cluster. Its addresses and directory
// stay the same across restarts, so a restarted member finds its data.
type Member struct {
	// ID is the member's 1-based server id (myid, or --id for Runnel).
	ID int
	// Kind is the implementation this member runs.
	Kind Kind
	// Addr is the client address, host:port.
	Addr string
	// PeerAddr is the replication address: for ZooKeeper
	// "127.0.0.1:quorumPort:electionPort", for Runnel the raft address.
	// Empty for a standalone server.
	PeerAddr string
	// AdminAddr is the admin HTTP address when one was requested.
	AdminAddr string
	// Dir holds the member's configuration, data directory and log.
	Dir string
	// LogPath is the file that receives the process's stdout and stderr.
	LogPath string

	argv         []string
	env          []string
	readyTimeout time.Duration
	stopTimeout  time.Duration

	mu     sync.Mutex
	proc   *process
	starts int
}

// process is one run of a member's command.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed once cmd.Wait returned
	err  error         // cmd.Wait's result, valid after done
}

func (m *Member) name() string {
	return fmt.Sprintf("%s member %d (%s)", m.Kind, m.ID, m.Addr)
}

// Running reports whether the member's process is alive.
func (m *Member) Running() bool {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid returns the process id of the running member, or 0.
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return 0
	}
	return m.proc.cmd.Process.Pid
}

// Start launches the member's process and waits until it is ready.
func (m *Member) Start(ctx context.Context) error {
	if err := m.spawn(); err != nil {
		return err
	}
	return m.WaitReady(ctx)
}

// spawn starts the process without waiting for readiness, so that the
// members of an ensemble can come up together.
func (m *Member) spawn() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		select {
		case <-m.proc.done:
		default:
			return fmt.Errorf("%w: %s", ErrRunning, m.name())
		}
	}
	lf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("launch: open log of %s: %w", m.name(), err)
	}
	m.starts++
	fmt.Fprintf(lf, "=== launch: start #%d of %s at %s: %s\n", m.starts, m.name(),
		time.Now().Format(time.RFC3339Nano), strings.Join(m.argv, " "))

	cmd := exec.Command(m.argv[0], m.argv[1:]...)
	cmd.Dir = m.Dir
	cmd.Env = append(os.Environ(), m.env...)
	cmd.Stdin = nil
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("launch: start %s: %w", m.name(), err)
	}
	p := &process{cmd: cmd, log: lf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(lf, "=== launch: %s exited: %v\n", m.name(), p.err)
		lf.Close()
		close(p.done)
	}()
	m.proc = p
	return nil
}

// WaitReady waits until the running member answers its readiness probe,
// bounded by ctx and by the member's ready timeout.
func (m *Member) WaitReady(ctx context.Context) error {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: %s was never started", ErrNotReady, m.name())
	}
	ctx, cancel := context.WithTimeout(ctx, m.readyTimeout)
	defer cancel()
	var lastErr error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		probeCtx, probeCancel := context.WithTimeout(ctx, time.Second)
		lastErr = m.probe(probeCtx)
		probeCancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w: %s exited before it was ready (%v); log %s:\n%s",
				ErrNotReady, m.name(), p.err, m.LogPath, m.LogTail(logTailBytes))
		case <-ctx.Done():
			return fmt.Errorf("%w: %s after %v (last probe: %v); log %s:\n%s",
				ErrNotReady, m.name(), m.readyTimeout, lastErr, m.LogPath, m.LogTail(logTailBytes))
		case <-tick.C:
		}
	}
}

// probe asks ruok and, for ZooKeeper, whether the server has a mode: an
// ensemble member answers imok as soon as its process runs, but serves
// clients only once it is a leader or a follower.
func (m *Member) probe(ctx context.Context) error {
	out, err := FourLetter(ctx, m.Addr, "ruok")
	if err != nil {
		return err
	}
	if out != "imok" {
		return fmt.Errorf("ruok answered %q", out)
	}
	if m.Kind != KindZooKeeper {
		return nil
	}
	mode, err := m.Mode(ctx)
	if err != nil {
		return err
	}
	if mode == "" {
		return errors.New("srvr reports no mode yet")
	}
	return nil
}

// Mode returns the "Mode:" line of the member's srvr answer: "standalone",
// "leader" or "follower" (empty when the server is not serving yet).
func (m *Member) Mode(ctx context.Context) (string, error) {
	out, err := FourLetter(ctx, m.Addr, "srvr")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", nil
}

// Stop ends the member gracefully: SIGTERM to its process group, then
// SIGKILL if it is still running after the stop timeout. Stopping a member
// that is not running does nothing.
func (m *Member) Stop() error {
	return m.signal(syscall.SIGTERM, m.stopTimeout)
}

// Kill ends the member with SIGKILL, as a crash would, and waits for it.
func (m *Member) Kill() error {
	return m.signal(syscall.SIGKILL, m.stopTimeout)
}

// Restart stops the member gracefully and starts it again on the same
// ports and data, waiting until it is ready.
func (m *Member) Restart(ctx context.Context) error {
	if err := m.Stop(); err != nil {
		return err
	}
	return m.Start(ctx)
}

func (m *Member) signal(sig syscall.Signal, grace time.Duration) error {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		return nil
	}
	pid := p.cmd.Process.Pid
	select {
	case <-p.done:
	default:
		// The negative pid addresses the process group made by
		// sysProcAttr, so helpers a start script forked die too.
		if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("launch: signal %v to %s: %w", sig, m.name(), err)
		}
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// The group is not signalled once its leader is gone and reaped: its
	// id could by then belong to someone else's process group.
	return nil
}

// LogTail returns at most the last n bytes of the member's log.
func (m *Member) LogTail(n int) string {
	return tail(m.LogPath, n)
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := st.Size() - int64(n)
	if off < 0 {
		off = 0
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "...\n" + string(b)
	}
	return string(b)
}

// FourLetter sends a four-letter word to a ZooKeeper-compatible client port
// and returns the answer with surrounding white space removed.
func FourLetter(ctx context.Context, addr, word string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("launch: %s to %s: %w", word, addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	}
	if _, err := io.WriteString(conn, word); err != nil {
		return "", fmt.Errorf("launch: %s to %s: %w", word, addr, err)
	}
	// The server closes the connection after answering.
	b, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return "", fmt.Errorf("launch: %s to %s: %w", word, addr, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Cluster is a standalone server (one member) or an ensemble.
type Cluster struct {
	// Members in id order.
	Members []*Member
	// Dir is the directory holding one sub-directory per member.
	Dir string

	ownsDir bool
}

// Addrs returns the client addresses of all members.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.Addr
	}
	return out
}

// Addr returns the client address of the first member.
func (c *Cluster) Addr() string { return c.Members[0].Addr }

// ConnectString returns the addresses joined by commas, as zkCli.sh and
// Kafka's zookeeper.connect expect them.
func (c *Cluster) ConnectString() string { return strings.Join(c.Addrs(), ",") }

// Kind returns the implementation the cluster runs.
func (c *Cluster) Kind() Kind { return c.Members[0].Kind }

// Start starts every member that is not running and waits until all are
// ready.
func (c *Cluster) Start(ctx context.Context) error {
	for _, m := range c.Members {
		if m.Running() {
			continue
		}
		if err := m.spawn(); err != nil {
			return err
		}
	}
	return c.WaitReady(ctx)
}

// WaitReady waits until every member is ready.
func (c *Cluster) WaitReady(ctx context.Context) error {
	var errs []error
	for _, m := range c.Members {
		if err := m.WaitReady(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop stops every member gracefully; data stays for a later Start.
func (c *Cluster) Stop() error {
	return c.each(func(m *Member) error { return m.Stop() })
}

// Kill kills every member with SIGKILL.
func (c *Cluster) Kill() error {
	return c.each(func(m *Member) error { return m.Kill() })
}

// Restart stops and starts every member, keeping ports and data.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.Start(ctx)
}

// Close stops every member and, when the cluster made its own directory,
// removes it.
func (c *Cluster) Close() error {
	err := c.Stop()
	if c.ownsDir {
		if rerr := os.RemoveAll(c.Dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("launch: remove %s: %w", c.Dir, rerr))
		}
	}
	return err
}

// Leader returns the member whose srvr answer says "leader", or the only
// member of a standalone cluster. Right after a leader dies the survivors
// may still call themselves followers while they elect, so it keeps asking
// until one leads or the members' ready timeout passes.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	if len(c.Members) == 1 {
		return c.Members[0], nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.Members[0].readyTimeout)
	defer cancel()
	for {
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			if mode, err := m.Mode(ctx); err == nil && mode == "leader" {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("launch: no member of %s reports mode leader", c.Dir)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Logs returns the tail of every member's log, each under a header, for a
// test to print when it fails.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, m := range c.Members {
		fmt.Fprintf(&b, "----- %s: %s\n%s\n", m.name(), m.LogPath, m.LogTail(logTailBytes))
	}
	return b.String()
}

func (c *Cluster) each(f func(*Member) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Members))
	for i, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(m)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Options configure a server or ensemble. The zero value is usable.
type Options struct {
	// Dir is where member directories are made. Empty means a new
	// temporary directory that Close removes.
	Dir string
	// ReadyTimeout bounds the wait for each member to become ready
	// (DefaultReadyTimeout when zero).
	ReadyTimeout time.Duration
	// StopTimeout bounds a graceful stop before SIGKILL
	// (DefaultStopTimeout when zero).
	StopTimeout time.Duration
	// ContainerCheckInterval, when set, is how often the server looks for
	// empty container nodes and expired TTL nodes: ZooKeeper's
	// znode.container.checkIntervalMs system property, Runnel's
	// --container-check-interval flag. Zero keeps each server's default
	// (one minute for ZooKeeper).
	ContainerCheckInterval time.Duration
	// TickTime is ZooKeeper's tickTime (2s when zero). Runnel's
	// coordinator gets no flag for it.
	TickTime time.Duration
	// Admin asks for an admin HTTP address: Runnel's --admin-listen.
	// ZooKeeper's AdminServer always stays off.
	Admin bool
	// JVMFlags are added to ZooKeeper's SERVER_JVMFLAGS.
	JVMFlags []string
	// Args are added to Runnel's command line.
	Args []string
	// Env is added to the server's environment (KEY=value).
	Env []string
	// ZooKeeperHome is the ZooKeeper installation, holding bin/zkServer.sh;
	// empty means $ZOOKEEPER_HOME or /usr/share/zookeeper.
	ZooKeeperHome string
}

func (o Options) withDefaults() Options {
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.TickTime <= 0 {
		o.TickTime = 2 * time.Second
	}
	return o
}

// clusterDir returns the directory for a new cluster and whether the
// cluster owns (and Close removes) it.
func clusterDir(o Options, prefix string) (string, bool, error) {
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return "", false, fmt.Errorf("launch: %w", err)
		}
		return o.Dir, false, nil
	}
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", false, fmt.Errorf("launch: %w", err)
	}
	return d, true, nil
}

// maxPortAttempts bounds how often a cluster is retried on fresh ports when
// another process took one of ours between choosing and binding it.
const maxPortAttempts = 3

// startCluster makes members with setup (given a fresh attempt directory
// and ports), starts them together and waits until they are ready,
// retrying on new ports when a member lost a port race.
func startCluster(ctx context.Context, o Options, prefix string, n int, portsPer int,
	setup func(dir string, ports [][]int) ([]*Member, error)) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("launch: ensemble size %d: need at least one member", n)
	}
	dir, owns, err := clusterDir(o, prefix)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 1; attempt <= maxPortAttempts; attempt++ {
		attemptDir := dir
		if attempt > 1 {
			attemptDir = filepath.Join(dir, fmt.Sprintf("attempt-%d", attempt))
		}
		ports, err := freePorts(n * portsPer)
		if err != nil {
			lastErr = err
			break
		}
		grouped := make([][]int, n)
		for i := range grouped {
			grouped[i] = ports[i*portsPer : (i+1)*portsPer]
		}
		members, err := setup(attemptDir, grouped)
		if err != nil {
			lastErr = err
			break
		}
		c := &Cluster{Members: members, Dir: dir, ownsDir: owns}
		for _, m := range members {
			m.readyTimeout, m.stopTimeout = o.ReadyTimeout, o.StopTimeout
		}
		lastErr = c.Start(ctx)
		if lastErr == nil {
			return c, nil
		}
		_ = c.Kill()
		if !lostPortRace(c) {
			break
		}
	}
	if owns {
		// Keep the directory: its logs explain the failure.
		lastErr = fmt.Errorf("%w (files kept in %s)", lastErr, dir)
	}
	return nil, lastErr
}

// lostPortRace reports whether a member's log says a port was taken.
func lostPortRace(c *Cluster) bool {
	for _, m := range c.Members {
		if strings.Contains(strings.ToLower(m.LogTail(64<<10)), "address already in use") {
			return true
		}
	}
	return false
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// All are held open together so that no two of them are the same.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("launch: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func loopback(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
