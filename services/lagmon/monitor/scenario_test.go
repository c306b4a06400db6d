package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/sdk/events"
	"github.com/runnel-io/runnel/services/lagmon/config"
)

// The scenarios drive a consumer group through Burrow's statuses against a
// real Kafka-protocol broker (franz-go's kfake, which keeps commits in
// memory and has no __consumer_offsets topic, so lagmon's "auto" source
// polls committed offsets) and through NATS events on an embedded NATS
// server, published here as any publisher of the sdk/events contract
// would. runnel_test.go runs them against Runnel's own broker through both
// sources. Windows are 5 offsets refreshed every 100ms, so each scenario
// takes a few seconds.

const tick = 120 * time.Millisecond

func startMonitor(t *testing.T, cfgText string) string {
	t.Helper()
	cfg, err := config.Parse(cfgText)
	if err != nil {
		t.Fatal(err)
	}
	var logOut io.Writer = io.Discard
	if os.Getenv("LAGMON_TEST_LOG") != "" {
		logOut = os.Stderr // LAGMON_TEST_LOG=1 shows lagmon's log
	}
	m, err := New(cfg, Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	base := "http://" + m.Addr()
	deadline := time.Now().Add(10 * time.Second)
	for !m.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("lagmon never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body := httpGet(t, base+"/burrow/admin/ready"); body != "READY" {
		t.Fatalf("ready endpoint says %q", body)
	}
	return base
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// groupStatus is the part of Burrow's /lag answer the scenarios check.
type groupStatus struct {
	Error   bool   `json:"error"`
	Message string `json:"message"`
	Status  struct {
		Status     string           `json:"status"`
		TotalLag   uint64           `json:"totallag"`
		Count      int              `json:"partition_count"`
		Partitions []groupPartition `json:"partitions"`
		Maxlag     *struct {
			Topic string `json:"topic"`
		} `json:"maxlag"`
	} `json:"status"`
}

// groupPartition is one partition of the /lag answer.
type groupPartition struct {
	Topic      string   `json:"topic"`
	Partition  int32    `json:"partition"`
	Status     string   `json:"status"`
	Owner      string   `json:"owner"`
	ClientID   string   `json:"client_id"`
	CurrentLag uint64   `json:"current_lag"`
	Complete   float32  `json:"complete"`
	LagSeconds *float64 `json:"lag_seconds"`
	End        *struct {
		Offset int64 `json:"offset"`
	} `json:"end"`
}

func lagOf(t *testing.T, base, cluster, group string) (int, groupStatus) {
	t.Helper()
	resp, err := http.Get(base + "/v3/kafka/" + cluster + "/consumer/" + group + "/lag")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var gs groupStatus
	if err := json.NewDecoder(resp.Body).Decode(&gs); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, gs
}

func (g groupStatus) label() string {
	s := g.Status.Status
	if len(g.Status.Partitions) > 0 {
		s += "/" + g.Status.Partitions[0].Status
	}
	return s
}

// until runs step every tick until the group's status reads want
// ("GROUP/PARTITION0"), and returns the statuses seen on the way.
func until(t *testing.T, base, cluster, group, want string, step func()) ([]string, groupStatus) {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		step()
		time.Sleep(tick)
		code, gs := lagOf(t, base, cluster, group)
		label := gs.label()
		if code != 200 {
			label = fmt.Sprintf("HTTP %d", code)
		}
		if len(seen) == 0 || seen[len(seen)-1] != label {
			seen = append(seen, label)
		}
		if label == want {
			return seen, gs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %s; saw %v", group, want, seen)
		}
	}
}

// driver produces records and commits offsets of partition 0 of "orders".
type driver struct {
	produce func(n int64)
	commit  func(offset int64)
	leo     int64
	at      int64
}

func (d *driver) step(produce, consume int64) func() {
	return func() {
		if produce > 0 {
			d.produce(produce)
			d.leo += produce
		}
		if consume >= 0 {
			d.at = min(d.at+consume, d.leo)
			d.commit(d.at)
		}
	}
}

// lifecycle takes a group through WARN, OK, REWIND and STOP, checking the
// transitions and the JSON the API returns at each.
func lifecycle(t *testing.T, base, cluster, group string, d *driver) {
	// A producer outpacing a slow consumer: OK while the window fills
	// (minimum-complete 1), then WARN.
	seen, gs := until(t, base, cluster, group, "WARN/WARN", d.step(20, 10))
	if seen[0] != "HTTP 404" && !strings.HasPrefix(seen[0], "OK") {
		t.Errorf("WARN phase started at %v", seen)
	}
	p := gs.Status.Partitions[0]
	if gs.Error || gs.Message != "consumer status returned" || gs.Status.Count != 1 || p.Topic != "orders" || p.CurrentLag == 0 ||
		gs.Status.TotalLag != p.CurrentLag || p.Complete != 1 || gs.Status.Maxlag == nil || p.LagSeconds == nil {
		t.Errorf("WARN answer %+v", gs)
	}
	t.Logf("%s: %v", group, seen)

	// The consumer catches up: OK at once (the current lag is zero).
	seen, gs = until(t, base, cluster, group, "OK/OK", d.step(0, 1<<40))
	if gs.Status.TotalLag != 0 || gs.Status.Partitions[0].End.Offset != d.leo {
		t.Errorf("caught-up answer %+v", gs)
	}
	t.Logf("%s: %v", group, seen)

	// Behind again for a full window, then the offset goes backwards.
	until(t, base, cluster, group, "WARN/WARN", d.step(20, 10))
	rewound := false
	seen, gs = until(t, base, cluster, group, "ERR/REWIND", func() {
		if !rewound {
			rewound = true
			d.produce(20)
			d.leo += 20
			d.at = max(d.at-100, 0) // far enough back that a slow poller cannot miss it
			d.commit(d.at)
			return
		}
		d.step(20, 10)()
	})
	if gs.Status.Status != "ERR" || gs.Status.Partitions[0].Status != "REWIND" {
		t.Errorf("REWIND answer %+v", gs)
	}
	t.Logf("%s: %v", group, seen)

	// The consumer stops committing while records keep coming.
	seen, _ = until(t, base, cluster, group, "ERR/STOP", d.step(20, -1))
	t.Logf("%s: %v", group, seen)
}

const scenarioStorage = `
[storage]
intervals = 5
[evaluator]
minimum-complete = 1.0
[dashboard]
history-interval = "100ms"
`

func TestKafkaScenarios(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	addr := fake.ListenAddrs()[0]
	base := startMonitor(t, scenarioStorage+`
[cluster.fake]
servers = ["`+addr+`"]
offset-refresh = "100ms"
`)
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	ctx := context.Background()
	produce := func(n int64) {
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Value: []byte("x")}
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	commitFor := func(group string) func(int64) {
		return func(off int64) {
			os := kadm.Offsets{}
			os.AddOffset("orders", 0, off, -1)
			if _, err := adm.CommitOffsets(ctx, group, os); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("lifecycle", func(t *testing.T) {
		lifecycle(t, base, "fake", "billing", &driver{produce: produce, commit: commitFor("billing")})
	})

	t.Run("stall", func(t *testing.T) {
		// A member that stays in the group but whose committed offset never
		// moves while records keep coming.
		var leo int64
		if offs, err := adm.ListEndOffsets(ctx, "orders"); err == nil {
			o, _ := offs.Lookup("orders", 0)
			leo = o.Offset
		}
		commitFor("stuck")(leo)
		member, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("stuck"), kgo.ConsumeTopics("orders"),
			kgo.DisableAutoCommit(), kgo.ClientID("stuck-consumer"), kgo.FetchMaxWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer member.Close()
		go func() {
			for {
				if fs := member.PollFetches(context.Background()); fs.IsClientClosed() {
					return
				}
			}
		}()
		seen, gs := until(t, base, "fake", "stuck", "ERR/STALL", func() { produce(20) })
		p := gs.Status.Partitions[0]
		if p.End == nil || p.End.Offset != leo || p.CurrentLag == 0 || p.ClientID != "stuck-consumer" || p.Owner == "" {
			t.Errorf("STALL answer %+v", gs)
		}
		t.Logf("stuck: %v", seen)
	})

	// The stored windows in Burrow's consumer-detail shape.
	var detail struct {
		Message string `json:"message"`
		Topics  map[string][]struct {
			Offsets    []*json.RawMessage `json:"offsets"`
			CurrentLag uint64             `json:"current-lag"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, base+"/v3/kafka/fake/consumer/billing")), &detail); err != nil {
		t.Fatal(err)
	}
	if detail.Message != "consumer detail returned" || len(detail.Topics["orders"]) != 1 || len(detail.Topics["orders"][0].Offsets) != 5 {
		t.Errorf("consumer detail %+v", detail)
	}
	if body := httpGet(t, base+"/v3/kafka/fake/topic/orders/consumers"); !strings.Contains(body, `"billing"`) || !strings.Contains(body, `"stuck"`) {
		t.Errorf("consumers of orders: %s", body)
	}
	if body := httpGet(t, base+"/metrics"); !strings.Contains(body, `burrow_kafka_consumer_status{cluster="fake",consumer_group="billing"} 3`) {
		t.Errorf("metrics lack billing's ERR status")
	}
}

func TestNATSScenarios(t *testing.T) {
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	base := startMonitor(t, scenarioStorage+`
[cluster.events]
nats-url = "`+srv.ClientURL()+`"
`)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	publish := func(subject string, v any) {
		b, _ := json.Marshal(v)
		if err := nc.Publish(subject, b); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// A broker that owns partition 0 of "orders" and publishes its log end
	// on every change.
	var leo int64
	produce := func(n int64) {
		leo += n
		publish(events.LogEndSubject("runnel", "events"), events.LogEnd{Timestamp: time.Now().UnixMilli(),
			Partitions: []events.LogEndPartition{{Topic: "orders", Partition: 0, PartitionCount: 1, Offset: leo}}})
		time.Sleep(5 * time.Millisecond) // the log end lands before the commit that follows
	}
	commitFor := func(group string) func(int64) {
		return func(off int64) {
			publish(events.CommitSubject("runnel", "events"), events.Commit{Group: group, Timestamp: time.Now().UnixMilli(),
				Offsets: []events.CommitPartition{{Topic: "orders", Partition: 0, Offset: off}}})
		}
	}
	produce(0)

	t.Run("lifecycle", func(t *testing.T) {
		lifecycle(t, base, "events", "billing", &driver{produce: produce, commit: commitFor("billing")})
	})
	t.Run("stall", func(t *testing.T) {
		publish(events.MembersSubject("runnel", "events"), events.Members{Group: "stuck", Members: []events.Member{
			{ClientID: "stuck-consumer", ClientHost: "/127.0.0.1", Assignments: map[string][]int32{"orders": {0}}}}})
		at := leo
		seen, gs := until(t, base, "events", "stuck", "ERR/STALL", func() { produce(20); commitFor("stuck")(at) })
		p := gs.Status.Partitions[0]
		if p.End == nil || p.End.Offset != at || p.CurrentLag == 0 {
			t.Errorf("STALL answer %+v", gs)
		}
		t.Logf("stuck: %v", seen)
	})
}

// TestKafkaCommitLogScenario reads commits the way lagmon reads a real
// Kafka's: from the __consumer_offsets topic. kfake has no such topic of its
// own, so the test creates one and writes Kafka's binary commit and
// group-metadata records into it (encoded by kmsg), as a Kafka broker would;
// the "auto" source must notice the topic and switch from polling to
// reading it.
func TestKafkaCommitLogScenario(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", "__consumer_offsets"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	addr := fake.ListenAddrs()[0]
	base := startMonitor(t, scenarioStorage+`
[cluster.kafka]
servers = ["`+addr+`"]
offset-refresh = "100ms"
`)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	produce := func(n int64) {
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Topic: "orders", Value: []byte("x")}
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	writeLog := func(key, value []byte) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Key: key, Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(off int64) {
		k := kmsg.NewOffsetCommitKey()
		k.Version, k.Group, k.Topic, k.Partition = 1, "billing", "orders", 0
		v := kmsg.NewOffsetCommitValue()
		v.Version, v.Offset, v.CommitTimestamp, v.LeaderEpoch = 3, off, time.Now().UnixMilli(), -1
		writeLog(k.AppendTo(nil), v.AppendTo(nil))
	}
	// The group's metadata: one member owning partition 0.
	a := kmsg.NewConsumerMemberAssignment()
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = "orders", []int32{0}
	a.Topics = append(a.Topics, at)
	gk := kmsg.NewGroupMetadataKey()
	gk.Version, gk.Group = 2, "billing"
	gv := kmsg.NewGroupMetadataValue()
	gv.Version, gv.ProtocolType, gv.Generation = 3, "consumer", 1
	m := kmsg.NewGroupMetadataValueMember()
	m.MemberID, m.ClientID, m.ClientHost, m.Assignment = "m-1", "billing-consumer", "/10.1.2.3", a.AppendTo(nil)
	gv.Members = append(gv.Members, m)

	d := &driver{produce: produce, commit: commit}
	seen, _ := until(t, base, "kafka", "billing", "WARN/WARN", d.step(20, 10))
	t.Logf("billing: %v", seen)
	writeLog(gk.AppendTo(nil), gv.AppendTo(nil))
	seen, gs := until(t, base, "kafka", "billing", "OK/OK", d.step(0, 1<<40))
	t.Logf("billing: %v", seen)
	deadline := time.Now().Add(10 * time.Second)
	for p := gs.Status.Partitions[0]; p.Owner != "/10.1.2.3" || p.ClientID != "billing-consumer"; p = gs.Status.Partitions[0] {
		if time.Now().After(deadline) {
			t.Fatalf("owner never set from group metadata: %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
		_, gs = lagOf(t, base, "kafka", "billing")
	}
	// A group-metadata record with no members clears the owners.
	gv.Members = nil
	writeLog(gk.AppendTo(nil), gv.AppendTo(nil))
	for p := gs.Status.Partitions[0]; p.Owner != ""; p = gs.Status.Partitions[0] {
		if time.Now().After(deadline) {
			t.Fatalf("owner not cleared: %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
		_, gs = lagOf(t, base, "kafka", "billing")
	}
	seen, _ = until(t, base, "kafka", "billing", "ERR/STOP", d.step(20, -1))
	t.Logf("billing: %v", seen)
}
