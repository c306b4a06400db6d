package config

import (
	"errors"
	"testing"
	"time"
)

func TestTopicFallsBackToBrokerThenDefault(t *testing.T) {
	b, err := NewBroker(map[string]string{"log.retention.hours": "2", "message.max.bytes": "2000", "custom.thing": "x"})
	if err != nil {
		t.Fatal(err)
	}
	tc := b.Topic(map[string]string{"max.message.bytes": "500", "message.timestamp.type": LogAppendTime})
	if tc.MaxMessageBytes != 500 || !tc.LogAppendTime || tc.RetentionMs != 2*3600000 || tc.SegmentBytes != 1<<30 || tc.RetentionBytes != -1 {
		t.Fatalf("%+v", tc)
	}
	if got := b.Topic(nil).MaxMessageBytes; got != 2000 {
		t.Fatalf("broker default message.max.bytes: %d", got)
	}
	var retention Entry
	for _, e := range b.DescribeTopic(map[string]string{"retention.ms": "5"}) {
		if e.Name == "retention.ms" {
			retention = e
		}
	}
	if *retention.Value != "5" || retention.Source != SourceDynamicTopic || len(retention.Synonyms) != 3 ||
		retention.Synonyms[1].Name != "log.retention.ms" || retention.Synonyms[1].Source != SourceStaticBroker ||
		retention.Synonyms[2].Source != SourceDefault {
		t.Fatalf("retention.ms entry %+v", retention)
	}
	found := false
	for _, e := range b.DescribeBroker() {
		if e.Name == "custom.thing" && *e.Value == "x" && e.Source == SourceStaticBroker {
			found = true
		}
		if e.Name == "num.partitions" && (*e.Value != "1" || e.Source != SourceDefault) {
			t.Fatalf("num.partitions %+v", e)
		}
	}
	if !found {
		t.Fatal("an unknown broker setting is not reported")
	}
}

func TestCheckTopic(t *testing.T) {
	if err := CheckTopic(map[string]string{"retention.ms": "-1", "cleanup.policy": "compact,delete", "segment.bytes": "1000"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{
		{"no.such.setting": "1"},
		{"retention.ms": "soon"},
		{"segment.bytes": "10"},
		{"message.timestamp.type": "Wallclock"},
		{"cleanup.policy": "shred"},
		{"min.insync.replicas": "0"},
		{"preallocate": "yes"},
	} {
		if err := CheckTopic(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	if _, err := NewBroker(map[string]string{"num.partitions": "0"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("num.partitions=0: %v", err)
	}
}

func TestStorageConfig(t *testing.T) {
	b, _ := NewBroker(nil)
	c := b.Topic(map[string]string{"file.delete.delay.ms": "0", "flush.messages": "10"}).Storage("/d")
	if c.Dir != "/d" || c.FileDeleteDelayMs >= 0 || c.FlushMessages != 10 || c.SegmentBytes != 1<<30 {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if d := b.Topic(nil).Storage("/d"); d.FlushMessages != 0 {
		t.Fatalf("Kafka's default flush.messages (never) must leave flushing to the OS, got %d", d.FlushMessages)
	}
}

func TestGroupAndCleanerSettings(t *testing.T) {
	b, err := NewBroker(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.OffsetsTopicPartitions != 50 || b.OffsetsRetention != 7*24*time.Hour || b.GroupMinSessionTimeout != 6*time.Second ||
		b.GroupMaxSessionTimeout != 30*time.Minute || b.GroupInitialRebalanceDelay != 3*time.Second || !b.CleanerEnable ||
		b.CleanerBackoff != 15*time.Second || b.OffsetsTopicSegmentBytes != 100<<20 || b.OffsetMetadataMaxBytes != 4096 ||
		b.ProducerIDExpiration != 24*time.Hour {
		t.Fatalf("Kafka's defaults: %+v", b)
	}
	b, err = NewBroker(map[string]string{"offsets.topic.num.partitions": "3", "offsets.retention.minutes": "5",
		"group.initial.rebalance.delay.ms": "0", "log.cleaner.enable": "false"})
	if err != nil || b.OffsetsTopicPartitions != 3 || b.OffsetsRetention != 5*time.Minute || b.GroupInitialRebalanceDelay != 0 || b.CleanerEnable {
		t.Fatalf("settings: %+v %v", b, err)
	}
	for _, bad := range []map[string]string{
		{"offsets.topic.num.partitions": "0"},
		{"group.min.session.timeout.ms": "9000", "group.max.session.timeout.ms": "8000"},
	} {
		if _, err := NewBroker(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	tc := b.Topic(map[string]string{"cleanup.policy": "compact,delete", "min.cleanable.dirty.ratio": "0.25"})
	if !tc.Compact() || !tc.Delete() || tc.MinCleanableDirtyRatio != 0.25 || tc.DeleteRetentionMs != 86400000 {
		t.Fatalf("topic %+v", tc)
	}
	if err := CheckTopic(map[string]string{"min.cleanable.dirty.ratio": "1.5"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ratio 1.5: %v", err)
	}
}
