package launch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// requireZooKeeper skips without ZooKeeper, except under CI=true where a
// missing peer is a failure.
func requireZooKeeper(t *testing.T) {
	t.Helper()
	if _, err := LocateZooKeeper(""); err != nil {
		if errors.Is(err, ErrMissing) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
}

func connect(t *testing.T, addrs []string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(addrs, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-deadline:
			t.Fatalf("no session with %v", addrs)
		}
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

func TestLocateZooKeeperMissing(t *testing.T) {
	_, err := LocateZooKeeper(t.TempDir())
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("LocateZooKeeper(empty dir) = %v, want ErrMissing", err)
	}
	if !strings.Contains(err.Error(), "apt-get install -y zookeeper") {
		t.Errorf("error %q does not say how to install ZooKeeper", err)
	}
}

func TestZooKeeperStandaloneLifecycle(t *testing.T) {
	requireZooKeeper(t)
	ctx := context.Background()
	dir := t.TempDir()
	c, err := ZooKeeper(ctx, Options{Dir: dir, ContainerCheckInterval: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
		c.Close()
	})
	if len(c.Members) != 1 || c.Kind() != KindZooKeeper {
		t.Fatalf("members %d kind %v", len(c.Members), c.Kind())
	}
	m := c.Members[0]
	if !strings.HasPrefix(c.Addr(), "127.0.0.1:") {
		t.Fatalf("address %q is not loopback", c.Addr())
	}
	if mode, err := m.Mode(ctx); err != nil || mode != "standalone" {
		t.Fatalf("mode %q, %v", mode, err)
	}
	if out, err := FourLetter(ctx, c.Addr(), "envi"); err != nil || !strings.Contains(out, "zookeeper.version=3.8") {
		t.Fatalf("envi: %q, %v", out, err)
	}
	cfg, err := os.ReadFile(filepath.Join(m.Dir, "zoo.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4lw.commands.whitelist=*", "admin.enableServer=false", "clientPortAddress=127.0.0.1"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("zoo.cfg lacks %q:\n%s", want, cfg)
		}
	}

	conn := connect(t, c.Addrs())
	// A TTL node only exists with extended types on, so this proves the
	// JVM flags reached the server.
	if _, err := conn.CreateTTL("/ttl", []byte("x"), zk.FlagTTL, zk.WorldACL(zk.PermAll), time.Hour); err != nil {
		t.Fatalf("createTTL: %v", err)
	}
	if _, err := conn.Create("/kept", []byte("v"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	// A graceful restart keeps the data.
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	conn = connect(t, c.Addrs())
	if data, _, err := conn.Get("/kept"); err != nil || string(data) != "v" {
		t.Fatalf("after restart: %q, %v", data, err)
	}
	conn.Close()

	// Kill is a crash: the process is gone at once.
	pid := m.Pid()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if m.Running() {
		t.Fatal("still running after Kill")
	}
	if err := syscallAlive(pid); err == nil {
		t.Fatalf("pid %d still alive after Kill", pid)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start = %v, want ErrRunning", err)
	}
	log, err := os.ReadFile(m.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "=== launch: start #"); n != 3 {
		t.Errorf("log records %d starts, want 3", n)
	}
	if !strings.Contains(string(log), "INFO org.apache.zookeeper") {
		t.Errorf("log has no ZooKeeper output:\n%s", m.LogTail(2000))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Close removed a directory the caller owns: %v", err)
	}
}

func TestZooKeeperOwnedDirRemoved(t *testing.T) {
	requireZooKeeper(t)
	c, err := ZooKeeper(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := c.Dir
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Close left %s: %v", dir, err)
	}
}

func TestZooKeeperEnsembleLeaderFailover(t *testing.T) {
	requireZooKeeper(t)
	ctx := context.Background()
	c, err := ZooKeeperEnsemble(ctx, 3, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
		c.Close()
	})
	if len(c.Addrs()) != 3 || strings.Count(c.ConnectString(), ",") != 2 {
		t.Fatalf("addresses %v", c.Addrs())
	}
	myid, err := os.ReadFile(filepath.Join(c.Members[1].Dir, "data", "myid"))
	if err != nil || strings.TrimSpace(string(myid)) != "2" {
		t.Fatalf("myid of member 2: %q, %v", myid, err)
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, c.Addrs())
	if _, err := conn.Create("/before", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	// The two survivors elect a new leader and serve again.
	var rest []*Member
	for _, m := range c.Members {
		if m != leader {
			rest = append(rest, m)
		}
	}
	survivors := &Cluster{Members: rest}
	if err := survivors.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	newLeader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newLeader == leader {
		t.Fatal("dead member still reported as leader")
	}
	if err := leader.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if mode, err := leader.Mode(ctx); err != nil || mode != "follower" {
		t.Fatalf("old leader rejoined as %q, %v", mode, err)
	}
}

// fakeCoordinator stands in for runnel-coordinator: it answers ruok with
// imok on --listen and writes its command line into --data-dir, so the
// test can check the flags launch passes.
const fakeCoordinator = `package main

import (
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	var listen, data string
	for i, a := range os.Args {
		switch a {
		case "--listen":
			listen = os.Args[i+1]
		case "--data-dir":
			data = os.Args[i+1]
		}
	}
	os.WriteFile(filepath.Join(data, "args"), []byte(strings.Join(os.Args[1:], " ")), 0o644)
	l, err := net.Listen("tcp", listen)
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			n, _ := c.Read(buf)
			if string(buf[:n]) == "ruok" {
				c.Write([]byte("imok"))
			}
			c.Close()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	println("fake coordinator stopping")
}
`

func buildFake(t *testing.T) string {
	t.Helper()
	mod := t.TempDir()
	if err := os.MkdirAll(filepath.Join(mod, "cmd", "runnel-coordinator"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/fake\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "cmd", "runnel-coordinator", "main.go"), []byte(fakeCoordinator), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOWORK", "off")
	ctx := context.Background()
	bin, err := Build(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(ctx, mod)
	if err != nil || again != bin {
		t.Fatalf("second Build = %q, %v; want the cached %q", again, err, bin)
	}
	return bin
}

func TestBuildFailureIsReported(t *testing.T) {
	t.Setenv("GOWORK", "off")
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/empty\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), mod)
	if err == nil || !strings.Contains(err.Error(), "cmd/runnel-coordinator") {
		t.Fatalf("Build of a module without the command = %v", err)
	}
}

func TestCoordinatorFlagsAndLifecycle(t *testing.T) {
	bin := buildFake(t)
	ctx := context.Background()
	c, err := Coordinator(ctx, bin, Options{Dir: t.TempDir(), Admin: true, ContainerCheckInterval: 200 * time.Millisecond,
		Args: []string{"--extra", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := c.Members[0]
	args, err := os.ReadFile(filepath.Join(m.Dir, "data", "args"))
	if err != nil {
		t.Fatal(err)
	}
	want := "--listen " + m.Addr + " --data-dir " + filepath.Join(m.Dir, "data") + " --max-client-cnxns 0" +
		" --admin-listen " + m.AdminAddr + " --container-check-interval 200ms --extra x"
	if string(args) != want {
		t.Fatalf("flags\n got %s\nwant %s", args, want)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if m.Running() {
		t.Fatal("running after Stop")
	}
	if !strings.Contains(m.LogTail(1000), "fake coordinator stopping") {
		t.Errorf("Stop was not graceful; log:\n%s", m.LogTail(1000))
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := m.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := FourLetter(ctx, c.Addr(), "ruok"); err != nil || out != "imok" {
		t.Fatalf("ruok after restart: %q, %v", out, err)
	}
}

func TestCoordinatorEnsembleFlags(t *testing.T) {
	bin := buildFake(t)
	c, err := CoordinatorEnsemble(context.Background(), bin, 3, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	peers := "1=" + c.Members[0].PeerAddr + ",2=" + c.Members[1].PeerAddr + ",3=" + c.Members[2].PeerAddr
	for _, m := range c.Members {
		args, err := os.ReadFile(filepath.Join(m.Dir, "data", "args"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(args), " --id "+string(rune('0'+m.ID))+" --peers "+peers) {
			t.Errorf("member %d flags: %s", m.ID, args)
		}
	}
}

func TestNotReadyCarriesLog(t *testing.T) {
	// A "server" that prints a reason and exits must fail Start with
	// ErrNotReady and show what it printed.
	dir := t.TempDir()
	script := filepath.Join(dir, "broken")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'cannot open data dir: permission denied'\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Coordinator(context.Background(), script, Options{Dir: dir, ReadyTimeout: 10 * time.Second})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	if !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("error does not quote the log: %v", err)
	}
}

func TestReadyTimeout(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "silent")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Coordinator(context.Background(), script, Options{Dir: dir, ReadyTimeout: 500 * time.Millisecond})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("a 500ms ready timeout took %v", time.Since(start))
	}
}

// syscallAlive returns nil when a process with pid exists.
func syscallAlive(pid int) error { return syscall.Kill(pid, 0) }
