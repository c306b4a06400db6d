// Package clitest drives the real zkCli.sh from Debian's zookeeper 3.8
// package against Runnel's coordinator and checks what it prints: a
// ZooKeeper-compatible server must satisfy ZooKeeper's own command-line
// client, including its error messages, stat listings, ACL listings and
// watch notifications.
//
// zkCli.sh is a JVM and slow to start, so each test feeds one invocation a
// batch of commands on stdin. After every command the batch runs
// "get /clitest-marker", a node that never exists; its "Node does not
// exist" line separates the output of one command from the next.
//
// CLITEST_SERVER=zookeeper runs the same tests against Apache ZooKeeper,
// which is how the expectations were checked.
package clitest

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/internal/launch"
	"github.com/runnel-io/runnel/services/coordinator/internal/zktest"
)

// ServerEnv selects the server under test: "runnel" (the default) or
// "zookeeper".
const ServerEnv = "CLITEST_SERVER"

const (
	marker     = "/clitest-marker"
	markerLine = "Node does not exist: " + marker
	// cliTimeout bounds one zkCli.sh invocation.
	cliTimeout = 60 * time.Second
)

func server(t *testing.T) *launch.Cluster {
	t.Helper()
	zktest.RequireZooKeeper(t) // zkCli.sh comes with it
	switch v := os.Getenv(ServerEnv); v {
	case "", "runnel":
		return zktest.Coordinator(t)
	case "zookeeper":
		return zktest.ZooKeeper(t)
	default:
		t.Fatalf("%s=%q: want runnel or zookeeper", ServerEnv, v)
	}
	return nil
}

// cliRun is the output of one zkCli.sh invocation.
type cliRun struct {
	cmds []string
	// outputs[i] is what command i printed, trimmed, noise removed.
	outputs []string
	// events are the "WatchedEvent" lines other than the connection's
	// own, in the order zkCli.sh printed them.
	events []string
	raw    string
}

// noise is what zkCli.sh prints around the commands' own output.
func noise(line string) bool {
	for _, p := range []string{"SLF4J:", "Connecting to ", "Welcome to ZooKeeper!", "JLine support is", "WATCHER::"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return strings.TrimSpace(line) == ""
}

// runCLI runs zkCli.sh once against addr with cmds on stdin.
func runCLI(t *testing.T, addr string, cmds ...string) *cliRun {
	t.Helper()
	inst := zktest.RequireZooKeeper(t)
	var in strings.Builder
	for _, c := range cmds {
		in.WriteString(c + "\nget " + marker + "\n")
	}
	in.WriteString("quit\n")
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, inst.CLIScript, "-waitforconnection", "-timeout", "10000", "-server", addr)
	cmd.Stdin = strings.NewReader(in.String())
	// The JIT's top tier only slows a short-lived client down.
	cmd.Env = append(os.Environ(), "CLIENT_JVMFLAGS=-XX:TieredStopAtLevel=1")
	// One pipe for both streams keeps zkCli's stdout (data) and stderr
	// (messages such as "Created /x") in the order they were written.
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("zkCli.sh did not finish within %v:\n%s", cliTimeout, out)
	}
	// zkCli.sh exits 1 when any command failed, which many here must.
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("zkCli.sh: %v\n%s", err, out)
	}
	run := &cliRun{cmds: cmds, raw: string(out)}
	var cur []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == markerLine:
			run.outputs = append(run.outputs, strings.Join(cur, "\n"))
			cur = nil
		case strings.HasPrefix(line, "WatchedEvent "):
			if !strings.Contains(line, "type:None") {
				run.events = append(run.events, strings.TrimPrefix(line, "WatchedEvent "))
			}
		case noise(line):
		default:
			cur = append(cur, strings.TrimRight(line, " "))
		}
	}
	if len(run.outputs) != len(cmds) {
		t.Fatalf("zkCli.sh printed %d markers for %d commands:\n%s", len(run.outputs), len(cmds), out)
	}
	return run
}

// want checks that command i printed exactly text.
func (r *cliRun) want(t *testing.T, i int, text string) {
	t.Helper()
	if r.outputs[i] != text {
		t.Errorf("%q printed\n%s\nwant\n%s", r.cmds[i], r.outputs[i], text)
	}
}

// wantPrefix checks that command i's output starts with the given lines.
func (r *cliRun) wantPrefix(t *testing.T, i int, text string) {
	t.Helper()
	if !strings.HasPrefix(r.outputs[i], text) {
		t.Errorf("%q printed\n%s\nwant it to start with\n%s", r.cmds[i], r.outputs[i], text)
	}
}

// wantContains checks that command i's output contains text.
func (r *cliRun) wantContains(t *testing.T, i int, text string) {
	t.Helper()
	if !strings.Contains(r.outputs[i], text) {
		t.Errorf("%q printed\n%s\nwant it to contain %q", r.cmds[i], r.outputs[i], text)
	}
}

// stat parses the "key = value" lines zkCli.sh prints for a stat.
func (r *cliRun) stat(t *testing.T, i int) map[string]string {
	t.Helper()
	st := map[string]string{}
	for _, line := range strings.Split(r.outputs[i], "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok {
			st[k] = v
		}
	}
	for _, k := range []string{"cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion",
		"aclVersion", "ephemeralOwner", "dataLength", "numChildren"} {
		if _, ok := st[k]; !ok {
			t.Errorf("%q printed no %s:\n%s", r.cmds[i], k, r.outputs[i])
		}
	}
	return st
}

func wantStat(t *testing.T, cmd string, st map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%q: %s = %q, want %q", cmd, k, st[k], v)
		}
	}
}

func TestZkCli(t *testing.T) {
	srv := server(t)
	addr := srv.Addr()

	t.Run("CRUD", func(t *testing.T) {
		r := runCLI(t, addr,
			"create /cli hello",      // 0
			"get /cli",               // 1
			"set /cli world",         // 2
			"get -s /cli",            // 3
			"stat /cli",              // 4
			"create /cli/a 1",        // 5
			"create /cli/b",          // 6
			"ls /cli",                // 7
			"ls -s /cli",             // 8
			"create /cli hello",      // 9
			"get /cli/missing",       // 10
			"delete /cli",            // 11
			"delete /cli/a",          // 12
			"set -v 5 /cli x",        // 13
			"delete -v 7 /cli/b",     // 14
			"create /cli/no/child",   // 15
			"ls -R /cli",             // 16
			"get /cli/b",             // 17
			"deleteall /cli",         // 18
			"get /cli",               // 19
			"sync /",                 // 20
			"create /cli2 \"\"",      // 21
			"get /cli2",              // 22
			"set -s -v 0 /cli2 data", // 23
			"delete -v 1 /cli2",      // 24
		)
		r.want(t, 0, "Created /cli")
		r.want(t, 1, "hello")
		r.want(t, 2, "")
		r.wantPrefix(t, 3, "world\ncZxid = ")
		st := r.stat(t, 3)
		wantStat(t, "get -s", st, map[string]string{"dataVersion": "1", "dataLength": "5", "numChildren": "0",
			"cversion": "0", "aclVersion": "0", "ephemeralOwner": "0x0"})
		if st["cZxid"] == st["mZxid"] || st["pZxid"] != st["cZxid"] {
			t.Errorf("after one set: cZxid %s mZxid %s pZxid %s", st["cZxid"], st["mZxid"], st["pZxid"])
		}
		if !strings.HasPrefix(st["cZxid"], "0x") {
			t.Errorf("cZxid %q is not hex", st["cZxid"])
		}
		if _, err := time.Parse("Mon Jan 02 15:04:05 MST 2006", st["ctime"]); err != nil {
			t.Errorf("ctime %q: %v", st["ctime"], err)
		}
		st4 := r.stat(t, 4)
		if !maps.Equal(st4, st) {
			t.Errorf("stat and get -s disagree:\n%v\n%v", st4, st)
		}
		r.want(t, 5, "Created /cli/a")
		r.want(t, 6, "Created /cli/b")
		r.want(t, 7, "[a, b]")
		r.wantPrefix(t, 8, "[a, b]\ncZxid = ")
		wantStat(t, "ls -s", r.stat(t, 8), map[string]string{"numChildren": "2", "cversion": "2"})
		r.want(t, 9, "Node already exists: /cli")
		r.want(t, 10, "Node does not exist: /cli/missing")
		r.want(t, 11, "Node not empty: /cli")
		r.want(t, 12, "")
		r.want(t, 13, "version No is not valid : /cli")
		r.want(t, 14, "version No is not valid : /cli/b")
		r.want(t, 15, "Node does not exist: /cli/no/child")
		r.want(t, 16, "/cli\n/cli/b")
		r.want(t, 17, "null")
		r.want(t, 18, "")
		r.want(t, 19, "Node does not exist: /cli")
		r.want(t, 20, "Sync is OK")
		r.want(t, 21, "Created /cli2")
		r.want(t, 22, "")
		wantStat(t, "set -s", r.stat(t, 23), map[string]string{"dataVersion": "1", "dataLength": "4"})
		r.want(t, 24, "")
	})

	t.Run("NodeTypes", func(t *testing.T) {
		r := runCLI(t, addr,
			"create /types",                 // 0
			"create -e /types/e data",       // 1
			"stat /types/e",                 // 2
			"create -s /types/s- x",         // 3
			"create -s -e /types/es- x",     // 4
			"create -c /types/c",            // 5
			"stat /types/c",                 // 6
			"create -t 60000 /types/t",      // 7
			"stat /types/t",                 // 8
			"create /types/e/x",             // 9
			"getEphemerals /types",          // 10
			"getAllChildrenNumber /types",   // 11
			"ls /types",                     // 12
			"create -s /types/",             // 13
			"getAllChildrenNumber /nowhere", // 14
		)
		r.want(t, 0, "Created /types")
		r.want(t, 1, "Created /types/e")
		st := r.stat(t, 2)
		if st["ephemeralOwner"] == "0x0" || !strings.HasPrefix(st["ephemeralOwner"], "0x") {
			t.Errorf("ephemeral node's owner %q", st["ephemeralOwner"])
		}
		wantStat(t, "stat /types/e", st, map[string]string{"dataLength": "4"})
		r.want(t, 3, "Created /types/s-0000000001")
		r.want(t, 4, "Created /types/es-0000000002")
		r.want(t, 5, "Created /types/c")
		// ZooKeeper shows clients 0 for containers and TTL nodes.
		wantStat(t, "stat /types/c", r.stat(t, 6), map[string]string{"ephemeralOwner": "0x0"})
		r.want(t, 7, "Created /types/t")
		wantStat(t, "stat /types/t", r.stat(t, 8), map[string]string{"ephemeralOwner": "0x0"})
		r.want(t, 9, "Ephemerals cannot have children: /types/e/x")
		// The server's order is a hash set's; compare as a set.
		eph := strings.Split(strings.Trim(r.outputs[10], "[]"), ", ")
		slices.Sort(eph)
		if want := []string{"/types/e", "/types/es-0000000002"}; !slices.Equal(eph, want) {
			t.Errorf("getEphemerals printed %q, want the paths %q", r.outputs[10], want)
		}
		r.want(t, 11, "5")
		r.want(t, 12, "[c, e, es-0000000002, s-0000000001, t]")
		r.want(t, 13, "Created /types/0000000005")
		r.want(t, 14, "Node does not exist: /nowhere")

		// The session ended with quit: its ephemeral nodes are gone.
		conn := zktest.Connect(t, addr)
		kids, _, err := conn.Children("/types")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(kids)
		if want := []string{"0000000005", "c", "s-0000000001", "t"}; !slices.Equal(kids, want) {
			t.Errorf("after quit, /types has %v, want %v", kids, want)
		}
	})

	t.Run("ACL", func(t *testing.T) {
		bob := zk.DigestACL(zk.PermAll, "bob", "pw")[0].ID
		r := runCLI(t, addr,
			"create /acl x",                    // 0
			"setAcl /acl digest:"+bob+":cdrwa", // 1
			"getAcl /acl",                      // 2
			"get /acl",                         // 3
			"set /acl y",                       // 4
			"addauth digest bob:pw",            // 5
			"get /acl",                         // 6
			"setAcl /acl world:anyone:r,digest:"+bob+":cdrwa", // 7
			"getAcl -s /acl",                         // 8
			"setAcl -v 0 /acl world:anyone:cdrwa",    // 9
			"create /acl/a d auth::cdrwa",            // 10
			"getAcl /acl/a",                          // 11
			"create /acl/ip d ip:127.0.0.1:cdrwa",    // 12
			"get /acl/ip",                            // 13
			"create /acl/ip10 d ip:10.0.0.0/8:cdrwa", // 14
			"get /acl/ip10",                          // 15
			"create /acl/bad d nope:x:cdrwa",         // 16
			"whoami",                                 // 17
			"getAcl /",                               // 18
		)
		r.want(t, 0, "Created /acl")
		r.want(t, 1, "")
		// getAcl needs READ or ADMIN, which only bob has now.
		r.want(t, 2, "Insufficient permission : /acl")
		r.want(t, 3, "Insufficient permission : /acl")
		r.want(t, 4, "Insufficient permission : /acl")
		r.want(t, 5, "")
		r.want(t, 6, "x")
		r.want(t, 7, "")
		r.wantPrefix(t, 8, "'world,'anyone\n: r\n'digest,'"+bob+"\n: cdrwa\ncZxid = ")
		wantStat(t, "getAcl -s", r.stat(t, 8), map[string]string{"aclVersion": "2"})
		r.want(t, 9, "version No is not valid : /acl")
		r.want(t, 10, "Created /acl/a")
		r.want(t, 11, "'digest,'"+bob+"\n: cdrwa")
		r.want(t, 12, "Created /acl/ip")
		r.want(t, 13, "d")
		r.want(t, 14, "Created /acl/ip10")
		r.want(t, 15, "Insufficient permission : /acl/ip10")
		r.wantContains(t, 16, "InvalidACL")
		lines := strings.Split(r.outputs[17], "\n")
		slices.Sort(lines)
		if want := []string{"Auth scheme: User", "digest: bob", "ip: 127.0.0.1"}; !slices.Equal(lines, want) {
			t.Errorf("whoami printed %q, want the lines %q", r.outputs[17], want)
		}
		r.want(t, 18, "'world,'anyone\n: cdrwa")
	})

	t.Run("Watches", func(t *testing.T) {
		r := runCLI(t, addr,
			"create /w a",                           // 0
			"get -w /w",                             // 1
			"set /w b",                              // 2
			"ls -w /w",                              // 3
			"create /w/c",                           // 4
			"addWatch -m PERSISTENT_RECURSIVE /w/r", // 5
			"create /w/r",                           // 6
			"create /w/r/x",                         // 7
			"set /w/r/x 1",                          // 8
			"addWatch -m PERSISTENT /w/p",           // 9
			"create /w/p",                           // 10
			"set /w/p x",                            // 11
			"stat -w /w/none",                       // 12
			"create /w/none",                        // 13
			"removewatches /w/p",                    // 14
			"set /w/p y",                            // 15
			"removewatches /w/nowatch",              // 16
		)
		r.want(t, 1, "a")
		r.want(t, 3, "[]")
		r.want(t, 12, "Node does not exist: /w/none")
		// removewatches makes PersistentWatchRemoved in the client; the
		// rest come from the server.
		want := []string{
			"state:SyncConnected type:NodeDataChanged path:/w",
			"state:SyncConnected type:NodeChildrenChanged path:/w",
			"state:SyncConnected type:NodeCreated path:/w/r",
			"state:SyncConnected type:NodeCreated path:/w/r/x",
			"state:SyncConnected type:NodeDataChanged path:/w/r/x",
			"state:SyncConnected type:NodeCreated path:/w/p",
			"state:SyncConnected type:NodeDataChanged path:/w/p",
			"state:SyncConnected type:NodeCreated path:/w/none",
			"state:SyncConnected type:PersistentWatchRemoved path:/w/p",
		}
		if !slices.Equal(r.events, want) {
			t.Errorf("watch events\n%s\nwant\n%s\nfull output:\n%s", strings.Join(r.events, "\n"), strings.Join(want, "\n"), r.raw)
		}
		r.wantContains(t, 16, "/w/nowatch")
	})
}
