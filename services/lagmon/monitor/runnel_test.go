package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/sdk/events"
)

// commitErr is the first error of an offset commit.
func commitErr(resp *kmsg.OffsetCommitResponse, err error) error {
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}

// binary is bin/NAME, built by `make build` (which `make test` runs
// first). Without it the test fails under CI=true and is skipped elsewhere.
func binary(t *testing.T, name string) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "..", "..", "bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: run make build", bin)
		}
		t.Skipf("%s is missing (make build)", bin)
	}
	return bin
}

// freeAddr is a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runnelDev starts Runnel's own platform (`bin/runnel dev`) on free ports
// and returns the Kafka address and that of the lag monitor it runs, which
// watches the cluster as "local" through the embedded NATS server.
func runnelDev(t *testing.T) (kafka, lagmon string) {
	t.Helper()
	bin := binary(t, "runnel")
	kafka, zk, lagmon, natsAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "dev", "--data-dir", t.TempDir(), "--kafka-listen", kafka, "--zookeeper-listen", zk,
		"--metrics-listen", "", "--lagmon-listen", lagmon, "--nats-listen", natsAddr, "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "runnel dev is up") {
				up <- true
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
		t.Fatalf("runnel dev not up after 90s:\n%s", stderr.String())
	}
	return kafka, lagmon
}

// TestRunnelBrokerScenarios runs the scenarios against Runnel's broker with
// franz-go group consumers committing through the group coordinator: lagmon
// finds the broker's __consumer_offsets (internal, in Kafka's format) and
// reads the commits from it.
func TestRunnelBrokerScenarios(t *testing.T) {
	addr, devLagmon := runnelDev(t)
	ctx := context.Background()
	adm := createOrders(t, addr)
	// The broker creates __consumer_offsets on the first coordinator
	// lookup; wait until it is listed so lagmon reads commits from it from
	// the start (rather than polling first and switching).
	adm.FindGroupCoordinators(ctx, "warm-up")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tds, err := adm.ListTopicsWithInternal(ctx)
		if err == nil && tds.Has("__consumer_offsets") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("__consumer_offsets never listed")
		}
	}
	base := startMonitor(t, scenarioStorage+`
[cluster.runnel]
servers = ["`+addr+`"]
offset-refresh = "100ms"
`)
	s := newRunnelScenarios(t, addr, nil)
	t.Run("lifecycle", func(t *testing.T) {
		commit := s.lifecycle(t, base, "runnel")
		// The lag monitor that runnel dev runs, fed by the broker's NATS
		// events (its cluster is "local"), sees the same group. It keeps
		// a commit only once it knows the partition's log end, which the
		// broker publishes every 5s, so the member commits until it shows.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			commit(s.leo)
			body := httpGet(t, "http://"+devLagmon+"/v3/kafka/local/consumer")
			if strings.Contains(body, `"billing"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("runnel dev's lag monitor does not list billing: %s", body)
			}
		}
	})
	t.Run("stall", func(t *testing.T) {
		p := s.stall(t, base, "runnel")
		t.Logf("owner %q, client %q", p.Owner, p.ClientID)
	})
}

// TestRunnelBrokerNATSScenarios runs the same scenarios through lagmon's
// other source: bin/runnel-broker, registered in bin/runnel-coordinator,
// publishes its offset events to a real NATS server (nats-server, embedded
// in the test) every 50ms, and a lag monitor with no Kafka connection at
// all judges the groups from those events alone.
func TestRunnelBrokerNATSScenarios(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	zk := freeAddr(t)
	startProcess(t, binary(t, "runnel-coordinator"), "--listen", zk, "--data-dir", t.TempDir())
	addr := freeAddr(t)
	startProcess(t, binary(t, "runnel-broker"), "--id", "1", "--listen", addr, "--data-dir", t.TempDir(), "--coordinator", zk,
		"--nats-url", srv.ClientURL(), "--cluster-name", "runnel", "--nats-interval", "50ms")
	createOrders(t, addr)
	base := startMonitor(t, scenarioStorage+`
[cluster.runnel]
nats-url = "`+srv.ClientURL()+`"
`)
	// The test hears the broker's log ends too: each step waits until the
	// broker has published the end of what it produced. lagmon, on the
	// same server, then has it before the commit that follows (NATS keeps
	// one publisher's order), so each commit's lag is exact.
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	var published int64
	more := make(chan struct{}, 1)
	if _, err := nc.Subscribe(events.LogEndSubject("runnel", "runnel"), func(m *nats.Msg) {
		v, err := events.DecodeLogEnd(m.Data)
		if err != nil {
			t.Errorf("log_end from the broker: %v", err)
			return
		}
		for _, p := range v.Partitions {
			if p.Topic == "orders" && p.Partition == 0 {
				mu.Lock()
				published = p.Offset
				mu.Unlock()
				select {
				case more <- struct{}{}:
				default:
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	s := newRunnelScenarios(t, addr, func(leo int64) {
		deadline := time.After(10 * time.Second)
		for {
			mu.Lock()
			at := published
			mu.Unlock()
			if at >= leo {
				return
			}
			select {
			case <-more:
			case <-deadline:
				t.Fatalf("the broker published log end %d, want %d", at, leo)
			}
		}
	})
	t.Run("lifecycle", func(t *testing.T) {
		s.lifecycle(t, base, "runnel")
	})
	t.Run("stall", func(t *testing.T) {
		// The owner comes from the broker's groups.members event.
		if p := s.stall(t, base, "runnel"); p.ClientID != "stuck-consumer" || !strings.HasPrefix(p.Owner, "/127.0.0.1") {
			t.Errorf("owner %q, client %q: want the member's host and client id", p.Owner, p.ClientID)
		}
	})
	// The topic's newest offset, from the log_end events, is the log end.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var topic struct {
			Message string  `json:"message"`
			Offsets []int64 `json:"offsets"`
		}
		if err := json.Unmarshal([]byte(httpGet(t, base+"/v3/kafka/runnel/topic/orders")), &topic); err != nil {
			t.Fatal(err)
		}
		if topic.Message == "topic offsets returned" && len(topic.Offsets) == 1 && topic.Offsets[0] == s.leo {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic offsets %+v, log end %d", topic, s.leo)
		}
	}
	if body := httpGet(t, base+"/v3/kafka/runnel/topic/orders/consumers"); !strings.Contains(body, `"billing"`) || !strings.Contains(body, `"stuck"`) {
		t.Errorf("consumers of orders: %s", body)
	}
}

// startProcess runs a Runnel binary until the test ends (SIGINT, then
// SIGKILL after 20s); its output is shown if the test fails.
func startProcess(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--log-level", "warn")...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(bin), out.String())
		}
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// createOrders waits for the broker at addr and creates the one-partition
// topic "orders".
func createOrders(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := adm.CreateTopic(context.Background(), 1, 1, nil, "orders")
		if err == nil {
			return adm
		}
		if time.Now().After(deadline) {
			t.Fatalf("creating orders: %v", err)
		}
	}
}

// runnelScenarios drives groups through a real Runnel broker: a producer
// and franz-go group members that commit only when told.
type runnelScenarios struct {
	t       *testing.T
	addr    string
	prod    *kgo.Client
	adm     *kadm.Client
	leo     int64
	settled func(leo int64) // waits for the source to know the log end, or nil
}

func newRunnelScenarios(t *testing.T, addr string, settled func(int64)) *runnelScenarios {
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &runnelScenarios{t: t, addr: addr, prod: prod, adm: kadm.NewClient(prod), settled: settled}
}

func (s *runnelScenarios) produce(n int64) {
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Value: []byte("x")}
	}
	if err := s.prod.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		s.t.Fatal(err)
	}
	s.leo += n
	if s.settled != nil {
		s.settled(s.leo)
	}
}

// member joins group as a consumer that commits only when told; the
// client closes when the test ends.
func (s *runnelScenarios) member(t *testing.T, group, clientID string) func(int64) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders"),
		kgo.DisableAutoCommit(), kgo.ClientID(clientID), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	go func() {
		for {
			if fs := cl.PollFetches(context.Background()); fs.IsClientClosed() {
				return
			}
		}
	}()
	return func(off int64) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var cerr error
			cl.CommitOffsetsSync(context.Background(), map[string]map[int32]kgo.EpochOffset{"orders": {0: {Epoch: -1, Offset: off}}},
				func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
					cerr = commitErr(resp, err)
				})
			if cerr == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("commit %d for %s: %v", off, group, cerr)
			}
			time.Sleep(50 * time.Millisecond) // still joining
		}
	}
}

// lifecycle takes group "billing" through WARN, OK, REWIND and STOP and
// returns its member's commit.
func (s *runnelScenarios) lifecycle(t *testing.T, base, cluster string) func(int64) {
	commit := s.member(t, "billing", "billing-consumer")
	lifecycle(t, base, cluster, "billing", &driver{produce: s.produce, commit: commit, leo: s.leo})
	return commit
}

// stall has group "stuck" commit one offset while records keep coming,
// and returns its partition's answer.
func (s *runnelScenarios) stall(t *testing.T, base, cluster string) groupPartition {
	commit := s.member(t, "stuck", "stuck-consumer")
	at := s.leo
	seen, gs := until(t, base, cluster, "stuck", "ERR/STALL", func() { s.produce(20); commit(at) })
	p := gs.Status.Partitions[0]
	if p.End == nil || p.End.Offset != at || p.CurrentLag == 0 {
		t.Errorf("STALL answer %+v", gs)
	}
	t.Logf("stuck: %v", seen)
	return p
}
