package file_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

const crashEnv = "RUNNEL_FILE_CRASH_CHILD_DIR"

// crashBatch is the batch the crash child writes at base: two 100-byte records.
func crashBatch(base int64) []byte {
	return conformance.Batch(base, ts0+base, conformance.Value(base, 100), conformance.Value(base+1, 100))
}

// TestCrashChild is the child process of TestKill9: it appends until it is
// killed, printing each acknowledged (returned) append. Run directly, it
// has nothing to do.
func TestCrashChild(t *testing.T) {
	root := os.Getenv(crashEnv)
	if root == "" {
		return
	}
	cfg := config(root)
	cfg.SegmentBytes = 16 << 10 // roll often: crashes land around rolls too
	l, err := file.New("").Open(ctx, tp, cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	deadline := time.Now().Add(30 * time.Second) // never outlive a parent that died
	for time.Now().Before(deadline) {
		base := l.EndOffset()
		if _, err := l.Append(ctx, crashBatch(base)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("acked %d\n", base+1) // os.Stdout is unbuffered
	}
	os.Exit(2)
}

// TestKill9 kills a process that is appending, with SIGKILL, and checks
// that every append it acknowledged is there after recovery: without fsync,
// acknowledged means handed to the OS, which survives a process kill.
func TestKill9(t *testing.T) {
	for round := 0; round < 3; round++ {
		root := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+root)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := int64(-1)
		sc := bufio.NewScanner(out)
		for n := 0; n < 400+round*300 && sc.Scan(); n++ {
			line := sc.Text()
			v, ok := strings.CutPrefix(line, "acked ")
			if !ok {
				continue
			}
			if acked, err = strconv.ParseInt(v, 10, 64); err != nil {
				t.Fatalf("child said %q", line)
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if acked < 0 {
			t.Fatal("child acknowledged nothing")
		}

		l := open(t, config(root))
		if l.EndOffset() <= acked {
			t.Fatalf("round %d: last acknowledged offset %d, recovered end offset %d", round, acked, l.EndOffset())
		}
		off := int64(0)
		for off < l.EndOffset() {
			r, err := l.Read(ctx, off, 1<<20, math.MaxInt64)
			if err != nil {
				t.Fatal(err)
			}
			it := storage.Batches(r.Batches, true)
			for it.Next() {
				if !bytes.Equal(it.Batch(), crashBatch(off)) {
					t.Fatalf("round %d: batch at %d differs from what the child wrote", round, off)
				}
				off += 2
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
		}
		if off != l.EndOffset() {
			t.Fatalf("round %d: read up to %d, end %d", round, off, l.EndOffset())
		}
		// The log goes on.
		if _, err := l.Append(ctx, crashBatch(off)); err != nil {
			t.Fatal(err)
		}
	}
}
