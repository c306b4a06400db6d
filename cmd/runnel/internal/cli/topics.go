package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func topicsCmd(s Streams) *cobra.Command {
	var k kafkaFlags
	c := &cobra.Command{
		Use:   "topics",
		Short: "Create, list, describe, alter and delete topics",
		Example: `  runnel topics create --topic orders --partitions 6 --config retention.ms=86400000
  runnel topics list
  runnel topics describe --topic orders
  runnel topics alter --topic orders --partitions 12 --config retention.ms=3600000
  runnel topics delete --topic orders`,
		RunE: parentRun,
	}
	k.register(c.PersistentFlags())
	c.AddCommand(topicsCreateCmd(s, &k), topicsListCmd(s, &k), topicsDescribeCmd(s, &k), topicsAlterCmd(s, &k), topicsDeleteCmd(s, &k))
	return c
}

func topicsCreateCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var (
		topic       string
		partitions  int32
		replication int16
		configs     []string
		ifNotExists bool
	)
	c := &cobra.Command{
		Use:   "create --topic TOPIC",
		Short: "Create a topic",
		Long: `Create a topic. Without --partitions or --replication-factor the broker's
defaults apply (num.partitions, default.replication.factor). Topic settings
use Kafka's names: --config retention.ms=3600000 --config cleanup.policy=compact.`,
		Example: `  runnel topics create --topic orders
  runnel topics create --topic orders --partitions 6 --replication-factor 1 --config retention.bytes=1073741824
  runnel topics create --topic orders --if-not-exists`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			cfg, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := adm.CreateTopic(ctx, partitions, replication, cfg, topic)
			switch {
			case errors.Is(err, kerr.TopicAlreadyExists) && ifNotExists:
				return nil
			case errors.Is(err, kerr.TopicAlreadyExists):
				return fmt.Errorf("topic %q already exists: add --if-not-exists to accept that, or see it with `runnel topics describe --topic %s`", topic, topic)
			case err != nil:
				return fmt.Errorf("creating topic %q: %s", topic, withDetail(kafkaError(err), resp.ErrMessage))
			}
			fmt.Fprintf(s.Out, "Created topic %s.\n", topic)
			return nil
		}),
	}
	fs := c.Flags()
	fs.StringVar(&topic, "topic", "", "name of the topic to create")
	fs.Int32Var(&partitions, "partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	fs.Int16Var(&replication, "replication-factor", -1, "replicas of each partition (-1: the broker's default.replication.factor)")
	fs.StringArrayVar(&configs, "config", nil, "topic setting under Kafka's name, key=value (repeatable)")
	fs.BoolVar(&ifNotExists, "if-not-exists", false, "succeed if the topic already exists")
	_ = c.MarkFlagRequired("topic")
	return c
}

func topicsListCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var excludeInternal bool
	c := &cobra.Command{
		Use:     "list",
		Short:   "List topic names, one per line",
		Example: "  runnel topics list\n  runnel topics list --exclude-internal",
		Args:    cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			tds, err := adm.ListTopicsWithInternal(ctx)
			if err != nil {
				return fmt.Errorf("listing topics: %s", kafkaError(err))
			}
			if excludeInternal {
				tds.FilterInternal()
			}
			for _, name := range tds.Names() {
				fmt.Fprintln(s.Out, name)
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&excludeInternal, "exclude-internal", false, "leave out internal topics such as __consumer_offsets")
	return c
}

func topicsDescribeCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var (
		topics          []string
		excludeInternal bool
	)
	c := &cobra.Command{
		Use:   "describe [--topic TOPIC]...",
		Short: "Describe topics like kafka-topics.sh --describe",
		Long: `Describe topics as kafka-topics.sh --describe does: a line per topic with its
partition count, replication factor and the settings set on it (not the
broker defaults), then a line per partition with its leader, replicas and
in-sync replicas. Without --topic every topic is described.`,
		Example: "  runnel topics describe --topic orders\n  runnel topics describe",
		Args:    cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			tds, err := adm.ListTopicsWithInternal(ctx, topics...)
			if err != nil {
				return fmt.Errorf("describing topics: %s", kafkaError(err))
			}
			if excludeInternal {
				tds.FilterInternal()
			}
			for _, t := range topics {
				if !tds.Has(t) {
					return noTopic(t)
				}
			}
			names := tds.Names()
			if len(names) == 0 {
				return nil
			}
			rcs, err := adm.DescribeTopicConfigs(ctx, names...)
			if err != nil {
				return fmt.Errorf("describing topic settings: %s", kafkaError(err))
			}
			overrides := map[string][]string{}
			for _, rc := range rcs {
				if rc.Err != nil {
					return fmt.Errorf("describing settings of %q: %s", rc.Name, kafkaError(rc.Err))
				}
				overrides[rc.Name] = topicOverrides(rc.Configs)
			}
			for _, name := range names {
				td := tds[name]
				if td.Err != nil {
					return fmt.Errorf("describing %q: %s", name, kafkaError(td.Err))
				}
				writeTopicDescription(s.Out, td, overrides[name])
			}
			return nil
		}),
	}
	c.Flags().StringArrayVar(&topics, "topic", nil, "topic to describe (repeatable; default: all)")
	c.Flags().BoolVar(&excludeInternal, "exclude-internal", false, "leave out internal topics such as __consumer_offsets")
	return c
}

// topicOverrides returns the settings set on the topic itself, as
// key=value sorted by key: what kafka-topics.sh lists as Configs.
func topicOverrides(cfgs []kadm.Config) []string {
	var out []string
	for _, c := range cfgs {
		if c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			continue
		}
		v := ""
		if c.Value != nil {
			v = *c.Value
		}
		if c.Sensitive {
			v = "(sensitive)"
		}
		out = append(out, c.Key+"="+v)
	}
	sort.Strings(out)
	return out
}

// writeTopicDescription prints one topic in kafka-topics.sh's layout.
func writeTopicDescription(w io.Writer, td kadm.TopicDetail, configs []string) {
	fmt.Fprintf(w, "Topic: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
		td.Topic, len(td.Partitions), td.Partitions.NumReplicas(), strings.Join(configs, ","))
	for _, p := range td.Partitions.Sorted() {
		leader := "none"
		if p.Leader >= 0 {
			leader = strconv.Itoa(int(p.Leader))
		}
		fmt.Fprintf(w, "\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s", td.Topic, p.Partition, leader, joinIDs(p.Replicas), joinIDs(p.ISR))
		if len(p.OfflineReplicas) > 0 {
			fmt.Fprintf(w, "\tOffline: %s", joinIDs(p.OfflineReplicas))
		}
		fmt.Fprintln(w)
	}
}

func joinIDs(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}

func topicsAlterCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var (
		topic      string
		partitions int
		configs    []string
		deletes    []string
		ifExists   bool
	)
	c := &cobra.Command{
		Use:   "alter --topic TOPIC [--partitions N] [--config key=value]... [--delete-config key]...",
		Short: "Change a topic's partition count or settings",
		Long: `Change a topic. --partitions raises the partition count (Kafka never lowers
it). --config sets a setting and --delete-config returns one to the broker's
default; settings not named are left as they are (an incremental change).`,
		Example: `  runnel topics alter --topic orders --partitions 12
  runnel topics alter --topic orders --config retention.ms=3600000 --delete-config retention.bytes`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			if partitions == 0 && len(configs) == 0 && len(deletes) == 0 {
				return usagef("nothing to change: give --partitions, --config or --delete-config")
			}
			if cmd.Flags().Changed("partitions") && partitions < 1 {
				return usagef("--partitions %d: give the new total, at least 1", partitions)
			}
			set, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			current, err := topicPartitions(ctx, adm, topic)
			if err != nil {
				if ifExists && errors.Is(err, errNoTopic) {
					return nil
				}
				return err
			}
			if len(set) > 0 || len(deletes) > 0 {
				var alters []kadm.AlterConfig
				for _, key := range sortedKeys(set) {
					alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: key, Value: set[key]})
				}
				for _, key := range deletes {
					alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: key})
				}
				resps, err := adm.AlterTopicConfigs(ctx, alters, topic)
				if err != nil {
					return fmt.Errorf("changing settings of %q: %s", topic, kafkaError(err))
				}
				for _, r := range resps {
					if r.Err != nil {
						return fmt.Errorf("changing settings of %q: %s", topic, withDetail(kafkaError(r.Err), r.ErrMessage))
					}
				}
				fmt.Fprintf(s.Out, "Updated settings of topic %s.\n", topic)
			}
			if partitions > 0 && partitions != len(current) {
				if partitions < len(current) {
					return fmt.Errorf("topic %q has %d partitions: Kafka cannot remove partitions, so give --partitions %d or more", topic, len(current), len(current))
				}
				resps, err := adm.UpdatePartitions(ctx, partitions, topic)
				if err != nil {
					return fmt.Errorf("adding partitions to %q: %s", topic, kafkaError(err))
				}
				if r := resps[topic]; r.Err != nil {
					return fmt.Errorf("adding partitions to %q: %s", topic, withDetail(kafkaError(r.Err), r.ErrMessage))
				}
				fmt.Fprintf(s.Out, "Topic %s now has %d partitions.\n", topic, partitions)
			}
			return nil
		}),
	}
	fs := c.Flags()
	fs.StringVar(&topic, "topic", "", "topic to change")
	fs.IntVar(&partitions, "partitions", 0, "new total number of partitions (only up)")
	fs.StringArrayVar(&configs, "config", nil, "setting to set, key=value (repeatable)")
	fs.StringArrayVar(&deletes, "delete-config", nil, "setting to return to the broker's default (repeatable)")
	fs.BoolVar(&ifExists, "if-exists", false, "succeed without doing anything if the topic does not exist")
	_ = c.MarkFlagRequired("topic")
	return c
}

func topicsDeleteCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var (
		topic    string
		ifExists bool
	)
	c := &cobra.Command{
		Use:     "delete --topic TOPIC",
		Short:   "Delete a topic and all its records",
		Example: "  runnel topics delete --topic orders\n  runnel topics delete --topic orders --if-exists",
		Args:    cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := adm.DeleteTopic(ctx, topic)
			switch {
			case errors.Is(err, kerr.UnknownTopicOrPartition) && ifExists:
				return nil
			case errors.Is(err, kerr.UnknownTopicOrPartition):
				return fmt.Errorf("%w (or add --if-exists to accept that)", noTopic(topic))
			case err != nil:
				return fmt.Errorf("deleting topic %q: %s", topic, withDetail(kafkaError(err), resp.ErrMessage))
			}
			fmt.Fprintf(s.Out, "Deleted topic %s.\n", topic)
			return nil
		}),
	}
	c.Flags().StringVar(&topic, "topic", "", "topic to delete")
	c.Flags().BoolVar(&ifExists, "if-exists", false, "succeed if the topic does not exist")
	_ = c.MarkFlagRequired("topic")
	return c
}

// parseConfigs turns repeated --config key=value flags into the map the
// admin client takes. A value may carry several settings separated by ';',
// which is how RUNNEL_CONFIG holds more than one.
func parseConfigs(values []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, v := range values {
		for _, kv := range strings.Split(v, ";") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			key, val, ok := strings.Cut(kv, "=")
			key = strings.TrimSpace(key)
			if !ok || key == "" {
				return nil, usagef("--config %q: want key=value, for example retention.ms=3600000", kv)
			}
			val = strings.TrimSpace(val)
			out[key] = &val
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// withDetail appends the broker's error message when it adds something.
func withDetail(msg, detail string) string {
	if detail == "" || strings.Contains(msg, detail) {
		return msg
	}
	return msg + " (" + detail + ")"
}
