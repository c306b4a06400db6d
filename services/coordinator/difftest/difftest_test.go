// Package difftest is the coordinator's differential suite: every scenario
// runs against Apache ZooKeeper 3.8 and against Runnel's coordinator, and
// the two normalized traces must be equal.
//
// A trace records each operation with its error code, returned path, data,
// sorted children and the deterministic stat fields (versions, lengths,
// child counts, the owner as a session name, "container" or "ttl(ms)", and
// czxid/mzxid/pzxid as ranks among the zxids the trace saw, so that only
// their order and equality count), and after every operation the
// notifications each open session received, in order.
//
// The ZooKeeper trace of each scenario is also compared with
// testdata/<scenario>.trace, which documents what ZooKeeper does and shows
// in review when that changes; regenerate with
//
//	go test ./difftest -run TestDifferential -rewrite
//
// The other server is Runnel's coordinator, built by launch.Build (or
// $RUNNEL_COORDINATOR_BIN); DIFFTEST_OTHER=zookeeper compares ZooKeeper with
// a second ZooKeeper instead, which validates the suite itself.
package difftest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/coordinator/internal/launch"
	"github.com/runnel-io/runnel/services/coordinator/internal/zktest"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.trace from Apache ZooKeeper's traces")

// OtherEnv selects the server compared with Apache ZooKeeper: "runnel"
// (the default) or "zookeeper".
const OtherEnv = "DIFFTEST_OTHER"

// containerCheck is the cleanup interval both servers run with, so
// container and TTL scenarios finish in about a second.
const containerCheck = 200 * time.Millisecond

func otherServer(t *testing.T, opts launch.Options) (*launch.Cluster, string) {
	switch v := os.Getenv(OtherEnv); v {
	case "", "runnel":
		return zktest.Coordinator(t, opts), "runnel"
	case "zookeeper":
		return zktest.ZooKeeper(t, opts), "zookeeper#2"
	default:
		t.Fatalf("%s=%q: want runnel or zookeeper", OtherEnv, v)
	}
	return nil, ""
}

func TestDifferential(t *testing.T) {
	opts := launch.Options{ContainerCheckInterval: containerCheck}
	ref := zktest.ZooKeeper(t, opts)
	other, otherName := otherServer(t, opts)

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			traces := make([]string, 2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, addr := range []string{ref.Addr(), other.Addr()} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					traces[i], errs[i] = runScenario(sc, addr)
				}()
			}
			wg.Wait()
			if errs[0] != nil {
				t.Fatalf("zookeeper: %v\ntrace so far:\n%s", errs[0], traces[0])
			}
			checkGolden(t, sc.name, traces[0])
			if errs[1] != nil {
				t.Errorf("%s: %v", otherName, errs[1])
			}
			if traces[0] != traces[1] {
				t.Errorf("traces differ (- zookeeper, + %s):\n%s", otherName, diff(traces[0], traces[1]))
			}
		})
	}
}

// runScenario runs sc on a fresh recorder and returns the rendered trace.
// An infrastructure failure is returned as an error, with the trace up to
// it.
func runScenario(sc scenario, addr string) (string, error) {
	r, err := newRecorder(addr)
	if err != nil {
		return "", err
	}
	func() {
		defer r.close()
		defer func() {
			if p := recover(); p != nil {
				r.fail(fmt.Errorf("panic: %v", p))
			}
		}()
		sc.run(r)
	}()
	return r.render(), r.failed
}

func checkGolden(t *testing.T, name, trace string) {
	t.Helper()
	path := filepath.Join("testdata", name+".trace")
	if *rewrite {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(trace), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	if string(want) != trace {
		t.Errorf("Apache ZooKeeper's trace differs from %s (- recorded, + now); if ZooKeeper changed, rerun with -rewrite:\n%s",
			path, diff(string(want), trace))
	}
}

// diff is a line diff from the longest common subsequence: traces are a
// few hundred lines at most.
func diff(a, b string) string {
	x := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	y := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var lines []string
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, "  "+x[i])
			i++
			j++
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, "+ "+y[j])
			j++
		default:
			lines = append(lines, "- "+x[i])
			i++
		}
	}
	// Keep diffContext unchanged lines around each change.
	keep := make([]bool, len(lines))
	for k, l := range lines {
		if l[0] != ' ' {
			for c := max(0, k-diffContext); c <= min(len(lines)-1, k+diffContext); c++ {
				keep[c] = true
			}
		}
	}
	var out strings.Builder
	skipped := false
	for k, l := range lines {
		if !keep[k] {
			if !skipped {
				out.WriteString("  ...\n")
			}
			skipped = true
			continue
		}
		skipped = false
		out.WriteString(l + "\n")
	}
	return out.String()
}

// diffContext is how many equal lines diff shows around a change.
const diffContext = 3

func TestDiff(t *testing.T) {
	got := diff("a\nb\nc\n", "a\nx\nc\nd\n")
	want := "  a\n+ x\n- b\n  c\n+ d\n"
	if got != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", got, want)
	}
	if d := diff("same\n", "same\n"); d != "  ...\n" {
		t.Fatalf("diff of equal texts: %q", d)
	}
	long := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
	got = diff(long, strings.Replace(long, "5\n", "five\n", 1))
	want = "  ...\n  2\n  3\n  4\n+ five\n- 5\n  6\n  7\n  8\n  ...\n"
	if got != want {
		t.Fatalf("diff with context:\n%s\nwant:\n%s", got, want)
	}
}

// TestRender checks the normalization that makes traces of two servers
// comparable: zxids become ranks, owners become names.
func TestRender(t *testing.T) {
	r := &recorder{sessions: []*session{{name: "s1", id: 0x1000a}, {name: "s2", id: 0x2000b}, {name: "s3", id: extendedMask | 7}}}
	r.add("a ", zxid(900), " ", zxid(100), " ", zxid(900), " ", zxid(0))
	r.add("owners ", owner(0x2000b), " ", owner(extendedMask|7), " ", owner(0), " ", owner(containerOwner), " ",
		owner(extendedMask|1500), " ", owner(0x77), " ", owner(extendedMask|1<<40|5))
	got := r.render()
	want := "a #3 #2 #3 #1\nowners s2 s3 none container ttl(1500) unknown-session extended(0xff00010000000005)\n"
	if got != want {
		t.Fatalf("render:\n%s\nwant:\n%s", got, want)
	}
}
