package txnlog

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// crashDirEnv, when set, turns the test binary into the crash test's child.
const crashDirEnv = "TXNLOG_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// crashOptions roll often, so kills also land around segment creation.
func crashOptions(dir string) Options {
	return Options{Dir: dir, SegmentBytes: 16 << 10, Preallocate: true, Logger: quiet}
}

// crashChild appends batches after whatever the log holds, and after each
// Sync prints the last zxid of the batch: every record up to it is
// acknowledged. It runs until the parent kills it (or a safety limit).
func crashChild(dir string) int {
	l, err := Open(crashOptions(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 1
	}
	z := l.LastZxid()
	for batch := int64(0); batch < 20000; batch++ {
		n := 1 + batch%16
		for i := int64(0); i < n; i++ {
			z++
			if err := l.Append(z, payloadFor(z)); err != nil {
				fmt.Fprintln(os.Stderr, "child append:", err)
				return 1
			}
		}
		if err := l.Sync(); err != nil {
			fmt.Fprintln(os.Stderr, "child sync:", err)
			return 1
		}
		if _, err := fmt.Fprintf(os.Stdout, "ack %d\n", z); err != nil {
			return 1
		}
	}
	fmt.Fprintln(os.Stderr, "child: safety limit reached")
	return 1
}

// TestCrashKeepsAcknowledged kills a child process that appends and syncs,
// several times over the same directory, and checks after each kill that
// every acknowledged record is there, intact and in order. A killed process
// loses nothing the kernel already holds, so this checks the acknowledgement
// protocol and recovery after a crash at any point (including mid-roll);
// torn writes from power loss are covered by TestTornTail and FuzzRecover.
func TestCrashKeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	acked := int64(0)
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a different number of acknowledgements each round, while
		// the child keeps appending without waiting for us.
		killAfter := 40 + 17*round
		sc := bufio.NewScanner(out)
		n := 0
		for n < killAfter && sc.Scan() {
			z, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "ack "), 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			if z <= acked {
				t.Fatalf("child acknowledged %d after %d", z, acked)
			}
			acked = z
			n++
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d acks: %s", round, n, stderr.String())
		}

		l := mustOpen(t, crashOptions(dir))
		last := l.LastZxid()
		if last < acked {
			t.Fatalf("round %d: LastZxid %d after %d was acknowledged", round, last, acked)
		}
		checkRange(t, replayAll(t, l, 0), 1, last)
		mustClose(t, l)
		acked = last // the next child continues after everything recovered
	}
	if len(segmentFiles(t, dir)) < 2 {
		t.Fatalf("the crash test never rolled a segment")
	}
}
