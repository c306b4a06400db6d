package compose

import (
	"fmt"
	"io"
	"log"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/internal/await"
)

// TestComposeStack walks the README's compose section on a stack of its
// own: topics, the console producer and consumer, kcat and lag through the
// host ports; then the coordinator ensemble loses its raft leader's
// container and keeps serving (ZooKeeper clients, the brokers' metadata
// writes, the lag API) until the container comes back and catches up.
func TestComposeStack(t *testing.T) {
	s := startStack(t)
	const topic, group = "walkthrough", "walkthrough-readers"

	// kcat -L from the host: three brokers, each advertised at the
	// gateway address on its own published port.
	md := s.run("", "kcat", "-b", s.bootstrap(1), "-L", "-m", "10")
	for i := 1; i <= 3; i++ {
		want := fmt.Sprintf("broker %d at %s.1:%d", i, s.subnet, s.brokerPorts[i-1])
		if !strings.Contains(md, want) {
			t.Fatalf("kcat -L lacks %q:\n%s", want, md)
		}
	}

	// A topic takes the stack's defaults: three replicas.
	s.runnel("", "topics", "create", "--bootstrap-server", s.bootstrap(1), "--topic", topic, "--partitions", "3")
	desc := s.runnel("", "topics", "describe", "--bootstrap-server", s.bootstrap(2), "--topic", topic)
	if !strings.Contains(desc, "PartitionCount: 3\tReplicationFactor: 3") {
		t.Fatalf("topics describe:\n%s", desc)
	}
	leaders := regexp.MustCompile(`Leader: (\d)`).FindAllStringSubmatch(desc, -1)
	if len(leaders) != 3 {
		t.Fatalf("topics describe shows %d leaders:\n%s", len(leaders), desc)
	}

	// The console producer (runnel, acks=all) and kcat each write 30
	// keyed records, through different brokers.
	var want []string
	var fromRunnel, fromKcat strings.Builder
	for i := range 30 {
		fmt.Fprintf(&fromRunnel, "r%02d\tvalue-%02d\n", i, i)
		want = append(want, fmt.Sprintf("r%02d=value-%02d", i, i))
		fmt.Fprintf(&fromKcat, "k%02d:value-%02d\n", i, i)
		want = append(want, fmt.Sprintf("k%02d=value-%02d", i, i))
	}
	s.runnel(fromRunnel.String(), "produce", "--bootstrap-server", s.bootstrap(2), "--topic", topic, "--key-separator", `\t`)
	s.run(fromKcat.String(), "kcat", "-P", "-b", s.bootstrap(3), "-t", topic, "-K:", "-X", "acks=all")
	slices.Sort(want)

	// kcat reads everything from the beginning.
	got := lines(s.run("", "kcat", "-C", "-b", s.bootstrap(1), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s\n"))
	if !slices.Equal(got, want) {
		t.Fatalf("kcat read %d records, want %d:\n%v", len(got), len(want), got)
	}
	// lagmon keeps a commit only for partitions whose log-end offset it
	// has read (Burrow's rule): wait until it has all 60 records' worth,
	// or the group's commits could come too early to count.
	await.Until(t, 60*time.Second, "lagmon reads the topic's log-end offsets", func() error {
		var off struct {
			Offsets []int64 `json:"offsets"`
		}
		if err := getJSON(s.lagmon("/v3/kafka/runnel/topic/"+topic), &off); err != nil {
			return err
		}
		var sum int64
		for _, o := range off.Offsets {
			sum += o
		}
		if len(off.Offsets) != 3 || sum != 60 {
			return fmt.Errorf("offsets %v", off.Offsets)
		}
		return nil
	})
	// The console consumer reads them in a group, which commits.
	got = lines(s.runnel("", "consume", "--bootstrap-server", s.bootstrap(3), "--topic", topic, "--group", group,
		"--from-beginning", "--max-messages", "60", "--timeout", "60s", "--format", `%k=%s\n`))
	if !slices.Equal(got, want) {
		t.Fatalf("runnel consume read %d records, want %d:\n%v", len(got), len(want), got)
	}

	// lagmon sees the group's commits: every partition consumed to the end.
	lagOK := func() error {
		var lag lagResponse
		if err := getJSON(s.lagmon("/v3/kafka/runnel/consumer/"+group+"/lag"), &lag); err != nil {
			return err
		}
		return lag.caughtUp(topic, 3)
	}
	await.Until(t, 60*time.Second, "lagmon reports the group caught up", lagOK)

	// Every service serves /metrics: lagmon on its published port, the
	// brokers and coordinators inside the network (probed from within
	// their containers with the image's runnel).
	if body, err := getText(s.lagmon("/metrics")); err != nil || !strings.Contains(body, "burrow_kafka_consumer_lag_total") {
		t.Errorf("lagmon /metrics lacks burrow_kafka_consumer_lag_total (%v)", err)
	}
	for svc, url := range map[string]string{
		"broker-1":      "http://127.0.0.1:9100/metrics",
		"coordinator-2": "http://127.0.0.1:8080/metrics",
	} {
		s.docker("exec", s.ids[svc], "/usr/local/bin/runnel", "health", "http", url)
	}

	// The coordinator ensemble loses its raft leader's container.
	lead := s.coordinatorLeader(0)
	leaderSvc := fmt.Sprintf("coordinator-%d", lead)
	t.Logf("killing %s, the raft leader", leaderSvc)
	s.kill(leaderSvc)
	next := s.coordinatorLeader(lead)
	t.Logf("coordinator-%d leads now", next)

	// The two left serve a ZooKeeper client: writes and reads.
	var survivors []string
	for i := 1; i <= 3; i++ {
		if i != lead {
			survivors = append(survivors, s.coordinator(i))
		}
	}
	zc := connectZK(t, survivors...)
	path := "/compose-test-while-" + leaderSvc + "-was-down"
	if _, err := zc.Create(path, []byte("written without the old leader"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s on the surviving members: %v", path, err)
	}
	// The brokers' metadata still lives there: the controller creates a
	// topic, and the cluster serves it end to end.
	ids, _, err := zc.Children("/brokers/ids")
	if slices.Sort(ids); err != nil || !slices.Equal(ids, []string{"1", "2", "3"}) {
		t.Fatalf("/brokers/ids = %v (%v): every broker stays registered", ids, err)
	}
	s.runnel("", "topics", "create", "--bootstrap-server", s.bootstrap(2), "--topic", "after-leader-loss", "--partitions", "2")
	s.runnel("one\ntwo\n", "produce", "--bootstrap-server", s.bootstrap(3), "--topic", "after-leader-loss")
	if got := lines(s.run("", "kcat", "-C", "-b", s.bootstrap(1), "-t", "after-leader-loss", "-o", "beginning", "-e", "-q", "-f", "%s\n")); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("after-leader-loss holds %v", got)
	}
	// And lag still answers.
	await.Until(t, 30*time.Second, "lagmon answers with the coordinator leader gone", lagOK)

	// The old leader comes back, catches up and serves what was written
	// while it was away.
	s.start(leaderSvc)
	back := connectZK(t, s.coordinator(lead))
	if _, err := back.Sync(path); err != nil {
		t.Fatal(err)
	}
	data, _, err := back.Get(path)
	if err != nil || string(data) != "written without the old leader" {
		t.Fatalf("%s on the returned %s: %q, %v", path, leaderSvc, data, err)
	}
	if out, err := s.fourLetter(lead, "srvr"); err != nil || !regexp.MustCompile(`Mode: (leader|follower)\n`).MatchString(out) {
		t.Fatalf("srvr of the returned %s: %v\n%s", leaderSvc, err, out)
	}

	// Nothing written before or during the loss is missing.
	got = lines(s.run("", "kcat", "-C", "-b", s.bootstrap(2), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s\n"))
	if !slices.Equal(got, want) {
		t.Fatalf("after the coordinator's return kcat read %d records, want %d", len(got), len(want))
	}
}

// lagResponse is the part of lagmon's (Burrow's) lag answer the test reads.
type lagResponse struct {
	Status struct {
		Status     string `json:"status"`
		Partitions []struct {
			Topic      string `json:"topic"`
			Partition  int    `json:"partition"`
			CurrentLag int64  `json:"current_lag"`
			End        *struct {
				Offset int64 `json:"offset"`
			} `json:"end"`
		} `json:"partitions"`
	} `json:"status"`
}

// caughtUp checks that the group has n partitions of topic with no lag and
// at least one commit.
func (l lagResponse) caughtUp(topic string, n int) error {
	seen, committed := 0, 0
	for _, p := range l.Status.Partitions {
		if p.Topic != topic {
			continue
		}
		seen++
		if p.CurrentLag != 0 {
			return fmt.Errorf("partition %d lags %d", p.Partition, p.CurrentLag)
		}
		if p.End != nil && p.End.Offset > 0 {
			committed++
		}
	}
	if seen != n || committed == 0 {
		return fmt.Errorf("%d partitions of %s (want %d), %d with commits; status %s", seen, topic, n, committed, l.Status.Status)
	}
	return nil
}

// connectZK opens a go-zookeeper session to addrs and waits for it.
func connectZK(t *testing.T, addrs ...string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(addrs, 20*time.Second, zk.WithLogInfo(false), zk.WithLogger(log.New(io.Discard, "", 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-deadline:
			t.Fatalf("no ZooKeeper session with %v", addrs)
		}
	}
}

// lines splits output into its lines, sorted.
func lines(out string) []string {
	var l []string
	for _, s := range strings.Split(out, "\n") {
		if s != "" {
			l = append(l, s)
		}
	}
	slices.Sort(l)
	return l
}
