package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests run the commands in-process against franz-go's kfake, an
// in-memory Kafka that implements the group APIs Runnel's broker does not
// have yet. cmd/runnel's tests run the built binary against `runnel dev`.

// result is what one command run left behind.
type result struct {
	out, err string
	code     int
}

// cli runs runnel with args and stdin, bounded in time.
func cli(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return cliCtx(ctx, stdin, args...)
}

func cliCtx(ctx context.Context, stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := Execute(ctx, args, Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return result{out: out.String(), err: errb.String(), code: code}
}

// ok fails the test unless r exited 0.
func (r result) ok(t *testing.T, what string) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d, stderr %q, stdout %q", what, r.code, r.err, r.out)
	}
	return r
}

// fails checks a failure: exit code code and exactly one line on stderr
// containing want.
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

func fakeCluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return "--bootstrap-server=" + strings.Join(c.ListenAddrs(), ",")
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestExitCodes(t *testing.T) {
	addr := closedAddr(t)
	cli(t, "", "topics", "list", "--bootstrap-server", addr).fails(t, ExitFailure, "cannot reach "+addr+" (connection refused): is a broker running? start one with `runnel dev`")
	cli(t, "", "topics", "create", "--bootstrap-server", addr).fails(t, ExitUsage, `required flag(s) "topic" not set`)
	cli(t, "", "topics", "list", "--no-such-flag").fails(t, ExitUsage, "unknown flag: --no-such-flag")
	cli(t, "", "no-such-command").fails(t, ExitUsage, `unknown command "no-such-command"`)
	cli(t, "", "topics", "no-such-command").fails(t, ExitUsage, `unknown command "no-such-command"`)
	cli(t, "", "produce", "--topic", "t", "--acks", "2").fails(t, ExitUsage, `--acks "2"`)
	cli(t, "", "produce", "--topic", "t", "--compression", "brotli").fails(t, ExitUsage, "--compression")
	cli(t, "", "consume", "--topic", "t", "--format", "%q").fails(t, ExitUsage, "unknown token %q")
	cli(t, "", "consume", "--topic", "t", "--from-beginning", "--offset", "3").fails(t, ExitUsage, "none of the others can be")
	cli(t, "", "groups", "describe").fails(t, ExitUsage, "want GROUP")
	cli(t, "", "groups", "reset-offsets", "g", "--topic", "t").fails(t, ExitUsage, "to-earliest")
	cli(t, "", "dev", "--log-level", "loud").fails(t, ExitUsage, "--log-level")

	if r := cli(t, "", "--help"); r.code != 0 || !strings.Contains(r.out, "topics") || !strings.Contains(r.out, "RUNNEL_BOOTSTRAP_SERVER") {
		t.Errorf("--help: exit %d, out %q", r.code, r.out)
	}
	for _, cmd := range [][]string{{"topics", "create"}, {"produce"}, {"consume"}, {"groups", "reset-offsets"}, {"cluster", "describe"}, {"dev"}} {
		r := cli(t, "", append(cmd, "--help")...)
		if r.code != 0 || !strings.Contains(r.out, "Examples:") {
			t.Errorf("%v --help: exit %d, no examples in %q", cmd, r.code, r.out)
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	addr := closedAddr(t)
	t.Setenv("RUNNEL_BOOTSTRAP_SERVER", addr)
	t.Setenv("RUNNEL_TOPIC", "from-env")
	// --topic is satisfied by RUNNEL_TOPIC, and the broker address comes
	// from RUNNEL_BOOTSTRAP_SERVER.
	cli(t, "", "topics", "create").fails(t, ExitFailure, "cannot reach "+addr)
	// The command line wins over the environment.
	other := closedAddr(t)
	cli(t, "", "topics", "create", "--bootstrap-server", other).fails(t, ExitFailure, "cannot reach "+other)
	t.Setenv("RUNNEL_PARTITIONS", "many")
	cli(t, "", "topics", "create").fails(t, ExitUsage, "RUNNEL_PARTITIONS")
}

func TestTopicsAgainstKfake(t *testing.T) {
	b := fakeCluster(t)
	r := cli(t, "", "topics", "create", b, "--topic", "orders", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000").ok(t, "create")
	if r.out != "Created topic orders.\n" {
		t.Errorf("create said %q", r.out)
	}
	cli(t, "", "topics", "create", b, "--topic", "orders").fails(t, ExitFailure, `topic "orders" already exists: add --if-not-exists`)
	cli(t, "", "topics", "create", b, "--topic", "orders", "--if-not-exists").ok(t, "create --if-not-exists")
	cli(t, "", "topics", "create", b, "--topic", "audit", "--partitions", "1").ok(t, "create audit")

	if r := cli(t, "", "topics", "list", b).ok(t, "list"); r.out != "audit\norders\n" {
		t.Errorf("list = %q", r.out)
	}
	r = cli(t, "", "topics", "describe", b, "--topic", "orders").ok(t, "describe")
	want := "Topic: orders\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=3600000\n" +
		"\tTopic: orders\tPartition: 0\tLeader: 0\tReplicas: 0\tIsr: 0\n" +
		"\tTopic: orders\tPartition: 1\tLeader: 0\tReplicas: 0\tIsr: 0\n" +
		"\tTopic: orders\tPartition: 2\tLeader: 0\tReplicas: 0\tIsr: 0\n"
	if r.out != want {
		t.Errorf("describe =\n%s\nwant\n%s", r.out, want)
	}

	cli(t, "", "topics", "alter", b, "--topic", "orders", "--partitions", "5", "--config", "retention.bytes=1048576", "--delete-config", "retention.ms").ok(t, "alter")
	r = cli(t, "", "topics", "describe", b, "--topic", "orders").ok(t, "describe after alter")
	if !strings.HasPrefix(r.out, "Topic: orders\tPartitionCount: 5\tReplicationFactor: 1\tConfigs: retention.bytes=1048576\n") || strings.Count(r.out, "\n") != 6 {
		t.Errorf("describe after alter:\n%s", r.out)
	}
	cli(t, "", "topics", "alter", b, "--topic", "orders", "--partitions", "2").fails(t, ExitFailure, "cannot remove partitions")
	cli(t, "", "topics", "alter", b, "--topic", "orders").fails(t, ExitUsage, "nothing to change")
	cli(t, "", "topics", "alter", b, "--topic", "ghost", "--partitions", "2").fails(t, ExitFailure, `topic "ghost" does not exist`)
	cli(t, "", "topics", "alter", b, "--topic", "ghost", "--partitions", "2", "--if-exists").ok(t, "alter --if-exists")

	cli(t, "", "topics", "delete", b, "--topic", "orders").ok(t, "delete")
	cli(t, "", "topics", "delete", b, "--topic", "orders").fails(t, ExitFailure, `topic "orders" does not exist`)
	cli(t, "", "topics", "delete", b, "--topic", "orders", "--if-exists").ok(t, "delete --if-exists")
	cli(t, "", "topics", "describe", b, "--topic", "orders").fails(t, ExitFailure, `topic "orders" does not exist`)
	if r := cli(t, "", "topics", "list", b).ok(t, "list"); r.out != "audit\n" {
		t.Errorf("list after delete = %q", r.out)
	}
}

// expectedPartition is where the Java client (and franz-go's default
// partitioner) puts a keyed record: murmur2 of the key.
func expectedPartition(key string, partitions int) int32 {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	return int32(p.Partition(&kgo.Record{Key: []byte(key)}, partitions))
}

func TestProduceConsumeAgainstKfake(t *testing.T) {
	b := fakeCluster(t)
	cli(t, "", "topics", "create", b, "--topic", "events", "--partitions", "4").ok(t, "create")

	var in strings.Builder
	for i := range 40 {
		fmt.Fprintf(&in, "user-%d\tvalue-%d\n", i%7, i)
	}
	r := cli(t, in.String(), "produce", b, "--topic", "events", "--key-separator", `\t`, "--acks", "1").ok(t, "produce")
	if r.out != "" || r.err != "" {
		t.Errorf("produce from stdin printed %q / %q", r.out, r.err)
	}

	r = cli(t, "", "consume", b, "--topic", "events", "--from-beginning", "--max-messages", "40", "--format", `%p|%o|%k|%s\n`).ok(t, "consume")
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if len(lines) != 40 {
		t.Fatalf("consumed %d lines, want 40:\n%s", len(lines), r.out)
	}
	lastOffset := map[string]int{}
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 4 {
			t.Fatalf("line %q does not match the format", l)
		}
		if want := strconv.Itoa(int(expectedPartition(f[2], 4))); f[0] != want {
			t.Errorf("key %s in partition %s, murmur2 says %s", f[2], f[0], want)
		}
		off, _ := strconv.Atoi(f[1])
		if last, ok := lastOffset[f[0]]; ok && off != last+1 {
			t.Errorf("partition %s: offset %d after %d", f[0], off, last)
		}
		lastOffset[f[0]] = off
		seen[f[3]] = true
	}
	if len(seen) != 40 {
		t.Errorf("saw %d distinct values, want 40", len(seen))
	}

	// From a file, into one partition, compressed; then read that
	// partition from an offset and the last record of it.
	file := filepath.Join(t.TempDir(), "lines.txt")
	var content strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&content, "line %d\n", i)
	}
	if err := os.WriteFile(file, []byte(content.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r = cli(t, "", "produce", b, "--topic", "events", "--file", file, "--partition", "3", "--compression", "zstd").ok(t, "produce --file")
	if !regexp.MustCompile(`^Produced 1000 records \(8\.7 KiB\) from .*lines\.txt to events in \S+ \(\S+ records/s\)\.\n$`).MatchString(r.err) {
		t.Errorf("file summary = %q", r.err)
	}
	base := lastOffset["3"] + 1
	r = cli(t, "", "consume", b, "--topic", "events", "--partition", "3", "--offset", strconv.Itoa(base+998), "--max-messages", "2", "--format", `%o:%s\n`).ok(t, "consume --offset")
	if want := fmt.Sprintf("%d:line 998\n%d:line 999\n", base+998, base+999); r.out != want {
		t.Errorf("consume --offset = %q, want %q", r.out, want)
	}
	r = cli(t, "", "consume", b, "--topic", "events", "--partition", "3", "--offset", "-1", "--max-messages", "1").ok(t, "consume --offset -1")
	if r.out != "line 999\n" {
		t.Errorf("consume --offset -1 = %q", r.out)
	}
	// --timeout ends a read that finds nothing more.
	r = cli(t, "", "consume", b, "--topic", "events", "--partition", "0", "--timeout", "300ms").ok(t, "consume --timeout")
	if r.out != "" {
		t.Errorf("consume from the end printed %q", r.out)
	}

	cli(t, "", "consume", b, "--topic", "events", "--partition", "9").fails(t, ExitFailure, "there is no partition 9")
	cli(t, "", "consume", b, "--topic", "ghost", "--max-messages", "1").fails(t, ExitFailure, `topic "ghost" does not exist`)
	cli(t, "a\tb\nno separator here\nc\td\n", "produce", b, "--topic", "events", "--key-separator", `\t`).fails(t, ExitFailure, `1 of 3 records failed: line 2: no key separator "\t"`)
}

func TestConsumeStopsOnCancel(t *testing.T) {
	b := fakeCluster(t)
	cli(t, "", "topics", "create", b, "--topic", "t", "--partitions", "1").ok(t, "create")
	cli(t, "one\ntwo\n", "produce", b, "--topic", "t").ok(t, "produce")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Execute(ctx, []string{"consume", b, "--topic", "t", "--from-beginning"}, Streams{In: strings.NewReader(""), Out: out, Err: &syncBuffer{}})
	}()
	deadline := time.After(30 * time.Second)
	for out.String() != "one\ntwo\n" {
		select {
		case <-deadline:
			t.Fatalf("consumed %q", out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel() // what Ctrl-C does
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after cancel", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consume did not stop on cancel")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGroupsAgainstKfake(t *testing.T) {
	b := fakeCluster(t)
	cli(t, "", "topics", "create", b, "--topic", "jobs", "--partitions", "2").ok(t, "create")
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "%d\n", i)
	}
	cli(t, in.String(), "produce", b, "--topic", "jobs", "--partition", "0").ok(t, "produce p0")
	cli(t, "a\nb\n", "produce", b, "--topic", "jobs", "--partition", "1").ok(t, "produce p1")

	// A group consumer commits what it printed, and only that.
	r := cli(t, "", "consume", b, "--topic", "jobs", "--group", "workers", "--from-beginning", "--max-messages", "12").ok(t, "consume --group")
	if n := strings.Count(r.out, "\n"); n != 12 {
		t.Fatalf("group consumer printed %d records", n)
	}
	if r := cli(t, "", "groups", "list", b).ok(t, "groups list"); r.out != "workers\n" {
		t.Errorf("groups list = %q", r.out)
	}
	if r := cli(t, "", "groups", "list", b, "--state").ok(t, "groups list --state"); !regexp.MustCompile(`GROUP\s+STATE\nworkers\s+Empty\n`).MatchString(r.out) {
		t.Errorf("groups list --state = %q", r.out)
	}

	r = cli(t, "", "groups", "describe", b, "workers").ok(t, "describe")
	rows := describeRows(t, r.out)
	if got, want := fmt.Sprint(rows), "[[workers jobs 0 10 10 0 - - -] [workers jobs 1 2 2 0 - - -]]"; got != want {
		t.Errorf("describe rows = %s, want %s\n%s", got, want, r.out)
	}
	if !strings.Contains(r.out, "STATE Empty") || !strings.Contains(r.out, "Consumer group 'workers' has no active members.") {
		t.Errorf("describe header:\n%s", r.out)
	}

	// Dry run: a plan, nothing committed.
	r = cli(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs", "--to-earliest").ok(t, "reset dry run")
	if !regexp.MustCompile(`(?s)GROUP\s+TOPIC\s+PARTITION\s+NEW-OFFSET\nworkers\s+jobs\s+0\s+0\s*\nworkers\s+jobs\s+1\s+0\s*\n$`).MatchString(r.out) || !strings.Contains(r.err, "Dry run") {
		t.Errorf("dry run printed %q / %q", r.out, r.err)
	}
	rows = describeRows(t, cli(t, "", "groups", "describe", b, "workers").ok(t, "describe").out)
	if rows[0][3] != "10" {
		t.Errorf("dry run committed: %v", rows)
	}

	cli(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs:0", "--shift-by", "-4", "--execute").ok(t, "shift-by")
	cli(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs:1", "--to-offset", "99", "--execute").ok(t, "to-offset")
	rows = describeRows(t, cli(t, "", "groups", "describe", b, "workers").ok(t, "describe").out)
	if got, want := fmt.Sprint(rows), "[[workers jobs 0 6 10 4 - - -] [workers jobs 1 2 2 0 - - -]]"; got != want {
		t.Errorf("after shift-by -4 and to-offset 99 (clamped to the end): %s, want %s", got, want)
	}
	cli(t, "", "groups", "reset-offsets", b, "workers", "--all-topics", "--to-datetime", "2000-01-01T00:00:00Z", "--execute").ok(t, "to-datetime")
	rows = describeRows(t, cli(t, "", "groups", "describe", b, "workers").ok(t, "describe").out)
	if rows[0][3] != "0" || rows[1][3] != "0" {
		t.Errorf("after --to-datetime 2000: %v", rows)
	}
	cli(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs", "--to-latest", "--execute").ok(t, "to-latest")

	// The group resumes from its committed offsets: nothing left to read.
	r = cli(t, "", "consume", b, "--topic", "jobs", "--group", "workers", "--timeout", "2s").ok(t, "consume again")
	if r.out != "" {
		t.Errorf("group re-read %q after --to-latest", r.out)
	}

	cli(t, "", "groups", "describe", b, "nobody").fails(t, ExitFailure, `group "nobody" does not exist`)
	cli(t, "", "groups", "reset-offsets", b, "workers", "--topic", "ghost", "--to-earliest").fails(t, ExitFailure, `topic "ghost" does not exist`)
	cli(t, "", "groups", "delete", b, "workers").ok(t, "delete")
	if r := cli(t, "", "groups", "list", b).ok(t, "groups list"); r.out != "" {
		t.Errorf("groups list after delete = %q", r.out)
	}
}

// describeRows returns the offset rows of `groups describe`, split on
// whitespace, sorted.
func describeRows(t *testing.T, out string) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(l, "CURRENT-OFFSET"):
			in = true
		case in && strings.TrimSpace(l) == "":
			in = false
		case in:
			rows = append(rows, strings.Fields(l))
		}
	}
	sort.Slice(rows, func(i, j int) bool { return strings.Join(rows[i], " ") < strings.Join(rows[j], " ") })
	return rows
}
