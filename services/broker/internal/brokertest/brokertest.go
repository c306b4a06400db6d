// Package brokertest starts the real processes the broker's integration
// tests talk to: the runnel-broker binary, Runnel's coordinator and Apache
// ZooKeeper 3.8, each on a free loopback port with its data in the test's
// temporary directory, stopped when the test ends, and a NATS server
// (nats-server, embedded in the test process). It also finds the real
// Kafka clients the tests drive (kcat, Debian's Python clients).
//
// A missing peer skips the test, except under CI=true, where it fails it:
// a skipped compatibility test proves nothing.
package brokertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Missing skips t, or fails it under CI=true, because a peer is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("required peer missing under CI=true: %s", msg)
	}
	t.Skipf("peer missing: %s", msg)
}

// moduleDir is the broker module's directory.
func moduleDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file))) // internal/brokertest/brokertest.go
}

var (
	buildMu sync.Mutex
	builds  = map[string]string{}
)

// build compiles pkg of the module in dir once per test process, into the
// user's cache directory (so repeated runs leave nothing behind), and
// returns the binary.
func build(t testing.TB, dir, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := dir + "|" + pkg
	if p, ok := builds[key]; ok {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(key))
	out := filepath.Join(cache, "runnel-brokertest", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(out, fmt.Sprintf("bin-%d.tmp", os.Getpid()))
	cmd := exec.Command("go", "build", "-o", tmp, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s in %s: %v\n%s", pkg, dir, err, b)
	}
	final := filepath.Join(out, filepath.Base(pkg))
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	builds[key] = final
	return final
}

// BrokerBinary builds ./cmd/runnel-broker (or returns $RUNNEL_BROKER_BIN).
func BrokerBinary(t testing.TB) string {
	if p := os.Getenv("RUNNEL_BROKER_BIN"); p != "" {
		return p
	}
	return build(t, moduleDir(), "./cmd/runnel-broker")
}

// CoordinatorBinary builds Runnel's coordinator from the sibling module
// (or returns $RUNNEL_COORDINATOR_BIN).
func CoordinatorBinary(t testing.TB) string {
	if p := os.Getenv("RUNNEL_COORDINATOR_BIN"); p != "" {
		return p
	}
	return build(t, filepath.Join(moduleDir(), "..", "coordinator"), "./cmd/runnel-coordinator")
}

// RunnelBinary builds the runnel command line from the root module (or
// returns $RUNNEL_BIN).
func RunnelBinary(t testing.TB) string {
	if p := os.Getenv("RUNNEL_BIN"); p != "" {
		return p
	}
	return build(t, filepath.Join(moduleDir(), "..", ".."), "./cmd/runnel")
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Process is a started server process.
type Process struct {
	t    testing.TB
	Addr string
	Dir  string
	argv []string
	env  []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs argv in its own process group with output in logPath.
func start(t testing.TB, addr, dir string, argv, env []string) *Process {
	t.Helper()
	p := &Process{t: t, Addr: addr, Dir: dir, argv: argv, env: env, log: filepath.Join(dir, "process.log")}
	p.Start()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Start starts the process again (same arguments, same data).
func (p *Process) Start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("start %s: %v", p.argv[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// Running reports whether the process was started and has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Log returns what the process printed so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Kill sends SIGKILL to the process group (a crash) and waits for it.
func (p *Process) Kill() { p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM (a clean stop) and waits, killing after 15 s.
func (p *Process) Stop() {
	p.signal(syscall.SIGTERM)
}

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// waitFor polls ok until it holds or d passes, then fails with the log.
func (p *Process) waitFor(d time.Duration, what string, ok func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-done:
			p.t.Fatalf("%s exited before %s; log:\n%s", p.argv[0], what, tail(p.Log()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s: no %s after %s; log:\n%s", p.argv[0], what, d, tail(p.Log()))
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// fourLetter sends a ZooKeeper four-letter word and returns the answer.
func fourLetter(addr, cmd string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return ""
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(c)
	return b.String()
}

// Coordinator starts Runnel's coordinator and returns its client address.
func Coordinator(t testing.TB) *Process { return CoordinatorAt(t, "127.0.0.1") }

// CoordinatorAt starts Runnel's coordinator listening on host (an
// address of this machine, such as a Lab's).
func CoordinatorAt(t testing.TB, host string) *Process {
	t.Helper()
	bin := CoordinatorBinary(t)
	dir := t.TempDir()
	addr := net.JoinHostPort(host, strconv.Itoa(FreePort(t)))
	p := start(t, addr, dir, []string{bin, "--listen", addr, "--data-dir", filepath.Join(dir, "data")}, nil)
	p.waitFor(20*time.Second, "imok", func() bool { return fourLetter(addr, "ruok") == "imok" })
	return p
}

// ZooKeeper starts Apache ZooKeeper 3.8 from Debian's package (or
// $ZOOKEEPER_HOME) and returns it.
func ZooKeeper(t testing.TB) *Process { return ZooKeeperAt(t, "127.0.0.1") }

// ZooKeeperAt starts Apache ZooKeeper listening on host.
func ZooKeeperAt(t testing.TB, host string) *Process {
	t.Helper()
	home := os.Getenv("ZOOKEEPER_HOME")
	if home == "" {
		home = "/usr/share/zookeeper"
	}
	script := filepath.Join(home, "bin", "zkServer.sh")
	if _, err := os.Stat(script); err != nil {
		Missing(t, "Apache ZooKeeper (apt-get install -y zookeeper): %v", err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		Missing(t, "java for Apache ZooKeeper: %v", err)
	}
	dir := t.TempDir()
	port := FreePort(t)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	cfg := fmt.Sprintf("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=%s\nadmin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns=0\n",
		filepath.Join(dir, "data"), port, host)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"ZOO_LOG_DIR=" + dir, "JMXDISABLE=true"}
	// Debian's class path lacks an SLF4J binding; add slf4j-simple when
	// present so the server's log reaches our file.
	if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil && home == "/usr/share/zookeeper" {
		env = append(env, "JVMFLAGS=-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar")
	}
	p := start(t, addr, dir, []string{script, "start-foreground", filepath.Join(dir, "zoo.cfg")}, env)
	p.waitFor(60*time.Second, "imok", func() bool {
		return fourLetter(addr, "ruok") == "imok" && strings.Contains(fourLetter(addr, "srvr"), "Mode:")
	})
	return p
}

// BrokerOptions configure StartBroker.
type BrokerOptions struct {
	ID      int
	DataDir string // default: a new temporary directory
	Storage string // default: file
	// StoragePlugin runs the storage backend as this plugin process (file
	// or memory, built from the plugins module); default:
	// $RUNNEL_TEST_STORAGE_PLUGIN, so the whole suite can run that way.
	StoragePlugin string
	Settings      []string // --config values
	Args          []string // more flags
	// Host runs the broker in a Lab's network namespace, listening on the
	// host's address.
	Host *Host
}

// StartBroker starts the runnel-broker binary against coordinator and waits
// until it answers Kafka requests.
func StartBroker(t testing.TB, coordinator string, o BrokerOptions) *Process {
	t.Helper()
	if o.ID == 0 {
		o.ID = 1
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Storage == "" {
		o.Storage = "file"
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	if o.Host != nil {
		addr = net.JoinHostPort(o.Host.Addr, "9092") // a namespace of its own: any port is free
	}
	argv := []string{BrokerBinary(t), "--id", strconv.Itoa(o.ID), "--listen", addr, "--data-dir", o.DataDir,
		"--coordinator", coordinator, "--storage", o.Storage, "--log-level", "debug"}
	for _, s := range o.Settings {
		argv = append(argv, "--config", s)
	}
	argv = append(argv, storagePluginArgs(t, o.StoragePlugin)...)
	argv = append(argv, o.Args...)
	if o.Host != nil {
		argv = o.Host.Command(argv...)
	}
	p := start(t, addr, o.DataDir, argv, []string{"OTEL_SDK_DISABLED=true"})
	p.WaitReady()
	return p
}

// WaitReady waits until the broker accepts connections and logs that it
// started.
func (p *Process) WaitReady() {
	p.t.Helper()
	p.waitFor(60*time.Second, "broker start", func() bool {
		if !strings.Contains(p.Log(), "broker started") {
			return false
		}
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// Restart starts the broker again after a Kill or Stop and waits until it
// is ready. Its log keeps growing in the same file; readiness is judged by a
// new "broker started" line.
func (p *Process) Restart() {
	p.t.Helper()
	before := strings.Count(p.Log(), "broker started")
	p.Start()
	p.waitFor(90*time.Second, "broker restart", func() bool {
		if strings.Count(p.Log(), "broker started") <= before {
			return false
		}
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// Context returns a context bounded by d and the test's end.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Python returns Debian's python3 when it can import module.
func Python(t testing.TB, module, pkg string) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		Missing(t, "%s: %v", py, err)
	}
	if out, err := exec.Command(py, "-c", "import "+module).CombinedOutput(); err != nil {
		Missing(t, "python module %s (apt-get install -y %s): %v %s", module, pkg, err, out)
	}
	return py
}

// Kcat returns the kcat binary.
func Kcat(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "kcat (apt-get install -y kcat)")
	return ""
}

// Pause stops the process with SIGSTOP (it keeps its sockets but does not
// run, so a coordinator session of it expires); Resume continues it.
func (p *Process) Pause() { p.sendOnly(syscall.SIGSTOP) }

// Resume continues a paused process.
func (p *Process) Resume() { p.sendOnly(syscall.SIGCONT) }

func (p *Process) sendOnly(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}
