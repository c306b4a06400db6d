package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests build bin/runnel and use it as a person would: `runnel dev`
// in a temporary directory on free ports, then the Kafka commands against
// it, checking what they print and how they exit.

// runnelBin is the binary built by TestMain.
var runnelBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runnel-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnelBin = filepath.Join(dir, "runnel")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "the tests build runnel with the go command, which is not on PATH:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	args := []string{"build", "-o", runnelBin}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command(goTool, append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building runnel:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary left behind.
type result struct {
	out, err string
	code     int
}

// runnel runs the binary with stdin and args, bounded in time, with the
// RUNNEL_* variables of the test's environment only.
func runnel(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runnelBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("runnel %v: %v", args, err)
	}
	return result{out: out.String(), err: errb.String(), code: code}
}

func (r result) ok(t *testing.T, what string) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d, stderr %q, stdout %q", what, r.code, r.err, r.out)
	}
	return r
}

// fails checks exit code code and exactly one line on stderr containing
// want.
func (r result) fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d (stderr %q)", r.code, code, r.err)
	}
	if strings.Count(r.err, "\n") != 1 || !strings.HasSuffix(r.err, "\n") {
		t.Errorf("stderr is not one line: %q", r.err)
	}
	if !strings.Contains(r.err, want) {
		t.Errorf("stderr %q does not contain %q", r.err, want)
	}
}

// freeAddrs returns n loopback addresses that were free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// devProcess is a running `runnel dev`.
type devProcess struct {
	cmd                *exec.Cmd
	kafka, zk, metrics string
	nats, lagmon       string
	announcement       string
	stderr             *lockedBuffer
	exited             chan struct{}
	exitCode           int
	dataDir            string
	bootstrapF         string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDev starts `runnel dev` on the given addresses (free ones when nil)
// with its data in dataDir, and waits for its announcement.
func startDev(t *testing.T, dataDir string, addrs []string) *devProcess {
	t.Helper()
	if addrs == nil {
		addrs = freeAddrs(t, 3)
	}
	own := freeAddrs(t, 2)
	d := &devProcess{kafka: addrs[0], zk: addrs[1], metrics: addrs[2], lagmon: own[0], nats: own[1], dataDir: dataDir, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	d.bootstrapF = "--bootstrap-server=" + d.kafka
	// lagmon and NATS get ports of their own too, so runs never meet on
	// 8000 or 4222.
	d.cmd = exec.Command(runnelBin, "dev", "--data-dir", dataDir,
		"--kafka-listen", d.kafka, "--zookeeper-listen", d.zk, "--metrics-listen", d.metrics,
		"--lagmon-listen", d.lagmon, "--nats-listen", d.nats)
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	go func() {
		_ = d.cmd.Wait()
		d.exitCode = d.cmd.ProcessState.ExitCode()
		close(d.exited)
	}()
	t.Cleanup(func() { d.stop(t) })
	var seen []string
	deadline := time.After(90 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				<-d.exited
				t.Fatalf("runnel dev exited %d before it was up; stdout %q, stderr:\n%s", d.exitCode, seen, d.stderr.String())
			}
			seen = append(seen, l)
			if strings.HasPrefix(l, "Try ") {
				d.announcement = strings.Join(seen, "\n") + "\n"
				go func() {
					for range lines {
					}
				}()
				return d
			}
		case <-deadline:
			t.Fatalf("runnel dev did not come up; stdout %q, stderr:\n%s", seen, d.stderr.String())
		}
	}
}

// stop sends SIGINT (Ctrl-C) and waits for a clean exit.
func (d *devProcess) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-d.exited:
		return d.exitCode
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(45 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("runnel dev did not stop on SIGINT; stderr:\n%s", d.stderr.String())
	}
	return d.exitCode
}

func murmur2Partition(key string, partitions int) int {
	return kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: []byte(key)}, partitions)
}

func TestDev(t *testing.T) {
	dir := t.TempDir()
	d := startDev(t, filepath.Join(dir, "runnel-data"), nil)
	b := d.bootstrapF

	for _, want := range []string{
		"Kafka bootstrap server  " + d.kafka,
		"ZooKeeper connect       " + d.zk,
		"http://" + d.metrics + "/metrics",
		"NATS (offset events)    nats://" + d.nats,
	} {
		if !strings.Contains(d.announcement, want) {
			t.Errorf("announcement lacks %q:\n%s", want, d.announcement)
		}
	}
	if !strings.HasPrefix(d.announcement, "runnel dev is up") {
		t.Errorf("announcement:\n%s", d.announcement)
	}

	t.Run("endpoints", func(t *testing.T) {
		resp, err := http.Get("http://" + d.metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte("go_goroutines")) {
			t.Errorf("/metrics: %d, %d bytes", resp.StatusCode, len(body))
		}
		conn, err := net.DialTimeout("tcp", d.zk, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = conn.Write([]byte("ruok"))
		reply, _ := io.ReadAll(conn)
		if string(reply) != "imok" {
			t.Errorf("ruok answered %q", reply)
		}
		// The embedded NATS server greets a client with its INFO line.
		nc, err := net.DialTimeout("tcp", d.nats, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		info, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil || !strings.HasPrefix(info, "INFO {") || !strings.Contains(info, `"server_name":"runnel-dev"`) {
			t.Errorf("NATS greeting %q (%v)", info, err)
		}
	})

	t.Run("health", func(t *testing.T) {
		if r := runnel(t, "", "health", "kafka", d.kafka, "--broker-id", "1").ok(t, "health kafka"); !strings.Contains(r.out, "1 broker(s), controller 1") {
			t.Errorf("health kafka said %q", r.out)
		}
		runnel(t, "", "health", "kafka", d.kafka, "--broker-id", "9").fails(t, 1, "broker 9 is not registered")
		runnel(t, "", "health", "zookeeper", d.zk).ok(t, "health zookeeper")
		runnel(t, "", "health", "http", "http://"+d.lagmon+"/burrow/admin").ok(t, "health http")
		runnel(t, "", "health", "http", "http://"+d.lagmon+"/no/such/page").fails(t, 1, "404")
		closed := freeAddrs(t, 1)[0]
		runnel(t, "", "health", "kafka", closed, "--timeout", "2s").fails(t, 1, "does not answer Metadata")
		runnel(t, "", "health", "zookeeper", closed).fails(t, 1, "cannot reach "+closed)
		runnel(t, "", "health", "kafka").fails(t, 2, "accepts 1 arg")
	})

	t.Run("cluster", func(t *testing.T) {
		r := runnel(t, "", "cluster", "describe", b).ok(t, "cluster describe")
		host, port, _ := net.SplitHostPort(d.kafka)
		if !regexp.MustCompile(`(?m)^Cluster ID: \S+\nController: 1\nBrokers: 1\n\nID\s+HOST:PORT\s+RACK\n1\s+` + regexp.QuoteMeta(host+":"+port) + `\s+-\n$`).MatchString(r.out) {
			t.Errorf("cluster describe:\n%s", r.out)
		}
	})

	t.Run("topics", func(t *testing.T) {
		if r := runnel(t, "", "topics", "create", b, "--topic", "orders", "--partitions", "3", "--config", "retention.ms=3600000").ok(t, "create"); r.out != "Created topic orders.\n" {
			t.Errorf("create said %q", r.out)
		}
		runnel(t, "", "topics", "create", b, "--topic", "orders").fails(t, 1, `topic "orders" already exists`)
		runnel(t, "", "topics", "create", b, "--topic", "orders", "--if-not-exists").ok(t, "create --if-not-exists")
		runnel(t, "", "topics", "create", b, "--topic", "scratch", "--partitions", "1").ok(t, "create scratch")
		if r := runnel(t, "", "topics", "list", b).ok(t, "list"); r.out != "orders\nscratch\n" {
			t.Errorf("list = %q", r.out)
		}
		r := runnel(t, "", "topics", "describe", b, "--topic", "orders").ok(t, "describe")
		want := "Topic: orders\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=3600000\n" +
			"\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n" +
			"\tTopic: orders\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1\n" +
			"\tTopic: orders\tPartition: 2\tLeader: 1\tReplicas: 1\tIsr: 1\n"
		if r.out != want {
			t.Errorf("describe =\n%s\nwant\n%s", r.out, want)
		}
		runnel(t, "", "topics", "alter", b, "--topic", "orders", "--partitions", "4", "--config", "retention.bytes=1073741824", "--delete-config", "retention.ms").ok(t, "alter")
		r = runnel(t, "", "topics", "describe", b, "--topic", "orders").ok(t, "describe after alter")
		if !strings.HasPrefix(r.out, "Topic: orders\tPartitionCount: 4\tReplicationFactor: 1\tConfigs: retention.bytes=1073741824\n") ||
			!strings.Contains(r.out, "\tTopic: orders\tPartition: 3\tLeader: 1\tReplicas: 1\tIsr: 1\n") {
			t.Errorf("describe after alter:\n%s", r.out)
		}
		runnel(t, "", "topics", "alter", b, "--topic", "orders", "--partitions", "2").fails(t, 1, "cannot remove partitions")
		runnel(t, "", "topics", "delete", b, "--topic", "scratch").ok(t, "delete")
		runnel(t, "", "topics", "delete", b, "--topic", "scratch").fails(t, 1, `topic "scratch" does not exist`)
		if r := runnel(t, "", "topics", "list", b).ok(t, "list"); r.out != "orders\n" {
			t.Errorf("list after delete = %q", r.out)
		}
	})

	t.Run("produce and consume", func(t *testing.T) {
		runnel(t, "", "topics", "create", b, "--topic", "events", "--partitions", "3").ok(t, "create")
		var in strings.Builder
		for i := range 30 {
			fmt.Fprintf(&in, "key-%d:value-%d\n", i%5, i)
		}
		if r := runnel(t, in.String(), "produce", b, "--topic", "events", "--key-separator", ":").ok(t, "produce"); r.out != "" || r.err != "" {
			t.Errorf("produce from stdin printed %q / %q", r.out, r.err)
		}
		r := runnel(t, "", "consume", b, "--topic", "events", "--from-beginning", "--max-messages", "30", "--format", `%p\t%o\t%k\t%s\n`).ok(t, "consume")
		lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
		if len(lines) != 30 {
			t.Fatalf("consumed %d records:\n%s", len(lines), r.out)
		}
		next := map[string]int{}
		perKey := map[string][]int{}
		for _, l := range lines {
			f := strings.Split(l, "\t")
			if len(f) != 4 {
				t.Fatalf("line %q does not follow the format", l)
			}
			if want := strconv.Itoa(murmur2Partition(f[2], 3)); f[0] != want {
				t.Errorf("key %s in partition %s, murmur2 says %s", f[2], f[0], want)
			}
			if off, _ := strconv.Atoi(f[1]); off != next[f[0]] {
				t.Errorf("partition %s: offset %d, want %d", f[0], off, next[f[0]])
			}
			next[f[0]]++
			n, _ := strconv.Atoi(strings.TrimPrefix(f[3], "value-"))
			perKey[f[2]] = append(perKey[f[2]], n)
		}
		for k, ns := range perKey {
			for i := 1; i < len(ns); i++ {
				if ns[i] <= ns[i-1] {
					t.Errorf("key %s read out of order: %v", k, ns)
				}
			}
		}

		file := filepath.Join(t.TempDir(), "events.txt")
		var content strings.Builder
		for i := range 5000 {
			fmt.Fprintf(&content, "bulk-%05d\n", i)
		}
		if err := os.WriteFile(file, []byte(content.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		r = runnel(t, "", "produce", b, "--topic", "events", "--file", file, "--acks", "1", "--compression", "gzip", "--partition", "2").ok(t, "produce --file")
		if !regexp.MustCompile(`^Produced 5000 records \(53\.7 KiB\) from \S+events\.txt to events in \S+ \(\S+ records/s\)\.\n$`).MatchString(r.err) {
			t.Errorf("file summary = %q", r.err)
		}
		r = runnel(t, "", "consume", b, "--topic", "events", "--partition", "2", "--offset", "-2", "--max-messages", "2").ok(t, "consume --offset -2")
		if r.out != "bulk-04998\nbulk-04999\n" {
			t.Errorf("last two records of partition 2: %q", r.out)
		}
		r = runnel(t, "", "consume", b, "--topic", "events", "--from-beginning", "--timeout", "3s", "--format", `%s\n`).ok(t, "consume all")
		if n := strings.Count(r.out, "\n"); n != 5030 {
			t.Errorf("read %d records back, want 5030", n)
		}

		runnel(t, "k\tv\nno tab\n", "produce", b, "--topic", "events", "--key-separator", `\t`).fails(t, 1, "1 of 2 records failed: line 2: no key separator")
	})

	t.Run("port taken", func(t *testing.T) {
		free := freeAddrs(t, 4)
		r := runnel(t, "", "dev", "--data-dir", filepath.Join(dir, "second"), "--kafka-listen", d.kafka, "--zookeeper-listen", free[0], "--metrics-listen", free[1], "--nats-listen", free[2])
		r.fails(t, 1, "--kafka-listen "+d.kafka+": address already in use")
		if !strings.Contains(r.err, "pick another address with --kafka-listen") {
			t.Errorf("the reason does not name the flag: %q", r.err)
		}
		r = runnel(t, "", "dev", "--data-dir", filepath.Join(dir, "second"), "--kafka-listen", free[0], "--zookeeper-listen", d.zk, "--metrics-listen", free[1], "--nats-listen", free[2])
		r.fails(t, 1, "pick another address with --zookeeper-listen")
		r = runnel(t, "", "dev", "--data-dir", filepath.Join(dir, "second"), "--kafka-listen", free[0], "--zookeeper-listen", free[1], "--metrics-listen", free[2], "--nats-listen", d.nats)
		r.fails(t, 1, "--nats-listen "+d.nats+": address already in use")
	})

	if code := d.stop(t); code != 0 {
		t.Errorf("runnel dev exited %d after SIGINT; stderr:\n%s", code, d.stderr.String())
	}
	if !strings.Contains(d.stderr.String(), "Stopping runnel dev") {
		t.Errorf("no stop notice on stderr")
	}
}

func TestDevKeepsDataAcrossRestarts(t *testing.T) {
	data := filepath.Join(t.TempDir(), "runnel-data")
	d := startDev(t, data, nil)
	runnel(t, "", "topics", "create", d.bootstrapF, "--topic", "kept", "--partitions", "2").ok(t, "create")
	runnel(t, "a\nb\nc\n", "produce", d.bootstrapF, "--topic", "kept", "--partition", "1").ok(t, "produce")
	if code := d.stop(t); code != 0 {
		t.Fatalf("first run exited %d", code)
	}
	for _, sub := range []string{"coordinator", "broker"} {
		if _, err := os.Stat(filepath.Join(data, sub)); err != nil {
			t.Errorf("no %s data: %v", sub, err)
		}
	}

	d = startDev(t, data, nil)
	r := runnel(t, "", "consume", d.bootstrapF, "--topic", "kept", "--partition", "1", "--from-beginning", "--max-messages", "3", "--format", `%o=%s\n`).ok(t, "consume after restart")
	if r.out != "0=a\n1=b\n2=c\n" {
		t.Errorf("after restart read %q", r.out)
	}
	if r := runnel(t, "", "topics", "describe", d.bootstrapF, "--topic", "kept").ok(t, "describe"); !strings.HasPrefix(r.out, "Topic: kept\tPartitionCount: 2\t") {
		t.Errorf("describe after restart:\n%s", r.out)
	}
}

func TestCommandLine(t *testing.T) {
	closed := freeAddrs(t, 1)[0]
	runnel(t, "", "topics", "list", "--bootstrap-server", closed).fails(t, 1, "cannot reach "+closed+" (connection refused): is a broker running? start one with `runnel dev`")
	runnel(t, "x\n", "produce", "--topic", "t", "--bootstrap-server", closed).fails(t, 1, "cannot reach "+closed)
	runnel(t, "", "consume", "--topic", "t", "--bootstrap-server", closed).fails(t, 1, "cannot reach "+closed)
	runnel(t, "", "topics", "create").fails(t, 2, `required flag(s) "topic" not set`)
	runnel(t, "", "consume", "--topic", "t", "--max-messages", "many").fails(t, 2, "--max-messages")
	runnel(t, "", "bogus").fails(t, 2, `unknown command "bogus"`)

	t.Setenv("RUNNEL_BOOTSTRAP_SERVER", closed)
	runnel(t, "", "cluster", "describe").fails(t, 1, "cannot reach "+closed)
	if r := runnel(t, "", "--help"); r.code != 0 || !strings.Contains(r.out, "runnel dev") {
		t.Errorf("--help: exit %d:\n%s", r.code, r.out)
	}
}
