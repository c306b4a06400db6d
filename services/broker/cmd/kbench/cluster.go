package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusterCase is one configuration --cluster measures.
type clusterCase struct {
	name  string
	seeds func(c *benchCluster) []string
	rf    int16
	acks  kgo.Acks
}

// runCluster measures replication: the same franz-go producer writes to
// three broker processes sharing one coordinator at replication factor 3
// with acks=all (and min.insync.replicas=2), and at replication factor 1
// with acks=all, and to a lone broker with acks=1, the baseline every
// ratio is against. Then a consumer reads each topic back. All brokers run
// on this machine, so the three-broker cases share its cores with the
// baseline's one broker: the ratios show the cost of replication on one
// box, not of a network.
func runCluster(ctx context.Context, o options) error {
	c, err := startBenchCluster(ctx, o)
	if err != nil {
		return err
	}
	defer c.stop()
	cases := []clusterCase{
		{"1 broker, acks=1", func(c *benchCluster) []string { return c.single }, 1, kgo.LeaderAck()},
		{"3 brokers, rf=1, acks=all", func(c *benchCluster) []string { return c.three }, 1, kgo.AllISRAcks()},
		{"3 brokers, rf=3, acks=all", func(c *benchCluster) []string { return c.three }, 3, kgo.AllISRAcks()},
	}
	fmt.Printf("kbench cluster: franz-go producer+consumer, %d partitions, broker processes on one machine, up to %d records or %s per phase, best of %d rounds\n",
		o.partitions, o.records, o.duration, o.rounds)
	fmt.Println("latency: produce = Produce call to acknowledgement; consume = one PollFetches")
	fmt.Printf("%-6s %-8s %-26s %12s %9s %9s %9s %8s\n", "size", "phase", "case", "records/s", "MB/s", "p50", "p99", "ratio")
	for _, size := range o.sizes {
		best := make([][2]result, len(cases))
		for round := 0; round < o.rounds; round++ {
			for k := range cases {
				i := (k + round) % len(cases) // alternate the order: load on a shared machine drifts
				cs := cases[i]
				seeds := cs.seeds(c)
				topic := fmt.Sprintf("kbench-cluster-%d-%d", size, time.Now().UnixNano())
				if err := createReplicated(ctx, seeds, topic, o.partitions, cs.rf); err != nil {
					return err
				}
				p, err := produceWith(ctx, seeds, topic, size, o, cs.acks)
				if err != nil {
					return fmt.Errorf("%s: %w", cs.name, err)
				}
				r, err := consume(ctx, seeds[0], topic, p.records, o)
				if err != nil {
					return fmt.Errorf("%s: %w", cs.name, err)
				}
				for ph, x := range []result{p, r} {
					if best[i][ph].records == 0 || x.rate() > best[i][ph].rate() {
						best[i][ph] = x
					}
				}
			}
		}
		for ph, phase := range []string{"produce", "consume"} {
			for i, cs := range cases {
				r := best[i][ph]
				fmt.Printf("%-6d %-8s %-26s %12.0f %9.1f %9s %9s %7.2fx\n", size, phase, cs.name, r.rate(), r.mbps(size),
					fmtDur(r.p50), fmtDur(r.p99), r.rate()/best[0][ph].rate())
			}
		}
	}
	return nil
}

// createReplicated creates a topic and waits until every partition has a
// leader and a full ISR.
func createReplicated(ctx context.Context, seeds []string, topic string, partitions int, rf int16) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cfg := map[string]*string{}
	if rf > 1 {
		two := "2"
		cfg["min.insync.replicas"] = &two
	}
	resp, err := adm.CreateTopic(ctx, int32(partitions), rf, cfg, topic)
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	if resp.Err != nil {
		return fmt.Errorf("create topic: %w", resp.Err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td := md.Topics[topic]
			ready := len(td.Partitions) == partitions
			for _, p := range td.Partitions {
				ready = ready && p.Leader >= 0 && len(p.ISR) == int(rf)
			}
			if ready {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("topic %s: no full ISR after 30s", topic)
}

// benchCluster is a coordinator, three broker processes under one chroot
// and a lone broker under another.
type benchCluster struct {
	dir    string
	procs  []*exec.Cmd
	three  []string
	single []string
}

func startBenchCluster(ctx context.Context, o options) (*benchCluster, error) {
	dir, err := os.MkdirTemp("", "kbench-cluster-")
	if err != nil {
		return nil, err
	}
	c := &benchCluster{dir: dir}
	coordBin := o.coordBin
	if coordBin == "" {
		coordBin = filepath.Join(dir, "runnel-coordinator")
		if err := goBuild(coordBin, "../coordinator", "./cmd/runnel-coordinator"); err != nil {
			c.stop()
			return nil, err
		}
	}
	brokerBin := filepath.Join(dir, "runnel-broker")
	if err := goBuild(brokerBin, ".", "./cmd/runnel-broker"); err != nil {
		c.stop()
		return nil, err
	}
	coord := o.coordinator
	if coord == "" {
		port, err := freePort()
		if err != nil {
			c.stop()
			return nil, err
		}
		coord = "127.0.0.1:" + strconv.Itoa(port)
		if err := c.start(coordBin, "--listen", coord, "--data-dir", filepath.Join(dir, "coordinator")); err != nil {
			return nil, err
		}
		if err := waitPort(coord, 10*time.Second); err != nil {
			c.stop()
			return nil, err
		}
	}
	broker := func(chroot string, id int) (string, error) {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		err = c.start(brokerBin, "--id", strconv.Itoa(id), "--listen", addr, "--coordinator", coord+chroot,
			"--data-dir", filepath.Join(dir, fmt.Sprintf("%s-%d", chroot[1:], id)), "--log-level", "warn")
		if err != nil {
			return "", err
		}
		return addr, waitPort(addr, 30*time.Second)
	}
	for id := 1; id <= 3; id++ {
		addr, err := broker("/three", id)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.three = append(c.three, addr)
	}
	addr, err := broker("/single", 1)
	if err != nil {
		c.stop()
		return nil, err
	}
	c.single = []string{addr}
	// Every broker registered and the controllers settled.
	time.Sleep(time.Second)
	return c, nil
}

func (c *benchCluster) start(bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		c.stop()
		return fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

func (c *benchCluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		_ = c.procs[i].Process.Kill()
		_ = c.procs[i].Wait()
	}
	os.RemoveAll(c.dir)
}

func goBuild(out, dir, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s (run kbench from services/broker): %w\n%s", pkg, err, b)
	}
	return nil
}
