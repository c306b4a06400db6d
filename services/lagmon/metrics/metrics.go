// Package metrics exports lagmon's evaluations as Prometheus metrics with
// the names Burrow's /metrics uses, and the kafka_consumergroup_* family
// that Kafka exporters (danielqsj/kafka_exporter) use, so existing
// dashboards and alerts keep working. A label "cluster" is added to the
// exporter family, which names one cluster per exporter.
//
// The collector evaluates every group at scrape time, so series of deleted
// or expired groups disappear with them.
//
//	burrow_kafka_consumer_status{cluster,consumer_group}           0 NOTFOUND .. 6 REWIND
//	burrow_kafka_consumer_lag_total{cluster,consumer_group}
//	burrow_kafka_consumer_partition_lag{cluster,consumer_group,topic,partition}
//	burrow_kafka_consumer_current_offset{cluster,consumer_group,topic,partition}
//	burrow_kafka_topic_partition_offset{cluster,topic,partition}
//	kafka_consumergroup_lag{cluster,consumergroup,topic,partition}
//	kafka_consumergroup_lag_sum{cluster,consumergroup,topic}
//	kafka_consumergroup_lag_seconds{cluster,consumergroup,topic,partition}   (lagmon's)
//	kafka_consumergroup_current_offset{cluster,consumergroup,topic,partition}
//	kafka_consumergroup_current_offset_sum{cluster,consumergroup,topic}
//	kafka_consumergroup_members{cluster,consumergroup}
//	kafka_topic_partitions{cluster,topic}
//	kafka_topic_partition_current_offset{cluster,topic,partition}
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

var (
	groupLabels     = []string{"cluster", "consumer_group"}
	partitionLabels = []string{"cluster", "consumer_group", "topic", "partition"}
	exGroup         = []string{"cluster", "consumergroup"}
	exTopic         = []string{"cluster", "consumergroup", "topic"}
	exPartition     = []string{"cluster", "consumergroup", "topic", "partition"}

	burrowStatus = prometheus.NewDesc("burrow_kafka_consumer_status",
		"The status of the consumer group. It is calculated from the highest status for the individual partitions. Statuses are an index list from NOTFOUND, OK, WARN, ERR, STOP, STALL, REWIND", groupLabels, nil)
	burrowTotalLag = prometheus.NewDesc("burrow_kafka_consumer_lag_total",
		"The sum of all partition current lag values for the group", groupLabels, nil)
	burrowPartitionLag = prometheus.NewDesc("burrow_kafka_consumer_partition_lag",
		"Number of messages the consumer group is behind by for a partition as reported by Burrow", partitionLabels, nil)
	burrowCurrentOffset = prometheus.NewDesc("burrow_kafka_consumer_current_offset",
		"Latest offset that Burrow is storing for this partition", partitionLabels, nil)
	burrowTopicOffset = prometheus.NewDesc("burrow_kafka_topic_partition_offset",
		"Latest offset the topic that Burrow is storing for this partition", []string{"cluster", "topic", "partition"}, nil)

	exLag           = prometheus.NewDesc("kafka_consumergroup_lag", "Current approximate lag of a consumer group at topic/partition", exPartition, nil)
	exLagSum        = prometheus.NewDesc("kafka_consumergroup_lag_sum", "Current approximate lag of a consumer group at topic for all partitions", exTopic, nil)
	exLagSeconds    = prometheus.NewDesc("kafka_consumergroup_lag_seconds", "Estimated time the consumer group is behind at topic/partition, in seconds", exPartition, nil)
	exOffset        = prometheus.NewDesc("kafka_consumergroup_current_offset", "Current offset of a consumer group at topic/partition", exPartition, nil)
	exOffsetSum     = prometheus.NewDesc("kafka_consumergroup_current_offset_sum", "Current offset of a consumer group at topic for all partitions", exTopic, nil)
	exMembers       = prometheus.NewDesc("kafka_consumergroup_members", "Amount of members in a consumer group", exGroup, nil)
	exPartitions    = prometheus.NewDesc("kafka_topic_partitions", "Number of partitions for this Topic", []string{"cluster", "topic"}, nil)
	exTopicOffset   = prometheus.NewDesc("kafka_topic_partition_current_offset", "Current Offset of a Broker at Topic/Partition", []string{"cluster", "topic", "partition"}, nil)
	allDescriptions = []*prometheus.Desc{burrowStatus, burrowTotalLag, burrowPartitionLag, burrowCurrentOffset, burrowTopicOffset,
		exLag, exLagSum, exLagSeconds, exOffset, exOffsetSum, exMembers, exPartitions, exTopicOffset}
)

// Collector is a prometheus.Collector over a store.
type Collector struct {
	store *window.Store
	eval  evaluate.Config
	now   func() time.Time
}

// New returns a collector; register it on the service's registry.
func New(store *window.Store, eval evaluate.Config, now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	return &Collector{store: store, eval: eval, now: now}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescriptions {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	now := c.now()
	for _, cluster := range c.store.Clusters() {
		groups, _ := c.store.Groups(cluster)
		for _, g := range groups {
			snap, err := c.store.Group(cluster, g)
			if err != nil {
				continue
			}
			st := evaluate.Group(snap, now, c.eval, true)
			gauge(burrowStatus, float64(st.Status), cluster, g)
			gauge(burrowTotalLag, float64(st.TotalLag), cluster, g)
			lagSum := map[string]float64{}
			offSum := map[string]float64{}
			members := map[string]bool{}
			for _, p := range st.Partitions {
				part := strconv.Itoa(int(p.Partition))
				gauge(burrowPartitionLag, float64(p.CurrentLag), cluster, g, p.Topic, part)
				gauge(exLag, float64(p.CurrentLag), cluster, g, p.Topic, part)
				lagSum[p.Topic] += float64(p.CurrentLag)
				if p.LagSeconds != nil {
					gauge(exLagSeconds, *p.LagSeconds, cluster, g, p.Topic, part)
				}
				if p.End != nil {
					gauge(burrowCurrentOffset, float64(p.End.Offset), cluster, g, p.Topic, part)
					gauge(exOffset, float64(p.End.Offset), cluster, g, p.Topic, part)
					offSum[p.Topic] += float64(p.End.Offset)
				}
				if p.Owner != "" || p.ClientID != "" {
					members[p.Owner+"\x00"+p.ClientID] = true
				}
			}
			for t, v := range lagSum {
				gauge(exLagSum, v, cluster, g, t)
			}
			for t, v := range offSum {
				gauge(exOffsetSum, v, cluster, g, t)
			}
			gauge(exMembers, float64(len(members)), cluster, g)
		}
		topics, _ := c.store.Topics(cluster)
		for _, t := range topics {
			offsets, err := c.store.TopicOffsets(cluster, t)
			if err != nil {
				continue
			}
			gauge(exPartitions, float64(len(offsets)), cluster, t)
			for p, o := range offsets {
				part := strconv.Itoa(p)
				gauge(burrowTopicOffset, float64(o), cluster, t, part)
				gauge(exTopicOffset, float64(o), cluster, t, part)
			}
		}
	}
}
