// Package config holds the broker's settings under Kafka's own names: the
// static broker settings given with --config key=value, the per-topic
// settings stored in the coordinator (/config/topics/<t>), and how a topic
// setting falls back to its broker default (retention.ms to
// log.retention.ms, max.message.bytes to message.max.bytes, ...), which is
// what DescribeConfigs reports as a config's source and synonyms.
//
// Only settings the broker acts on, or that clients commonly read back, are
// known; an unknown topic setting is refused (INVALID_CONFIG), as Kafka
// refuses one. Unknown broker settings are kept and reported, so that a
// server.properties written for Kafka loads without edits.
package config

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

// ErrInvalid means a setting's name is unknown or its value is out of range
// or of the wrong type. The broker answers INVALID_CONFIG (40).
var ErrInvalid = errors.New("config: invalid setting")

// Type is a setting's type as DescribeConfigs v3+ reports it.
type Type int8

// Kafka's ConfigType codes.
const (
	TypeBoolean  Type = 1
	TypeString   Type = 2
	TypeInt      Type = 3
	TypeShort    Type = 4
	TypeLong     Type = 5
	TypeDouble   Type = 6
	TypeList     Type = 7
	TypeClass    Type = 8
	TypePassword Type = 9
)

// Source is where a reported value comes from (DescribeConfigs v1+).
type Source int8

// Kafka's ConfigSource codes.
const (
	SourceUnknown              Source = 0
	SourceDynamicTopic         Source = 1
	SourceDynamicBroker        Source = 2
	SourceDynamicDefaultBroker Source = 3
	SourceStaticBroker         Source = 4
	SourceDefault              Source = 5
)

// Def describes one setting.
type Def struct {
	Name string
	// Broker is the broker setting a topic setting falls back to; empty for
	// broker settings themselves.
	Broker  string
	Type    Type
	Default string
	// ReadOnly marks broker settings that cannot change at run time.
	ReadOnly bool
	check    func(string) error
}

// Check validates a value for the setting.
func (d Def) Check(v string) error {
	if err := checkType(d.Type, v); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalid, d.Name, v, err)
	}
	if d.check != nil {
		if err := d.check(v); err != nil {
			return fmt.Errorf("%w: %s=%q: %v", ErrInvalid, d.Name, v, err)
		}
	}
	return nil
}

func checkType(t Type, v string) error {
	switch t {
	case TypeBoolean:
		if v != "true" && v != "false" {
			return errors.New("want true or false")
		}
	case TypeInt:
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return errors.New("want a 32-bit integer")
		}
	case TypeShort:
		if _, err := strconv.ParseInt(v, 10, 16); err != nil {
			return errors.New("want a 16-bit integer")
		}
	case TypeLong:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return errors.New("want a 64-bit integer")
		}
	case TypeDouble:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return errors.New("want a number")
		}
	}
	return nil
}

func atLeast(min int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

func cleanupPolicy(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
			return errors.New("must be a list of delete and compact")
		}
	}
	return nil
}

func fraction(v string) error {
	if f, _ := strconv.ParseFloat(v, 64); f < 0 || f > 1 {
		return errors.New("must be between 0 and 1")
	}
	return nil
}

// Timestamp types (message.timestamp.type).
const (
	CreateTime    = "CreateTime"
	LogAppendTime = "LogAppendTime"
)

const maxLong = "9223372036854775807"

// TopicDefs are the known topic settings, sorted by name.
var TopicDefs = sortDefs([]Def{
	{Name: "cleanup.policy", Broker: "log.cleanup.policy", Type: TypeList, Default: "delete", check: cleanupPolicy},
	{Name: "compression.type", Broker: "compression.type", Type: TypeString, Default: "producer",
		check: oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{Name: "delete.retention.ms", Broker: "log.cleaner.delete.retention.ms", Type: TypeLong, Default: "86400000", check: atLeast(0)},
	{Name: "file.delete.delay.ms", Broker: "log.segment.delete.delay.ms", Type: TypeLong, Default: "60000", check: atLeast(0)},
	{Name: "flush.messages", Broker: "log.flush.interval.messages", Type: TypeLong, Default: maxLong, check: atLeast(1)},
	{Name: "flush.ms", Broker: "log.flush.interval.ms", Type: TypeLong, Default: maxLong, check: atLeast(0)},
	{Name: "index.interval.bytes", Broker: "log.index.interval.bytes", Type: TypeInt, Default: "4096", check: atLeast(0)},
	{Name: "max.compaction.lag.ms", Broker: "log.cleaner.max.compaction.lag.ms", Type: TypeLong, Default: maxLong, check: atLeast(1)},
	{Name: "max.message.bytes", Broker: "message.max.bytes", Type: TypeInt, Default: "1048588", check: atLeast(0)},
	{Name: "message.downconversion.enable", Broker: "log.message.downconversion.enable", Type: TypeBoolean, Default: "true"},
	{Name: "message.timestamp.difference.max.ms", Broker: "log.message.timestamp.difference.max.ms", Type: TypeLong, Default: maxLong, check: atLeast(0)},
	{Name: "message.timestamp.type", Broker: "log.message.timestamp.type", Type: TypeString, Default: CreateTime, check: oneOf(CreateTime, LogAppendTime)},
	{Name: "min.cleanable.dirty.ratio", Broker: "log.cleaner.min.cleanable.ratio", Type: TypeDouble, Default: "0.5", check: fraction},
	{Name: "min.compaction.lag.ms", Broker: "log.cleaner.min.compaction.lag.ms", Type: TypeLong, Default: "0", check: atLeast(0)},
	{Name: "min.insync.replicas", Broker: "min.insync.replicas", Type: TypeInt, Default: "1", check: atLeast(1)},
	{Name: "preallocate", Broker: "log.preallocate", Type: TypeBoolean, Default: "false"},
	{Name: "retention.bytes", Broker: "log.retention.bytes", Type: TypeLong, Default: "-1"},
	{Name: StorageBackend, Broker: StorageBackend, Type: TypeString, Default: "", check: backendName},
	{Name: "retention.ms", Broker: "log.retention.ms", Type: TypeLong, Default: "604800000", check: atLeast(-1)},
	{Name: "segment.bytes", Broker: "log.segment.bytes", Type: TypeInt, Default: "1073741824", check: atLeast(storage.BatchHeaderSize)},
	{Name: "segment.index.bytes", Broker: "log.index.size.max.bytes", Type: TypeInt, Default: "10485760", check: atLeast(4)},
	{Name: "segment.jitter.ms", Broker: "log.roll.jitter.ms", Type: TypeLong, Default: "0", check: atLeast(0)},
	{Name: "segment.ms", Broker: "log.roll.ms", Type: TypeLong, Default: "604800000", check: atLeast(1)},
	{Name: "unclean.leader.election.enable", Broker: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false"},
})

// BrokerDefs are the known broker-only settings (the broker names of topic
// settings are known too, through TopicDefs).
var BrokerDefs = sortDefs([]Def{
	{Name: "auto.create.topics.enable", Type: TypeBoolean, Default: "true", ReadOnly: true},
	{Name: "auto.leader.rebalance.enable", Type: TypeBoolean, Default: "true", ReadOnly: true},
	{Name: "broker.id", Type: TypeInt, Default: "-1", ReadOnly: true},
	{Name: "controlled.shutdown.enable", Type: TypeBoolean, Default: "true", ReadOnly: true},
	{Name: "controlled.shutdown.max.retries", Type: TypeInt, Default: "3", ReadOnly: true, check: atLeast(0)},
	{Name: "controlled.shutdown.retry.backoff.ms", Type: TypeLong, Default: "5000", ReadOnly: true, check: atLeast(0)},
	{Name: "default.replication.factor", Type: TypeInt, Default: "1", ReadOnly: true, check: atLeast(1)},
	{Name: "delete.topic.enable", Type: TypeBoolean, Default: "true", ReadOnly: true},
	{Name: "group.initial.rebalance.delay.ms", Type: TypeInt, Default: "3000", ReadOnly: true, check: atLeast(0)},
	{Name: "group.max.session.timeout.ms", Type: TypeInt, Default: "1800000", ReadOnly: true, check: atLeast(1)},
	{Name: "group.max.size", Type: TypeInt, Default: "2147483647", ReadOnly: true, check: atLeast(1)},
	{Name: "group.min.session.timeout.ms", Type: TypeInt, Default: "6000", ReadOnly: true, check: atLeast(1)},
	{Name: "leader.imbalance.check.interval.seconds", Type: TypeLong, Default: "300", ReadOnly: true, check: atLeast(1)},
	{Name: "leader.imbalance.per.broker.percentage", Type: TypeInt, Default: "10", ReadOnly: true, check: atLeast(0)},
	{Name: "log.cleaner.backoff.ms", Type: TypeLong, Default: "15000", ReadOnly: true, check: atLeast(0)},
	{Name: "log.cleaner.dedupe.buffer.size", Type: TypeLong, Default: "134217728", ReadOnly: true, check: atLeast(1 << 10)},
	{Name: "log.cleaner.enable", Type: TypeBoolean, Default: "true", ReadOnly: true},
	{Name: "log.cleaner.threads", Type: TypeInt, Default: "1", ReadOnly: true, check: atLeast(0)},
	{Name: "log.retention.check.interval.ms", Type: TypeLong, Default: "300000", ReadOnly: true, check: atLeast(1)},
	{Name: "log.retention.hours", Type: TypeInt, Default: "168", ReadOnly: true},
	{Name: "log.retention.minutes", Type: TypeInt, Default: "", ReadOnly: true},
	{Name: "log.roll.hours", Type: TypeInt, Default: "168", ReadOnly: true, check: atLeast(1)},
	{Name: "num.partitions", Type: TypeInt, Default: "1", ReadOnly: true, check: atLeast(1)},
	{Name: "offset.metadata.max.bytes", Type: TypeInt, Default: "4096", ReadOnly: true, check: atLeast(0)},
	{Name: "offsets.retention.check.interval.ms", Type: TypeLong, Default: "600000", ReadOnly: true, check: atLeast(1)},
	{Name: "offsets.retention.minutes", Type: TypeInt, Default: "10080", ReadOnly: true, check: atLeast(1)},
	{Name: "offsets.topic.num.partitions", Type: TypeInt, Default: "50", ReadOnly: true, check: atLeast(1)},
	{Name: "offsets.topic.replication.factor", Type: TypeShort, Default: "1", ReadOnly: true, check: atLeast(1)},
	{Name: "offsets.topic.segment.bytes", Type: TypeInt, Default: "104857600", ReadOnly: true, check: atLeast(storage.BatchHeaderSize)},
	{Name: "producer.id.expiration.ms", Type: TypeInt, Default: "86400000", ReadOnly: true, check: atLeast(1)},
	{Name: "offsets.commit.timeout.ms", Type: TypeInt, Default: "5000", ReadOnly: true, check: atLeast(1)},
	{Name: "replica.fetch.backoff.ms", Type: TypeInt, Default: "1000", ReadOnly: true, check: atLeast(0)},
	{Name: "replica.fetch.max.bytes", Type: TypeInt, Default: "1048576", ReadOnly: true, check: atLeast(0)},
	{Name: "replica.fetch.min.bytes", Type: TypeInt, Default: "1", ReadOnly: true, check: atLeast(1)},
	{Name: "replica.fetch.response.max.bytes", Type: TypeInt, Default: "10485760", ReadOnly: true, check: atLeast(0)},
	{Name: "replica.fetch.wait.max.ms", Type: TypeInt, Default: "500", ReadOnly: true, check: atLeast(0)},
	{Name: "replica.lag.time.max.ms", Type: TypeLong, Default: "30000", ReadOnly: true, check: atLeast(1)},
	{Name: "socket.request.max.bytes", Type: TypeInt, Default: "104857600", ReadOnly: true, check: atLeast(1)},
	{Name: "zookeeper.session.timeout.ms", Type: TypeInt, Default: "18000", ReadOnly: true, check: atLeast(1)},
})

func sortDefs(d []Def) []Def {
	sort.Slice(d, func(i, j int) bool { return d[i].Name < d[j].Name })
	return d
}

var (
	topicByName  = map[string]Def{}
	brokerByName = map[string]Def{}
)

func init() {
	for _, d := range TopicDefs {
		topicByName[d.Name] = d
		brokerByName[d.Broker] = Def{Name: d.Broker, Type: d.Type, Default: d.Default, ReadOnly: true, check: d.check}
	}
	for _, d := range BrokerDefs {
		brokerByName[d.Name] = d
	}
}

// TopicDef returns the definition of a topic setting.
func TopicDef(name string) (Def, bool) {
	d, ok := topicByName[name]
	return d, ok
}

// CheckTopic validates topic settings: every name must be a known topic
// setting and every value legal for it. A nil value (a deletion, in
// IncrementalAlterConfigs) is not checked.
func CheckTopic(settings map[string]string) error {
	for k, v := range settings {
		d, ok := topicByName[k]
		if !ok {
			return fmt.Errorf("%w: unknown topic config %q", ErrInvalid, k)
		}
		if err := d.Check(v); err != nil {
			return err
		}
	}
	return nil
}

// Broker is the broker's static settings.
type Broker struct {
	set map[string]string

	// Typed values of the settings the broker acts on.
	NumPartitions            int32
	DefaultReplicationFactor int16
	AutoCreateTopics         bool
	DeleteTopicEnable        bool
	RetentionCheckInterval   time.Duration
	MaxRequestSize           int32
	SessionTimeout           time.Duration

	// The group coordinator's settings (offsets.*, group.*).
	OffsetsTopicPartitions        int32
	OffsetsTopicReplicationFactor int16
	OffsetsTopicSegmentBytes      int32
	OffsetsRetention              time.Duration
	OffsetsRetentionCheckInterval time.Duration
	OffsetMetadataMaxBytes        int32
	GroupMinSessionTimeout        time.Duration
	GroupMaxSessionTimeout        time.Duration
	GroupInitialRebalanceDelay    time.Duration
	GroupMaxSize                  int32

	// The log cleaner's settings (log.cleaner.*) and how long an idle
	// idempotent producer's state is kept (producer.id.expiration.ms).
	CleanerEnable           bool
	CleanerBackoff          time.Duration
	CleanerDedupeBufferSize int64
	ProducerIDExpiration    time.Duration

	// Replication (replica.*), the controller's leader balancing
	// (auto.leader.rebalance.enable, leader.imbalance.*) and controlled
	// shutdown (controlled.shutdown.*).
	ReplicaLagTimeMax              time.Duration
	ReplicaFetchWaitMax            time.Duration
	ReplicaFetchMinBytes           int32
	ReplicaFetchMaxBytes           int32
	ReplicaFetchResponseMaxBytes   int32
	ReplicaFetchBackoff            time.Duration
	OffsetsCommitTimeout           time.Duration
	AutoLeaderRebalance            bool
	LeaderImbalanceCheckInterval   time.Duration
	LeaderImbalancePerBrokerPct    int32
	ControlledShutdown             bool
	ControlledShutdownMaxRetries   int32
	ControlledShutdownRetryBackoff time.Duration
}

// NewBroker parses broker settings given as key=value (server.properties
// names). Known settings are type-checked; unknown ones are kept as given.
func NewBroker(settings map[string]string) (*Broker, error) {
	b := &Broker{set: map[string]string{}}
	for k, v := range settings {
		if d, ok := brokerByName[k]; ok {
			if err := d.Check(v); err != nil {
				return nil, err
			}
		}
		b.set[k] = v
	}
	// log.retention.ms wins over .minutes, which wins over .hours (Kafka's
	// rule); likewise log.roll.ms over log.roll.hours.
	if _, ok := b.set["log.retention.ms"]; !ok {
		if m, ok := b.set["log.retention.minutes"]; ok {
			n, _ := strconv.ParseInt(m, 10, 64)
			b.set["log.retention.ms"] = strconv.FormatInt(n*60000, 10)
		} else if h, ok := b.set["log.retention.hours"]; ok {
			n, _ := strconv.ParseInt(h, 10, 64)
			b.set["log.retention.ms"] = strconv.FormatInt(n*3600000, 10)
		}
	}
	if _, ok := b.set["log.roll.ms"]; !ok {
		if h, ok := b.set["log.roll.hours"]; ok {
			n, _ := strconv.ParseInt(h, 10, 64)
			b.set["log.roll.ms"] = strconv.FormatInt(n*3600000, 10)
		}
	}
	b.NumPartitions = int32(b.int("num.partitions"))
	b.DefaultReplicationFactor = int16(b.int("default.replication.factor"))
	b.AutoCreateTopics = b.Value("auto.create.topics.enable") == "true"
	b.DeleteTopicEnable = b.Value("delete.topic.enable") == "true"
	b.RetentionCheckInterval = time.Duration(b.int("log.retention.check.interval.ms")) * time.Millisecond
	b.MaxRequestSize = int32(b.int("socket.request.max.bytes"))
	b.SessionTimeout = time.Duration(b.int("zookeeper.session.timeout.ms")) * time.Millisecond
	ms := func(name string) time.Duration { return time.Duration(b.int(name)) * time.Millisecond }
	b.OffsetsTopicPartitions = int32(b.int("offsets.topic.num.partitions"))
	b.OffsetsTopicReplicationFactor = int16(b.int("offsets.topic.replication.factor"))
	b.OffsetsTopicSegmentBytes = int32(b.int("offsets.topic.segment.bytes"))
	b.OffsetsRetention = time.Duration(b.int("offsets.retention.minutes")) * time.Minute
	b.OffsetsRetentionCheckInterval = ms("offsets.retention.check.interval.ms")
	b.OffsetMetadataMaxBytes = int32(b.int("offset.metadata.max.bytes"))
	b.GroupMinSessionTimeout = ms("group.min.session.timeout.ms")
	b.GroupMaxSessionTimeout = ms("group.max.session.timeout.ms")
	b.GroupInitialRebalanceDelay = ms("group.initial.rebalance.delay.ms")
	b.GroupMaxSize = int32(b.int("group.max.size"))
	b.CleanerEnable = b.Value("log.cleaner.enable") == "true"
	b.CleanerBackoff = ms("log.cleaner.backoff.ms")
	b.CleanerDedupeBufferSize = b.int("log.cleaner.dedupe.buffer.size")
	b.ProducerIDExpiration = ms("producer.id.expiration.ms")
	b.ReplicaLagTimeMax = ms("replica.lag.time.max.ms")
	b.ReplicaFetchWaitMax = ms("replica.fetch.wait.max.ms")
	b.ReplicaFetchMinBytes = int32(b.int("replica.fetch.min.bytes"))
	b.ReplicaFetchMaxBytes = int32(b.int("replica.fetch.max.bytes"))
	b.ReplicaFetchResponseMaxBytes = int32(b.int("replica.fetch.response.max.bytes"))
	b.ReplicaFetchBackoff = ms("replica.fetch.backoff.ms")
	b.OffsetsCommitTimeout = ms("offsets.commit.timeout.ms")
	b.AutoLeaderRebalance = b.Value("auto.leader.rebalance.enable") == "true"
	b.LeaderImbalanceCheckInterval = time.Duration(b.int("leader.imbalance.check.interval.seconds")) * time.Second
	b.LeaderImbalancePerBrokerPct = int32(b.int("leader.imbalance.per.broker.percentage"))
	b.ControlledShutdown = b.Value("controlled.shutdown.enable") == "true"
	b.ControlledShutdownMaxRetries = int32(b.int("controlled.shutdown.max.retries"))
	b.ControlledShutdownRetryBackoff = ms("controlled.shutdown.retry.backoff.ms")
	if b.GroupMinSessionTimeout > b.GroupMaxSessionTimeout {
		return nil, fmt.Errorf("%w: group.min.session.timeout.ms %d is above group.max.session.timeout.ms %d", ErrInvalid,
			b.GroupMinSessionTimeout.Milliseconds(), b.GroupMaxSessionTimeout.Milliseconds())
	}
	return b, nil
}

// Value returns a broker setting: the configured value or the default.
func (b *Broker) Value(name string) string {
	if v, ok := b.set[name]; ok {
		return v
	}
	return brokerByName[name].Default
}

func (b *Broker) int(name string) int64 {
	n, _ := strconv.ParseInt(b.Value(name), 10, 64)
	return n
}

// Set records a static setting the binary derives from its flags (broker.id,
// listeners, log.dirs, zookeeper.connect) so that DescribeConfigs shows it.
func (b *Broker) Set(name, value string) { b.set[name] = value }

// Entry is one reported setting.
type Entry struct {
	Name      string
	Value     *string
	Source    Source
	Type      Type
	ReadOnly  bool
	Sensitive bool
	Synonyms  []Synonym
}

// Synonym is a lower-precedence value of the same setting.
type Synonym struct {
	Name   string
	Value  *string
	Source Source
}

func str(s string) *string { return &s }

// DescribeTopic reports every topic setting for a topic with the given
// overrides, each with its source and, lower in precedence, its synonyms.
func (b *Broker) DescribeTopic(overrides map[string]string) []Entry {
	out := make([]Entry, 0, len(TopicDefs))
	for _, d := range TopicDefs {
		e := Entry{Name: d.Name, Type: d.Type}
		var syn []Synonym
		if v, ok := overrides[d.Name]; ok {
			syn = append(syn, Synonym{Name: d.Name, Value: str(v), Source: SourceDynamicTopic})
		}
		if v, ok := b.set[d.Broker]; ok {
			syn = append(syn, Synonym{Name: d.Broker, Value: str(v), Source: SourceStaticBroker})
		}
		syn = append(syn, Synonym{Name: d.Broker, Value: str(d.Default), Source: SourceDefault})
		e.Value, e.Source, e.Synonyms = syn[0].Value, syn[0].Source, syn
		out = append(out, e)
	}
	return out
}

// DescribeBroker reports the broker's settings: every known one and every
// unknown one that was set.
func (b *Broker) DescribeBroker() []Entry {
	names := make([]string, 0, len(brokerByName)+len(b.set))
	seen := map[string]bool{}
	for n := range brokerByName {
		names, seen[n] = append(names, n), true
	}
	for n := range b.set {
		if !seen[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		d, known := brokerByName[n]
		if !known {
			d = Def{Name: n, Type: TypeString, ReadOnly: true}
		}
		e := Entry{Name: n, Type: d.Type, ReadOnly: true, Sensitive: strings.Contains(n, "password")}
		if v, ok := b.set[n]; ok {
			e.Value, e.Source = str(v), SourceStaticBroker
			e.Synonyms = append(e.Synonyms, Synonym{Name: n, Value: str(v), Source: SourceStaticBroker})
			if known && d.Default != "" {
				e.Synonyms = append(e.Synonyms, Synonym{Name: n, Value: str(d.Default), Source: SourceDefault})
			}
		} else {
			if d.Default != "" {
				e.Value = str(d.Default)
			}
			e.Source = SourceDefault
			if e.Value != nil {
				e.Synonyms = append(e.Synonyms, Synonym{Name: n, Value: e.Value, Source: SourceDefault})
			}
		}
		if e.Sensitive {
			e.Value = nil
		}
		out = append(out, e)
	}
	return out
}

// Topic is a topic's effective settings, resolved from its overrides and
// the broker defaults.
type Topic struct {
	CleanupPolicy      string
	RetentionMs        int64 // -1: keep forever
	RetentionBytes     int64 // -1: no size limit
	SegmentBytes       int32
	SegmentMs          int64
	SegmentIndexBytes  int32
	IndexIntervalBytes int32
	FileDeleteDelayMs  int64
	FlushMessages      int64
	MaxMessageBytes    int32
	LogAppendTime      bool
	MinInsyncReplicas  int32
	// UncleanLeaderElection lets the controller elect a replica outside
	// the ISR when no ISR member is alive, losing what only the ISR had.
	UncleanLeaderElection bool

	// Compaction (cleanup.policy=compact): how long tombstones stay
	// readable, the share of uncleaned bytes that makes a log worth
	// cleaning, and how long a record stays uncompacted at least and at
	// most.
	DeleteRetentionMs      int64
	MinCleanableDirtyRatio float64
	MinCompactionLagMs     int64
	MaxCompactionLagMs     int64
}

// Compact reports whether the topic's cleanup.policy includes compact.
func (t *Topic) Compact() bool { return hasPolicy(t.CleanupPolicy, "compact") }

// Delete reports whether the topic's cleanup.policy includes delete.
func (t *Topic) Delete() bool { return hasPolicy(t.CleanupPolicy, "delete") }

func hasPolicy(list, p string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == p {
			return true
		}
	}
	return false
}

// Topic resolves a topic's effective settings.
func (b *Broker) Topic(overrides map[string]string) Topic {
	get := func(name string) string {
		if v, ok := overrides[name]; ok {
			return v
		}
		d := topicByName[name]
		if v, ok := b.set[d.Broker]; ok {
			return v
		}
		return d.Default
	}
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(get(name), 10, 64)
		return n
	}
	ratio, _ := strconv.ParseFloat(get("min.cleanable.dirty.ratio"), 64)
	return Topic{
		CleanupPolicy:      get("cleanup.policy"),
		RetentionMs:        num("retention.ms"),
		RetentionBytes:     num("retention.bytes"),
		SegmentBytes:       int32(num("segment.bytes")),
		SegmentMs:          num("segment.ms"),
		SegmentIndexBytes:  int32(num("segment.index.bytes")),
		IndexIntervalBytes: int32(num("index.interval.bytes")),
		FileDeleteDelayMs:  num("file.delete.delay.ms"),
		FlushMessages:      num("flush.messages"),
		MaxMessageBytes:    int32(num("max.message.bytes")),
		LogAppendTime:      get("message.timestamp.type") == LogAppendTime,
		MinInsyncReplicas:  int32(num("min.insync.replicas")),

		UncleanLeaderElection: get("unclean.leader.election.enable") == "true",

		DeleteRetentionMs:      num("delete.retention.ms"),
		MinCleanableDirtyRatio: ratio,
		MinCompactionLagMs:     num("min.compaction.lag.ms"),
		MaxCompactionLagMs:     num("max.compaction.lag.ms"),
	}
}

// Storage returns the storage settings of a partition of the topic, rooted
// at dir.
func (t Topic) Storage(dir string) storage.Config {
	c := storage.Config{
		Dir:                dir,
		SegmentBytes:       t.SegmentBytes,
		SegmentMs:          t.SegmentMs,
		IndexIntervalBytes: max(t.IndexIntervalBytes, 1),
		MaxIndexBytes:      t.SegmentIndexBytes,
		FileDeleteDelayMs:  t.FileDeleteDelayMs,
	}
	if c.FileDeleteDelayMs == 0 {
		c.FileDeleteDelayMs = -1 // storage reads zero as "default"; Kafka's 0 means at once
	}
	if t.FlushMessages > 0 && t.FlushMessages != math.MaxInt64 {
		c.FlushMessages = t.FlushMessages
	}
	return c.WithDefaults()
}
