package compat

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestStoragePluginModes runs the real clients against a broker whose
// storage backend is a plugin process, for each backend: franz-go
// (idempotent, acks=all), kcat (librdkafka), kafka-python and
// confluent-kafka. A topic naming another backend in
// runnel.storage.backend gets it, linked in, beside the plugin's topics.
// (The whole suite runs in a plugin mode with RUNNEL_TEST_STORAGE_PLUGIN.)
func TestStoragePluginModes(t *testing.T) {
	for _, name := range []string{"file", "memory"} {
		t.Run(name, func(t *testing.T) {
			c := startCluster(t, brokertest.BrokerOptions{StoragePlugin: name, Settings: []string{"num.partitions=3"}})
			ctx := brokertest.Context(t, 3*time.Minute)
			if !strings.Contains(c.broker.Log(), "storage="+name) {
				t.Fatalf("the broker does not report storage %s:\n%s", name, c.broker.Log())
			}
			t.Run("franz-go", func(t *testing.T) { franzRoundTrip(t, ctx, c, uniqueTopic("plugin-franz"), nil) })
			t.Run("kcat", func(t *testing.T) { kcatRoundTrip(t, ctx, c) })
			t.Run("kafka-python", func(t *testing.T) {
				py := brokertest.Python(t, "kafka", "python3-kafka")
				lines := runPython(t, py, kafkaPythonScript, c.broker.Addr, uniqueTopic("plugin-kafka-python"), "150")
				checkPyRecords(t, lines, 150, true)
			})
			t.Run("confluent-kafka", func(t *testing.T) {
				py := brokertest.Python(t, "confluent_kafka", "python3-confluent-kafka")
				lines := runPython(t, py, confluentScript, c.broker.Addr, uniqueTopic("plugin-confluent"), "150")
				checkPyRecords(t, lines[1:], 150, true)
			})
			t.Run("topic-backend", func(t *testing.T) {
				// The other backend, linked in, for one topic.
				other := map[string]string{"file": "memory", "memory": "file"}[name]
				topic := uniqueTopic("plugin-" + other)
				franzRoundTrip(t, ctx, c, topic, map[string]*string{"runnel.storage.backend": &other})
				hasLog := len(segmentFiles(t, c.broker.Dir, topic)) > 0
				if hasLog != (other == "file") {
					t.Fatalf("topic on %s: segment files present = %v", other, hasLog)
				}
			})
		})
	}
}

// franzRoundTrip creates topic, produces keyed records with franz-go's
// defaults and reads them back in order.
func franzRoundTrip(t *testing.T, ctx context.Context, c *cluster, topic string, configs map[string]*string) {
	t.Helper()
	const partitions, n = 3, 500
	c.createTopic(t, ctx, topic, partitions, configs)
	cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	var want []record
	for i := 0; i < n; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i%31)), Value: []byte(fmt.Sprintf("value-%d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		want = append(want, record{key: string(r.Key), value: string(r.Value), partition: r.Partition})
	}
	checkOrder(t, want, consumeAll(t, ctx, c, topic, n))
}

// kcatRoundTrip produces with kcat from stdin and consumes to the end.
func kcatRoundTrip(t *testing.T, ctx context.Context, c *cluster) {
	kcat := brokertest.Kcat(t)
	topic := uniqueTopic("plugin-kcat")
	c.createTopic(t, ctx, topic, 3, nil)
	var in bytes.Buffer
	const n = 200
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "k%d:v%d\n", i%13, i)
	}
	prod := exec.CommandContext(ctx, kcat, "-b", c.broker.Addr, "-P", "-t", topic, "-K:")
	prod.Stdin = &in
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, kcat, "-b", c.broker.Addr, "-C", "-t", topic, "-e", "-q", "-f", "%k:%s\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	for i := 0; i < n; i++ {
		if l := fmt.Sprintf("k%d:v%d", i%13, i); !seen[l] {
			t.Fatalf("kcat did not read back %q (read %d lines)", l, len(lines))
		}
	}
}

// pluginPids returns the processes running the binary at path.
func pluginPids(t *testing.T, path string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("listing processes: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if argv0, _, _ := bytes.Cut(cmd, []byte{0}); string(argv0) == path {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestStoragePluginKillDuringLoad kills the file storage plugin process
// with SIGKILL while an acks=1 producer is busy. The broker stays up: the
// partitions fail retriably while the plugin is gone, the broker starts it
// again and reopens them, the producer carries on, and every record
// acknowledged before, during and after the crash is read back.
func TestStoragePluginKillDuringLoad(t *testing.T) {
	// A private copy of the binary, so that the process to kill is ours.
	bin := filepath.Join(t.TempDir(), "runnel-storage-file")
	src, err := os.ReadFile(brokertest.StoragePlugin(t, "file"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{"log.segment.bytes=65536"}, Args: []string{"--storage-plugin", bin}})
	ctx := brokertest.Context(t, 3*time.Minute)
	topic := uniqueTopic("plugin-kill")
	c.createTopic(t, ctx, topic, 3, nil)

	cl := c.client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	var mu sync.Mutex
	acked := map[string]int64{}
	var failed int
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; loadCtx.Err() == nil; i++ {
			v := fmt.Sprintf("r%07d", i)
			cl.Produce(loadCtx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					acked[string(r.Value)] = r.Offset
				case loadCtx.Err() == nil:
					failed++ // not for the records the end of the load cancels
				}
			})
			if i%200 == 0 {
				time.Sleep(time.Millisecond) // a steady load, not an unbounded one
			}
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitAcked := func(n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d records acknowledged, want %d; broker log:\n%s", count(), n, c.broker.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAcked(20000)
	pids := pluginPids(t, bin)
	if len(pids) != 1 {
		t.Fatalf("want one plugin process running %s, found %v", bin, pids)
	}
	p, err := os.FindProcess(pids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("kill -9 %d: %v", pids[0], err)
	}
	before := count()
	t.Logf("killed plugin process %d with %d records acknowledged", pids[0], before)
	// The producer keeps going through the restart.
	waitAcked(before + 20000)
	stopLoad()
	wg.Wait()
	_ = cl.Flush(ctx)
	after := pluginPids(t, bin)
	if len(after) != 1 || after[0] == pids[0] {
		t.Fatalf("plugin processes after the kill: %v (killed %d)", after, pids[0])
	}
	mu.Lock()
	snapshot := make(map[string]int64, len(acked))
	for k, v := range acked {
		snapshot[k] = v
	}
	t.Logf("%d records acknowledged in all, %d failed around the kill (franz-go retries NOT_LEADER_OR_FOLLOWER itself)", len(snapshot), failed)
	mu.Unlock()

	cons := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	seen := map[string]bool{}
	found, idle := 0, 0
	for found < len(snapshot) && idle < 25 {
		pctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
		fs := cons.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			idle++
		}
		fs.EachRecord(func(r *kgo.Record) {
			if off, ok := snapshot[string(r.Value)]; ok && !seen[string(r.Value)] && off == r.Offset {
				seen[string(r.Value)] = true
				found++
			}
		})
	}
	if found != len(snapshot) {
		missing := 0
		for k, off := range snapshot {
			if !seen[k] {
				missing++
				if missing < 5 {
					t.Errorf("acknowledged record %s (offset %d) is not at its offset", k, off)
				}
			}
		}
		t.Fatalf("%d of %d acknowledged records missing after the plugin crash; broker log:\n%s", missing, len(snapshot), c.broker.Log())
	}
}
