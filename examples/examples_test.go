package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The examples are built and run as a person would run them, against a
// live broker: Runnel's own (`runnel dev`, built from this repository).

var bin string // folder of the built binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runnel-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	builds := [][]string{
		{".", "./producer", "./consumer-group", "./avro-pipeline"},
		{"../plugins", "./cmd/runnel-serde-avro"},
		{"..", "./cmd/runnel"},
	}
	for _, b := range builds {
		out := dir
		if strings.Contains(b[1], "serde") {
			out = filepath.Join(dir, "plugins")
		}
		cmd := exec.Command("go", append([]string{"build", "-o", out + "/"}, b[1:]...)...)
		cmd.Dir = b[0]
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs an example binary and returns its stdout; it fails the test on
// a non-zero exit.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out.String(), errb.String())
	}
	return out.String()
}

// startDev starts `runnel dev` on free loopback ports and returns the
// Kafka address; it is stopped with SIGINT when the test ends.
func startDev(t *testing.T) string {
	t.Helper()
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	cmd := exec.Command(filepath.Join(bin, "runnel"), "dev", "--data-dir", t.TempDir(),
		"--kafka-listen", addrs[0], "--zookeeper-listen", addrs[1], "--metrics-listen", addrs[2])
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Try ") {
				up <- true
				for sc.Scan() {
				}
				return
			}
		}
		up <- false
	}()
	select {
	case ok := <-up:
		if !ok {
			t.Fatalf("runnel dev exited before it was up:\n%s", stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("runnel dev did not come up:\n%s", stderr.String())
	}
	return addrs[0]
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

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
}

// supportsGroups asks the broker whether it serves the group protocol
// (JoinGroup), which Runnel's broker is gaining at the time of writing.
func supportsGroups(t *testing.T, addr string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vs, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if _, ok := v.KeyMaxVersion(kmsg.JoinGroup.Int16()); ok {
			return true
		}
	}
	return false
}

func TestExamplesAgainstRunnel(t *testing.T) {
	addr := startDev(t)
	b := "--bootstrap-server=" + addr

	t.Run("producer", func(t *testing.T) {
		createTopic(t, addr, "orders", 3)
		out := run(t, nil, "producer", b, "--topic", "orders", "--count", "12")
		if !strings.Contains(out, "produced 12 orders to orders") {
			t.Errorf("producer said:\n%s", out)
		}
		// Keyed by customer: every order of one customer on one partition.
		parts := map[string]string{}
		for _, m := range regexp.MustCompile(`key (customer-\d)\) -> partition (\d)`).FindAllStringSubmatch(out, -1) {
			if p, seen := parts[m[1]]; seen && p != m[2] {
				t.Errorf("%s went to partitions %s and %s", m[1], p, m[2])
			}
			parts[m[1]] = m[2]
		}
		if len(parts) != 3 {
			t.Errorf("customers %v", parts)
		}
	})

	t.Run("avro pipeline in-process", func(t *testing.T) {
		createTopic(t, addr, "users", 1)
		out := run(t, nil, "avro-pipeline", b, "--topic", "users", "--plugin-mode", "builtin")
		checkAvro(t, out, "in-process")
	})

	t.Run("avro pipeline as a plugin process", func(t *testing.T) {
		createTopic(t, addr, "users2", 1)
		// The runnel-serde-avro binary sits in a plugins folder beside the
		// example's binary, where discovery looks.
		out := run(t, nil, "avro-pipeline", b, "--topic", "users2", "--plugin-mode", "process")
		checkAvro(t, out, "as a plugin process")
	})

	t.Run("consumer group", func(t *testing.T) {
		groupAddr, where := addr, "runnel"
		if !supportsGroups(t, addr) {
			// Until Runnel's broker serves groups, the group example runs
			// against franz-go's kfake, a live broker on a loopback port.
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			groupAddr, where = c.ListenAddrs()[0], "kfake"
			createTopic(t, groupAddr, "orders", 3)
			run(t, nil, "producer", "--bootstrap-server="+groupAddr, "--topic", "orders", "--count", "12")
		}
		t.Logf("consumer group example against %s", where)
		out := run(t, nil, "consumer-group", "--bootstrap-server="+groupAddr, "--topic", "orders", "--group", "billing", "--members", "2", "--count", "12")
		if !strings.Contains(out, "group billing read 12 records") {
			t.Errorf("consumer-group said:\n%s", out)
		}
		// Each partition was read by one member at a time.
		readers := map[string]map[string]bool{}
		for _, m := range regexp.MustCompile(`(member-\d) read orders/(\d)@`).FindAllStringSubmatch(out, -1) {
			if readers[m[2]] == nil {
				readers[m[2]] = map[string]bool{}
			}
			readers[m[2]][m[1]] = true
		}
		if len(readers) != 3 {
			t.Errorf("partitions read: %v\n%s", readers, out)
		}
	})
}

func checkAvro(t *testing.T, out, how string) {
	t.Helper()
	for _, want := range []string{
		"avro serializer running " + how,
		`rejected: record 2 for topic "users`,
		`value field "action": "DANCE" is not a symbol of enum example.Action`,
		"read ann SIGNUP at 1700000000000",
		"read bob LOGOUT at 1700000003000",
		"avro pipeline: 3 events sent and read back",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
