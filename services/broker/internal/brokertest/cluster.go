package brokertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Coordinators are the two kinds of coordinator a cluster test runs
// against: Runnel's own and Apache ZooKeeper 3.8.
var Coordinators = []string{"runnel", "zookeeper"}

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	Brokers int // default 3
	// Coordinator is "runnel" (default) or "zookeeper".
	Coordinator string
	// Settings are --config values of every broker, after the cluster
	// defaults (ClusterSettings).
	Settings []string
	// Lab, when set, runs each broker in a network namespace of its own
	// and the coordinator on the lab's bridge address.
	Lab *Lab
	// Racks gives broker i (from 1) the rack Racks[i-1].
	Racks []string
}

// ClusterSettings are the settings every cluster test broker gets: short
// timeouts so that failures are detected within seconds, and no delay
// before a new group's first rebalance.
var ClusterSettings = []string{
	"zookeeper.session.timeout.ms=6000",
	"replica.lag.time.max.ms=3000",
	"controlled.shutdown.retry.backoff.ms=300",
	"replica.fetch.backoff.ms=200",
	"group.initial.rebalance.delay.ms=0",
}

// Cluster is a coordinator and brokers 1..n, real processes.
type Cluster struct {
	t       testing.TB
	Coord   *Process
	Brokers []*Process // Brokers[i] is broker i+1
	Hosts   []*Host    // with a Lab: Hosts[i] is broker i+1's namespace
}

// StartCluster starts a coordinator and the brokers.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Brokers == 0 {
		o.Brokers = 3
	}
	host := "127.0.0.1"
	if o.Lab != nil {
		host = o.Lab.Addr
	}
	c := &Cluster{t: t}
	if o.Coordinator == "zookeeper" {
		c.Coord = ZooKeeperAt(t, host)
	} else {
		c.Coord = CoordinatorAt(t, host)
	}
	for i := 1; i <= o.Brokers; i++ {
		bo := BrokerOptions{ID: i, Settings: append(slices.Clone(ClusterSettings), o.Settings...)}
		if o.Lab != nil {
			h := o.Lab.Host()
			c.Hosts = append(c.Hosts, h)
			bo.Host = h
		}
		if i <= len(o.Racks) {
			bo.Args = append(bo.Args, "--rack", o.Racks[i-1])
		}
		c.Brokers = append(c.Brokers, StartBroker(t, c.Coord.Addr, bo))
	}
	return c
}

// Broker returns broker id's process.
func (c *Cluster) Broker(id int32) *Process { return c.Brokers[id-1] }

// Seeds are the brokers' addresses.
func (c *Cluster) Seeds() []string {
	out := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		out[i] = b.Addr
	}
	return out
}

// Client returns a franz-go client of the cluster, seeded with the brokers
// running now, closed when the test ends.
func (c *Cluster) Client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.liveSeeds()...), kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client of the cluster.
func (c *Cluster) Admin() *kadm.Client { return kadm.NewClient(c.Client()) }

// CreateTopic creates a topic and waits until every partition has a
// leader and a full ISR.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int32, rf int16, configs map[string]*string) {
	c.t.Helper()
	resp, err := c.Admin().CreateTopic(ctx, partitions, rf, configs, topic)
	if err != nil || resp.Err != nil {
		c.t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
	c.WaitFor(30*time.Second, "a leader and a full ISR for every partition of "+topic, func(td kadm.TopicDetail) bool {
		for _, p := range td.Partitions {
			if p.Leader < 0 || len(p.ISR) != int(rf) {
				return false
			}
		}
		return len(td.Partitions) == int(partitions)
	}, topic)
}

// Topic describes one topic through a fresh metadata request to any
// running broker (whose view may be stale: a broker cut off from the
// coordinator keeps its last one).
func (c *Cluster) Topic(ctx context.Context, topic string) (kadm.TopicDetail, error) {
	return c.topicFrom(ctx, c.liveSeeds(), topic)
}

func (c *Cluster) topicFrom(ctx context.Context, seeds []string, topic string) (kadm.TopicDetail, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DialTimeout(time.Second), kgo.RequestRetries(1),
		kgo.RetryTimeout(2*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return kadm.TopicDetail{}, fmt.Errorf("no topic %s in metadata", topic)
	}
	return td, td.Err
}

// liveSeeds are the addresses of the brokers whose process runs.
func (c *Cluster) liveSeeds() []string {
	var out []string
	for _, b := range c.Brokers {
		if b.Running() {
			out = append(out, b.Addr)
		}
	}
	if len(out) == 0 {
		return c.Seeds()
	}
	return out
}

// WaitFor polls the topic's metadata until ok holds, failing the test
// after d with the last metadata seen.
func (c *Cluster) WaitFor(d time.Duration, what string, ok func(kadm.TopicDetail) bool, topic string) kadm.TopicDetail {
	c.t.Helper()
	return c.waitFor(d, what, ok, topic, nil)
}

// WaitForFrom is WaitFor asking broker id only.
func (c *Cluster) WaitForFrom(id int32, d time.Duration, what string, ok func(kadm.TopicDetail) bool, topic string) kadm.TopicDetail {
	c.t.Helper()
	return c.waitFor(d, what, ok, topic, []string{c.Broker(id).Addr})
}

func (c *Cluster) waitFor(d time.Duration, what string, ok func(kadm.TopicDetail) bool, topic string, seeds []string) kadm.TopicDetail {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var last kadm.TopicDetail
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s := seeds
		if s == nil {
			s = c.liveSeeds()
		}
		td, err := c.topicFrom(ctx, s, topic)
		cancel()
		if err == nil && ok(td) {
			return td
		}
		last, lastErr = td, err
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("no %s after %s: last metadata %s (err %v)", what, d, DescribePartitions(last), lastErr)
	return last
}

// DescribePartitions renders a topic's partitions as kafka-topics.sh
// --describe would, for failure messages.
func DescribePartitions(td kadm.TopicDetail) string {
	s := ""
	for _, p := range td.Partitions.Sorted() {
		s += fmt.Sprintf("[p%d leader %d epoch %d replicas %v isr %v err %v] ", p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, p.Err)
	}
	return s
}

// Leader returns a partition's leader from td (-1 when none).
func Leader(td kadm.TopicDetail, partition int32) int32 {
	if p, ok := td.Partitions[partition]; ok {
		return p.Leader
	}
	return -1
}
