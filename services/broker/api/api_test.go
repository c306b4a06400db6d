package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/plugins/storage/memory"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/config"
	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/metadata"
	"github.com/runnel-io/runnel/services/broker/replica"
	"github.com/runnel-io/runnel/services/broker/wire"
)

// fakeCluster is an in-memory Cluster of one live broker (1) that is the
// controller; it keeps the replica manager in step, as the node does.
type fakeCluster struct {
	mu       sync.Mutex
	topics   map[string]*metadata.Topic
	replicas *replica.Manager
	groups   *group.Coordinator
	nextPID  int64
}

// sync applies the metadata to the replicas and the group coordinator,
// as the node does on every change.
func (c *fakeCluster) sync() error {
	if err := c.replicas.Sync(context.Background(), c.Topics()); err != nil {
		return err
	}
	if c.groups != nil {
		var led []int32
		if t, ok := c.Topic(group.Topic); ok {
			c.groups.SetPartitions(int32(len(t.Partitions)))
			for _, p := range t.Partitions {
				led = append(led, p.ID)
			}
		}
		c.groups.Sync(led)
	}
	return nil
}

func (c *fakeCluster) ClusterID() string   { return "fake-cluster" }
func (c *fakeCluster) ControllerID() int32 { return 1 }
func (c *fakeCluster) Brokers() []metadata.Broker {
	return []metadata.Broker{{ID: 1, Host: "127.0.0.1", Port: 9092}}
}

func (c *fakeCluster) Topic(name string) (*metadata.Topic, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.topics[name]
	return t, ok
}

func (c *fakeCluster) Topics() []*metadata.Topic {
	c.mu.Lock()
	out := slices.Collect(maps.Values(c.topics))
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *fakeCluster) CreateTopic(_ context.Context, spec metadata.Spec) error {
	c.mu.Lock()
	if _, ok := c.topics[spec.Name]; ok {
		c.mu.Unlock()
		return metadata.ErrTopicExists
	}
	t := &metadata.Topic{Name: spec.Name, Config: spec.Config}
	for i, r := range spec.Assignment {
		t.Partitions = append(t.Partitions, metadata.Partition{Topic: spec.Name, ID: int32(i), Replicas: r, Leader: r[0], ISR: r})
	}
	c.topics[spec.Name] = t
	c.mu.Unlock()
	return c.sync()
}

func (c *fakeCluster) DeleteTopic(_ context.Context, name string) error {
	c.mu.Lock()
	if _, ok := c.topics[name]; !ok {
		c.mu.Unlock()
		return metadata.ErrNoTopic
	}
	delete(c.topics, name)
	c.mu.Unlock()
	return c.sync()
}

func (c *fakeCluster) AddPartitions(_ context.Context, topic string, add [][]int32) error {
	c.mu.Lock()
	old := c.topics[topic]
	t := &metadata.Topic{Name: topic, Config: old.Config, Partitions: slices.Clone(old.Partitions)}
	for _, r := range add {
		t.Partitions = append(t.Partitions, metadata.Partition{Topic: topic, ID: int32(len(t.Partitions)), Replicas: r, Leader: r[0], ISR: r})
	}
	c.topics[topic] = t
	c.mu.Unlock()
	return c.sync()
}

func (c *fakeCluster) SetTopicConfig(_ context.Context, topic string, cfg map[string]string) error {
	c.mu.Lock()
	old := c.topics[topic]
	c.topics[topic] = &metadata.Topic{Name: topic, Config: cfg, Partitions: old.Partitions}
	c.mu.Unlock()
	return c.sync()
}

func (c *fakeCluster) NextProducerID(context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextPID++
	return c.nextPID, nil
}

func newHandlers(t *testing.T, backend string, settings map[string]string) (*Handlers, *fakeCluster) {
	t.Helper()
	dir := t.TempDir()
	var b storage.Backend = memory.New()
	if backend == "file" {
		b = file.New(dir)
	}
	bc, err := config.NewBroker(settings)
	if err != nil {
		t.Fatal(err)
	}
	m := replica.NewManager(replica.Params{BrokerID: 1, DataDir: dir, Backend: b, Broker: bc})
	t.Cleanup(func() { m.Close(); b.Close() })
	c := &fakeCluster{topics: map[string]*metadata.Topic{}, replicas: m}
	c.groups = group.New(group.Params{
		Config: group.Config{Partitions: bc.OffsetsTopicPartitions, MinSessionTimeout: bc.GroupMinSessionTimeout,
			MaxSessionTimeout: bc.GroupMaxSessionTimeout, InitialRebalanceDelay: bc.GroupInitialRebalanceDelay,
			MaxGroupSize: bc.GroupMaxSize, OffsetsRetention: bc.OffsetsRetention, MaxMetadataBytes: bc.OffsetMetadataMaxBytes},
		Store: &group.ReplicaStore{Replicas: m},
		PartitionExists: func(topic string, p int32) bool {
			t, ok := c.Topic(topic)
			return ok && p >= 0 && int(p) < len(t.Partitions)
		},
	})
	t.Cleanup(c.groups.Close)
	return New(Params{BrokerID: 1, Cluster: c, Replicas: m, Groups: c.groups, Broker: bc}), c
}

// serve runs a request through Handle and waits for its answer.
func serve[Resp kmsg.Response](t *testing.T, h *Handlers, req kmsg.Request) Resp {
	t.Helper()
	r := wire.NewRequest(req, "test")
	h.Handle(context.Background(), r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, regions, err := r.Answer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range regions {
		g.Release()
	}
	return resp.(Resp)
}

// batch is a one-record uncompressed v2 batch with the given value.
func batch(value string) []byte {
	var rec []byte
	rec = append(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, -1)
	rec = binary.AppendVarint(rec, int64(len(value)))
	rec = append(rec, value...)
	rec = binary.AppendVarint(rec, 0)
	recs := binary.AppendVarint(nil, int64(len(rec)))
	recs = append(recs, rec...)
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: recs}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func produce(t *testing.T, h *Handlers, topic string, partition int32, value string) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = 9, -1
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: partition, Records: batch(value)}}}}
	return serve[*kmsg.ProduceResponse](t, h, req).Topics[0].Partitions[0]
}

func createTopic(t *testing.T, h *Handlers, name string, partitions int32, cfg map[string]string) kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
	for k, v := range cfg {
		v := v
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
	}
	req.Topics = append(req.Topics, rt)
	return serve[*kmsg.CreateTopicsResponse](t, h, req).Topics[0]
}

func TestApiVersionsAdvertisesTheRegistry(t *testing.T) {
	h, _ := newHandlers(t, "memory", nil)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	resp := serve[*kmsg.ApiVersionsResponse](t, h, req)
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	want := map[int16][2]int16{0: {3, 9}, 1: {4, 12}, 2: {1, 5}, 3: {0, 9}, 18: {0, 3}, 19: {0, 7}, 20: {0, 5}, 21: {0, 2},
		22: {0, 4}, 23: {2, 4}, 32: {0, 4}, 33: {0, 2}, 37: {0, 3}, 44: {0, 1},
		// The controller's APIs.
		7: {1, 3}, 43: {0, 2}, 45: {0, 0}, 46: {0, 0},
		// The group APIs, each from version 0 (librdkafka needs that).
		8: {0, 8}, 9: {0, 8}, 10: {0, 4}, 11: {0, 9}, 12: {0, 4}, 13: {0, 5}, 14: {0, 5}, 15: {0, 5}, 16: {0, 4}, 42: {0, 2}, 47: {0, 0}}
	if !maps.Equal(got, want) {
		t.Fatalf("advertised %v\nwant %v", got, want)
	}
}

func TestMetadataTopicSelection(t *testing.T) {
	h, _ := newHandlers(t, "memory", map[string]string{"num.partitions": "3"})
	createTopic(t, h, "a", 2, nil)
	v0 := kmsg.NewPtrMetadataRequest()
	v0.Version = 0 // empty list: all topics
	if resp := serve[*kmsg.MetadataResponse](t, h, v0); len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("v0 all topics: %+v", resp.Topics)
	}
	v1 := kmsg.NewPtrMetadataRequest()
	v1.Version = 1
	v1.Topics = []kmsg.MetadataRequestTopic{} // empty list: no topics
	if resp := serve[*kmsg.MetadataResponse](t, h, v1); len(resp.Topics) != 0 || resp.ControllerID != 1 {
		t.Fatalf("v1 empty list: %d topics, controller %d", len(resp.Topics), resp.ControllerID)
	}
	// v4+ asks before auto-creating.
	name := "auto"
	v9 := kmsg.NewPtrMetadataRequest()
	v9.Version = 9
	v9.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	if resp := serve[*kmsg.MetadataResponse](t, h, v9); resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto-creation without AllowAutoTopicCreation: %d", resp.Topics[0].ErrorCode)
	}
	v9.AllowAutoTopicCreation = true
	resp := serve[*kmsg.MetadataResponse](t, h, v9)
	if p := resp.Topics[0].Partitions; resp.Topics[0].ErrorCode != 0 || len(p) != 3 || p[0].Leader != 1 || p[0].LeaderEpoch != 0 {
		t.Fatalf("auto-created topic: %+v", resp.Topics[0])
	}
	if *resp.ClusterID != "fake-cluster" {
		t.Fatalf("cluster id %v", resp.ClusterID)
	}
}

func TestProduceFetchAndLimits(t *testing.T) {
	for _, backend := range []string{"memory", "file"} {
		t.Run(backend, func(t *testing.T) {
			h, _ := newHandlers(t, backend, nil)
			createTopic(t, h, "t", 2, nil)
			for i := 0; i < 3; i++ {
				if p := produce(t, h, "t", 0, "value-"+string(rune('a'+i))); p.ErrorCode != 0 || p.BaseOffset != int64(i) || p.LogStartOffset != 0 {
					t.Fatalf("produce %d: %+v", i, p)
				}
			}
			if p := produce(t, h, "t", 5, "x"); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
				t.Fatalf("unknown partition: %d", p.ErrorCode)
			}
			one := len(batch("value-a"))
			fetch := func(version int16, offset int64, maxBytes, partMax int32) *kmsg.FetchResponse {
				req := kmsg.NewPtrFetchRequest()
				req.Version, req.MaxBytes, req.MaxWaitMillis = version, maxBytes, 0
				req.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{
					{Partition: 0, FetchOffset: offset, PartitionMaxBytes: partMax, CurrentLeaderEpoch: -1},
					{Partition: 1, FetchOffset: 0, PartitionMaxBytes: partMax, CurrentLeaderEpoch: -1},
				}}}
				return serve[*kmsg.FetchResponse](t, h, req)
			}
			resp := fetch(12, 0, 1<<20, 1<<20)
			p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
			if p0.ErrorCode != 0 || p0.HighWatermark != 3 || p0.LastStableOffset != 3 || p0.LogStartOffset != 0 {
				t.Fatalf("partition 0: %+v", p0)
			}
			if got := recordBytes(t, h, backend, 0, 1<<20, 1<<20); got != 3*one {
				t.Fatalf("partition 0 returned %d bytes, want %d", got, 3*one)
			}
			if p1.RecordBatches == nil || len(p1.RecordBatches) != 0 {
				t.Fatal("an empty partition must carry an empty, not null, record set")
			}
			// KIP-74: a limit smaller than one batch still returns it.
			if got := recordBytes(t, h, backend, 1, 1, 1); got != one {
				t.Fatalf("limit 1: %d bytes, want one batch (%d)", got, one)
			}
			// The response limit counts: two batches fit, the third not.
			if got := recordBytes(t, h, backend, 0, int32(2*one), 1<<20); got != 2*one {
				t.Fatalf("response limit of two batches: %d bytes", got)
			}
			if p := fetch(11, 4, 1<<20, 1<<20).Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 3 {
				t.Fatalf("past the end: %+v", p)
			}
			// A stale leader epoch is fenced.
			req := kmsg.NewPtrFetchRequest()
			req.Version = 12
			req.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: 5, PartitionMaxBytes: 100}}}}
			if p := serve[*kmsg.FetchResponse](t, h, req).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
				t.Fatalf("future epoch: %d", p.ErrorCode)
			}
		})
	}
}

func TestFetchLongPollWokenByProduce(t *testing.T) {
	h, _ := newHandlers(t, "memory", nil)
	createTopic(t, h, "t", 1, nil)
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 12, 1<<20, 1, 10_000
	req.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
	r := wire.NewRequest(req, "test")
	h.Handle(context.Background(), r)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if _, _, err := r.Answer(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the fetch answered before any data: %v", err)
	}
	cancel()
	start := time.Now()
	produce(t, h, "t", 0, "wake")
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, _, err := r.Answer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]; len(p.RecordBatches) == 0 || time.Since(start) > 4*time.Second {
		t.Fatalf("woken fetch: %d bytes", len(p.RecordBatches))
	}
}

func TestAcksZeroAndInvalidAcks(t *testing.T) {
	h, _ := newHandlers(t, "memory", nil)
	createTopic(t, h, "t", 1, nil)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = 7, 0
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: batch("x")}}}}
	r := wire.NewRequest(req, "test")
	h.Handle(context.Background(), r)
	if resp, _, err := r.Answer(context.Background()); err != nil || resp != nil {
		t.Fatalf("acks=0 answered %v %v", resp, err)
	}
	req.Acks = 5
	if p := serve[*kmsg.ProduceResponse](t, h, req).Topics[0].Partitions[0]; p.ErrorCode != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("acks=5: %d", p.ErrorCode)
	}
}

func TestCreateTopicsErrors(t *testing.T) {
	h, _ := newHandlers(t, "memory", nil)
	if rt := createTopic(t, h, "ok", 2, map[string]string{"retention.ms": "1000"}); rt.ErrorCode != 0 || rt.NumPartitions != 2 || rt.ReplicationFactor != 1 || len(rt.Configs) == 0 {
		t.Fatalf("create: %+v", rt)
	}
	cases := map[string]struct {
		name       string
		partitions int32
		cfg        map[string]string
		want       int16
	}{
		"exists":       {"ok", 1, nil, kerr.TopicAlreadyExists.Code},
		"bad name":     {"a/b", 1, nil, kerr.InvalidTopicException.Code},
		"bad config":   {"c1", 1, map[string]string{"retention.ms": "x"}, kerr.InvalidConfig.Code},
		"unknown conf": {"c2", 1, map[string]string{"nope": "1"}, kerr.InvalidConfig.Code},
		"partitions":   {"c3", 0, nil, kerr.InvalidPartitions.Code},
	}
	for what, c := range cases {
		if rt := createTopic(t, h, c.name, c.partitions, c.cfg); rt.ErrorCode != c.want {
			t.Errorf("%s: error %d, want %d", what, rt.ErrorCode, c.want)
		}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "rf", 1, 3
	req.Topics = []kmsg.CreateTopicsRequestTopic{rt}
	if code := serve[*kmsg.CreateTopicsResponse](t, h, req).Topics[0].ErrorCode; code != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("replication factor 3 on one broker: %d", code)
	}
	req.ValidateOnly = true
	req.Topics[0].ReplicationFactor = 1
	req.Topics[0].Topic = "validate"
	if code := serve[*kmsg.CreateTopicsResponse](t, h, req).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("validate only: %d", code)
	}
	if _, ok := h.cluster.Topic("validate"); ok {
		t.Fatal("validate-only created the topic")
	}
}

func TestConfigAPIs(t *testing.T) {
	h, c := newHandlers(t, "memory", map[string]string{"log.retention.ms": "5000"})
	createTopic(t, h, "t", 1, map[string]string{"cleanup.policy": "delete"})
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = resourceTopic, "t"
	v1, v2 := "compact", "2048"
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: &v1},
		{Name: "segment.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: &v2},
	}
	inc.Resources = append(inc.Resources, res)
	if code := serve[*kmsg.IncrementalAlterConfigsResponse](t, h, inc).Resources[0].ErrorCode; code != 0 {
		t.Fatalf("incremental alter: %d", code)
	}
	tp, _ := c.Topic("t")
	if tp.Config["cleanup.policy"] != "delete,compact" || tp.Config["segment.bytes"] != "2048" {
		t.Fatalf("config after incremental alter: %v", tp.Config)
	}
	desc := kmsg.NewPtrDescribeConfigsRequest()
	desc.Version, desc.IncludeSynonyms = 4, true
	desc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: resourceTopic, ResourceName: "t", ConfigNames: []string{"retention.ms", "segment.bytes"}}}
	dr := serve[*kmsg.DescribeConfigsResponse](t, h, desc).Resources[0]
	if dr.ErrorCode != 0 || len(dr.Configs) != 2 {
		t.Fatalf("describe: %+v", dr)
	}
	for _, cfg := range dr.Configs {
		switch cfg.Name {
		case "retention.ms":
			if *cfg.Value != "5000" || cfg.Source != kmsg.ConfigSourceStaticBrokerConfig || len(cfg.ConfigSynonyms) != 2 {
				t.Fatalf("retention.ms: %+v", cfg)
			}
		case "segment.bytes":
			if *cfg.Value != "2048" || cfg.Source != kmsg.ConfigSourceDynamicTopicConfig || cfg.ConfigType != kmsg.ConfigTypeInt {
				t.Fatalf("segment.bytes: %+v", cfg)
			}
		}
	}
	// AlterConfigs replaces the whole set.
	alter := kmsg.NewPtrAlterConfigsRequest()
	v3 := "100"
	alter.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: resourceTopic, ResourceName: "t",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.bytes", Value: &v3}}}}
	if code := serve[*kmsg.AlterConfigsResponse](t, h, alter).Resources[0].ErrorCode; code != 0 {
		t.Fatalf("alter: %d", code)
	}
	if tp, _ := c.Topic("t"); len(tp.Config) != 1 || tp.Config["retention.bytes"] != "100" {
		t.Fatalf("config after alter: %v", tp.Config)
	}
	alter.Resources[0].ResourceType = resourceBroker
	alter.Resources[0].ResourceName = "1"
	if code := serve[*kmsg.AlterConfigsResponse](t, h, alter).Resources[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Fatalf("alter broker: %d", code)
	}
}

func TestPartitionsRecordsAndProducerIDs(t *testing.T) {
	h, c := newHandlers(t, "memory", nil)
	createTopic(t, h, "t", 1, nil)
	for i := 0; i < 5; i++ {
		produce(t, h, "t", 0, "v")
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "t", Count: 3}}
	if code := serve[*kmsg.CreatePartitionsResponse](t, h, cp).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create partitions: %d", code)
	}
	if tp, _ := c.Topic("t"); len(tp.Partitions) != 3 {
		t.Fatalf("%d partitions", len(tp.Partitions))
	}
	if code := serve[*kmsg.CreatePartitionsResponse](t, h, cp).Topics[0].ErrorCode; code != kerr.InvalidPartitions.Code {
		t.Fatalf("no growth: %d", code)
	}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "t", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 3}}}}
	if p := serve[*kmsg.DeleteRecordsResponse](t, h, dr).Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LowWatermark != 3 {
		t.Fatalf("delete records: %+v", p)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 5
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "t", Partitions: []kmsg.ListOffsetsRequestTopicPartition{
		{Partition: 0, Timestamp: -2, CurrentLeaderEpoch: -1}, {Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1}, {Partition: 0, Timestamp: 999, CurrentLeaderEpoch: -1}}}}
	ps := serve[*kmsg.ListOffsetsResponse](t, h, lo).Topics[0].Partitions
	if ps[0].Offset != 3 || ps[1].Offset != 5 || ps[2].Offset != 3 || ps[1].LeaderEpoch != 0 {
		t.Fatalf("list offsets: %+v", ps)
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.ProducerID, ip.ProducerEpoch = -1, -1
	first := serve[*kmsg.InitProducerIDResponse](t, h, ip)
	second := serve[*kmsg.InitProducerIDResponse](t, h, ip)
	if first.ErrorCode != 0 || first.ProducerID == second.ProducerID {
		t.Fatalf("producer ids %d, %d", first.ProducerID, second.ProducerID)
	}
	tx := "txn"
	ip.TransactionalID = &tx
	if code := serve[*kmsg.InitProducerIDResponse](t, h, ip).ErrorCode; code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional id: %d", code)
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 5
	del.TopicNames = []string{"t", "missing"}
	codes := serve[*kmsg.DeleteTopicsResponse](t, h, del).Topics
	if codes[0].ErrorCode != 0 || codes[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete topics: %+v", codes)
	}
}

// recordBytes fetches partition 0 of "t" from offset and returns how many
// record bytes came back, whether copied or as file regions.
func recordBytes(t *testing.T, h *Handlers, backend string, offset int64, maxBytes, partMax int32) int {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes = 12, maxBytes
	req.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, FetchOffset: offset, PartitionMaxBytes: partMax, CurrentLeaderEpoch: -1}}}}
	r := wire.NewRequest(req, "test")
	h.Handle(context.Background(), r)
	resp, regions, err := r.Answer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, g := range regions {
			g.Release()
		}
	}()
	data := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches
	if backend == "file" {
		if len(regions) > 1 || (len(regions) == 1 && !bytes.Equal(data, regions[0].Marker)) {
			t.Fatalf("file backend: %d regions, data %q", len(regions), data)
		}
		if len(regions) == 1 {
			return int(regions[0].Len)
		}
		return 0
	}
	return len(data)
}
