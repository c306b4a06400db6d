// Command kbench measures a Runnel broker against franz-go's in-memory
// kfake in the same run, with the same franz-go producer and consumer: for
// 100-byte and 1 KiB records (random, uncompressed) on a 6-partition topic
// with acks=1 it prints
// records/s, MB/s and the p50/p99 produce latency of each, and the
// Runnel/kfake ratio.
//
// By default it starts everything itself: a runnel-coordinator process
// (built from ../coordinator, or --coordinator-bin) and a broker inside this
// process writing to a temporary directory with the file backend, so that
// both brokers share the process with the client, as kfake must.
// --storage memory links the memory backend in instead; --storage-plugin
// runs the backend as a plugin process, which measures the cost of the
// process boundary. Pass
// --coordinator to use a running coordinator or --broker to measure a
// running broker instead. --groups measures consumer groups instead
// (groups.go): a 3-member group's consumption throughput and its p50
// rebalance time when a third member joins. --cluster measures
// replication instead (cluster.go).
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/node"
)

type options struct {
	records     int
	duration    time.Duration
	partitions  int
	sizes       []int
	broker      string
	coordinator string
	coordBin    string
	storage     string
	plugin      string
	tailCache   int
	rounds      int
	groups      bool
	cluster     bool
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 1_000_000, "records per run (each run also stops at --duration)")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "longest produce or consume phase")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions of the benchmark topic")
	flag.StringVar(&o.broker, "broker", "", "measure this running broker (HOST:PORT) instead of starting one")
	flag.StringVar(&o.coordinator, "coordinator", "", "use this running coordinator instead of starting one")
	flag.StringVar(&o.coordBin, "coordinator-bin", "", "runnel-coordinator binary (default: build ../coordinator)")
	flag.StringVar(&o.storage, "storage", "file", "storage backend of the started broker, linked in: file or memory")
	flag.StringVar(&o.plugin, "storage-plugin", "", "run the started broker's storage as this plugin process instead (NAME or PATH, as runnel-broker --storage-plugin)")
	flag.IntVar(&o.tailCache, "storage-tail-cache-bytes", 0, "per-partition tail cache of a plugin-process backend (0: the broker's default; negative: off)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per size, alternating which target goes first; the best round of each target counts")
	flag.BoolVar(&o.groups, "groups", false, "measure consumer groups instead (groups.go): a 3-member group's consumption throughput and p50 rebalance time")
	flag.BoolVar(&o.cluster, "cluster", false, "measure replication instead (cluster.go): three broker processes at replication factor 3 with acks=all and at replication factor 1, against one broker with acks=1")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kbench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	o.sizes = []int{100, 1024}
	if err := run(o); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "kbench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	if o.cluster {
		return runCluster(ctx, o)
	}
	addr := o.broker
	if addr == "" {
		stop, a, err := startRunnel(ctx, o)
		if err != nil {
			return err
		}
		defer stop()
		addr = a
	}
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer fake.Close()
	if o.groups {
		return runGroups(ctx, []string{addr, fake.ListenAddrs()[0]}, o)
	}
	fmt.Printf("kbench: franz-go producer+consumer, acks=1, %d partitions, up to %d records or %s per phase, best of %d rounds\n", o.partitions, o.records, o.duration, o.rounds)
	if o.broker == "" {
		fmt.Printf("runnel storage: %s\n", storageMode(o))
	}
	fmt.Println("latency: produce = Produce call to acknowledgement; consume = one PollFetches")
	fmt.Printf("%-6s %-8s %-7s %12s %9s %9s %9s\n", "size", "phase", "target", "records/s", "MB/s", "p50", "p99")
	targets := []string{addr, fake.ListenAddrs()[0]}
	for _, size := range o.sizes {
		var best [2][2]result // [target][phase]
		for round := 0; round < o.rounds; round++ {
			for k := range targets {
				i := (k + round) % len(targets) // alternate who goes first: load on a shared machine drifts
				topic := fmt.Sprintf("kbench-%d-%d", size, time.Now().UnixNano())
				if err := createTopic(ctx, targets[i], topic, o.partitions); err != nil {
					return err
				}
				p, err := produce(ctx, targets[i], topic, size, o)
				if err != nil {
					return err
				}
				c, err := consume(ctx, targets[i], topic, p.records, o)
				if err != nil {
					return err
				}
				for ph, r := range []result{p, c} {
					if best[i][ph].records == 0 || r.rate() > best[i][ph].rate() {
						best[i][ph] = r
					}
				}
			}
		}
		for ph, phase := range []string{"produce", "consume"} {
			for i, name := range []string{"runnel", "kfake"} {
				r := best[i][ph]
				fmt.Printf("%-6d %-8s %-7s %12.0f %9.1f %9s %9s\n", size, phase, name, r.rate(), r.mbps(size), fmtDur(r.p50), fmtDur(r.p99))
			}
			fmt.Printf("%-6d %-8s %-7s %11.2fx %8.2fx\n", size, phase, "ratio", best[0][ph].rate()/best[1][ph].rate(), best[0][ph].mbps(size)/best[1][ph].mbps(size))
		}
	}
	return nil
}

type result struct {
	records  int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r result) rate() float64         { return float64(r.records) / r.elapsed.Seconds() }
func (r result) mbps(size int) float64 { return r.rate() * float64(size) / 1e6 }

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Microsecond).String()
}

func createTopic(ctx context.Context, addr, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err != nil {
		return fmt.Errorf("create topic on %s: %w", addr, err)
	}
	return resp.Err
}

// produce sends records with acks=1 as fast as the client allows and
// records each one's latency from Produce to its acknowledgement.
func produce(ctx context.Context, addr, topic string, size int, o options) (result, error) {
	return produceWith(ctx, []string{addr}, topic, size, o, kgo.LeaderAck())
}

// produceWith is produce with the given acks (acks=all with idempotence,
// franz-go's default, as a Kafka producer would use it) to a cluster.
func produceWith(ctx context.Context, seeds []string, topic string, size int, o options, acks kgo.Acks) (result, error) {
	addr := seeds[0]
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(250_000), kgo.ProducerBatchMaxBytes(1 << 20)}
	if acks != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	// Random values: the records are not compressed (as in the anchors
	// measured against kfake), so every byte travels and is stored.
	value := make([]byte, size)
	_, _ = rand.Read(value)
	lat := make([]time.Duration, o.records)
	var failed atomic.Value
	var acked atomic.Int64
	start := time.Now()
	deadline := start.Add(o.duration)
	sent := 0
	for ; sent < o.records; sent++ {
		if sent%1024 == 0 && time.Now().After(deadline) {
			break
		}
		i := sent
		t0 := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
			lat[i] = time.Since(t0)
			acked.Add(1)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return result{}, err
	}
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		return result{}, fmt.Errorf("produce to %s: %w", addr, err)
	}
	lat = lat[:sent]
	slices.Sort(lat)
	return result{records: sent, elapsed: elapsed, p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}, nil
}

// consume reads the topic from the start until want records arrived and
// records the latency of each poll that returned data.
func consume(ctx context.Context, addr, topic string, want int, o options) (result, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(50<<20))
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, o.duration+30*time.Second)
	defer cancel()
	start := time.Now()
	n := 0
	var polls []time.Duration
	for n < want {
		t0 := time.Now()
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return result{}, fmt.Errorf("consume from %s after %d records: %w", addr, n, err)
		}
		polls = append(polls, time.Since(t0))
		n += fs.NumRecords()
	}
	elapsed := time.Since(start)
	slices.Sort(polls)
	return result{records: n, elapsed: elapsed, p50: polls[len(polls)/2], p99: polls[len(polls)*99/100]}, nil
}

// startRunnel starts a coordinator (unless one is given) and a broker in
// this process, and returns a function that stops both.
func startRunnel(ctx context.Context, o options) (func(), string, error) {
	dir, err := os.MkdirTemp("", "kbench-")
	if err != nil {
		return nil, "", err
	}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		os.RemoveAll(dir)
	}
	coord := o.coordinator
	if coord == "" {
		bin := o.coordBin
		if bin == "" {
			bin = filepath.Join(dir, "runnel-coordinator")
			if err := goBuild(bin, "../coordinator", "./cmd/runnel-coordinator"); err != nil {
				stop()
				return nil, "", err
			}
		}
		port, err := freePort()
		if err != nil {
			stop()
			return nil, "", err
		}
		coord = fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(bin, "--listen", coord, "--data-dir", filepath.Join(dir, "coordinator"))
		if err := cmd.Start(); err != nil {
			stop()
			return nil, "", fmt.Errorf("start coordinator: %w", err)
		}
		stops = append(stops, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if err := waitPort(coord, 10*time.Second); err != nil {
			stop()
			return nil, "", err
		}
	}
	b, err := node.New(node.Params{
		Config: node.Config{ID: 1, Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "broker"), Coordinator: coord, Storage: o.storage,
			StoragePlugin: o.plugin, StorageTailCache: o.tailCache},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		stop()
		return nil, "", err
	}
	if err := b.Start(ctx); err != nil {
		stop()
		return nil, "", fmt.Errorf("start broker: %w", err)
	}
	var once sync.Once
	stops = append(stops, func() { once.Do(func() { _ = b.Stop(context.Background()) }) })
	return stop, b.Addr(), nil
}

// storageMode describes how the started broker keeps its logs.
func storageMode(o options) string {
	if o.plugin == "" {
		return o.storage + ", linked in"
	}
	mode := filepath.Base(o.plugin) + " as a plugin process"
	switch {
	case o.tailCache < 0:
		mode += ", no tail cache"
	case o.tailCache > 0:
		mode += fmt.Sprintf(", %d-byte tail cache per partition", o.tailCache)
	}
	return mode
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, d)
}
