package monitor

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// runnelDev starts Runnel's own platform (`bin/runnel dev`, built by `make
// build`, which `make test` runs first) on free ports and returns the Kafka
// address and that of the lag monitor it runs. Without the binary the test
// fails under CI=true and is skipped elsewhere.
func runnelDev(t *testing.T) (kafka, lagmon string) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "..", "..", "bin", "runnel"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: run make build", bin)
		}
		t.Skipf("%s is missing (make build)", bin)
	}
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	kafka, zk, lagmon := free(), free(), free()
	cmd := exec.Command(bin, "dev", "--data-dir", t.TempDir(), "--kafka-listen", kafka, "--zookeeper-listen", zk,
		"--metrics-listen", "", "--lagmon-listen", lagmon, "--log-level", "warn")
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
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
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
	produce := func(n int64) {
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Value: []byte("x")}
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// member joins group as a consumer that commits only when told to.
	member := func(group, clientID string) (*kgo.Client, func(int64)) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders"),
			kgo.DisableAutoCommit(), kgo.ClientID(clientID), kgo.FetchMaxWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if fs := cl.PollFetches(context.Background()); fs.IsClientClosed() {
					return
				}
			}
		}()
		commit := func(off int64) {
			deadline := time.Now().Add(20 * time.Second)
			for {
				var cerr error
				cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"orders": {0: {Epoch: -1, Offset: off}}},
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
		return cl, commit
	}

	t.Run("lifecycle", func(t *testing.T) {
		cl, commit := member("billing", "billing-consumer")
		defer cl.Close()
		d := &driver{produce: produce, commit: commit}
		lifecycle(t, base, "runnel", "billing", d)
		// The lag monitor that runnel dev runs sees the same group (its
		// cluster is "local").
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
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
		cl, commit := member("stuck", "stuck-consumer")
		defer cl.Close()
		var at int64
		if offs, err := adm.ListEndOffsets(ctx, "orders"); err == nil {
			o, _ := offs.Lookup("orders", 0)
			at = o.Offset
		}
		seen, gs := until(t, base, "runnel", "stuck", "ERR/STALL", func() { produce(20); commit(at) })
		p := gs.Status.Partitions[0]
		if p.End == nil || p.End.Offset != at || p.CurrentLag == 0 {
			t.Errorf("STALL answer %+v", gs)
		}
		t.Logf("stuck: %v (owner %q, client %q)", seen, p.Owner, p.ClientID)
	})
}
