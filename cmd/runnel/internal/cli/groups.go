package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func groupsCmd(s Streams) *cobra.Command {
	var k kafkaFlags
	c := &cobra.Command{
		Use:   "groups",
		Short: "List, describe, delete consumer groups and reset their offsets",
		Example: `  runnel groups list
  runnel groups describe billing
  runnel groups reset-offsets billing --topic orders --to-earliest --execute
  runnel groups delete billing`,
		RunE: parentRun,
	}
	k.register(c.PersistentFlags())
	c.AddCommand(groupsListCmd(s, &k), groupsDescribeCmd(s, &k), groupsDeleteCmd(s, &k), groupsResetCmd(s, &k))
	return c
}

func groupsListCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var state bool
	c := &cobra.Command{
		Use:     "list",
		Short:   "List consumer group names, one per line",
		Example: "  runnel groups list\n  runnel groups list --state",
		Args:    cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			groups, err := adm.ListGroups(ctx)
			if err != nil {
				return fmt.Errorf("listing groups: %s", groupError(err))
			}
			names := groups.Groups()
			sort.Strings(names)
			if !state {
				for _, g := range names {
					fmt.Fprintln(s.Out, g)
				}
				return nil
			}
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tSTATE")
			for _, g := range names {
				fmt.Fprintf(tw, "%s\t%s\n", g, orDash(groups[g].State))
			}
			return tw.Flush()
		}),
	}
	c.Flags().BoolVar(&state, "state", false, "show each group's state too")
	return c
}

func groupsDescribeCmd(s Streams, k *kafkaFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's state, members, and per partition its offsets and lag",
		Long: `Describe a consumer group like kafka-consumer-groups.sh --describe: the
group's state, then per partition the committed offset (CURRENT-OFFSET), the
log-end offset and the lag between them, with the member that owns the
partition, then the members and their assignments.`,
		Example: "  runnel groups describe billing",
		Args:    exactArgs(1, "GROUP"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			group := args[0]
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			lags, err := adm.Lag(ctx, group)
			if err != nil {
				return fmt.Errorf("describing group %q: %s", group, groupError(err))
			}
			l, ok := lags[group]
			switch {
			case !ok:
				return fmt.Errorf("group %q was not described by the broker", group)
			case errors.Is(l.DescribeErr, kerr.GroupIDNotFound):
				return noGroup(group)
			case l.DescribeErr != nil:
				return fmt.Errorf("describing group %q: %s", group, groupError(l.DescribeErr))
			case l.FetchErr != nil:
				return fmt.Errorf("reading offsets of group %q: %s", group, groupError(l.FetchErr))
			case l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0:
				return noGroup(group)
			}
			writeGroupDescription(s.Out, l)
			return nil
		}),
	}
}

// writeGroupDescription prints a group like kafka-consumer-groups.sh
// --describe, plus its state and members.
func writeGroupDescription(w io.Writer, l kadm.DescribedGroupLag) {
	fmt.Fprintf(w, "GROUP %s  STATE %s  PROTOCOL %s  COORDINATOR %d  MEMBERS %d\n\n",
		l.Group, orDash(l.State), orDash(l.Protocol), l.Coordinator.NodeID, len(l.Members))
	if len(l.Members) == 0 {
		fmt.Fprintf(w, "Consumer group '%s' has no active members.\n\n", l.Group)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")
	for _, p := range l.Lag.Sorted() {
		current, lag := "-", "-"
		if p.Commit.At >= 0 {
			current = strconv.FormatInt(p.Commit.At, 10)
			if p.Lag >= 0 {
				lag = strconv.FormatInt(p.Lag, 10)
			}
		}
		end := "-"
		if p.End.Err == nil && p.End.Offset >= 0 {
			end = strconv.FormatInt(p.End.Offset, 10)
		}
		member, host, client := "-", "-", "-"
		if p.Member != nil {
			member, host, client = p.Member.MemberID, p.Member.ClientHost, p.Member.ClientID
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Group, p.Topic, p.Partition, current, end, lag, member, host, client)
	}
	_ = tw.Flush()
	if len(l.Members) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONSUMER-ID\tHOST\tCLIENT-ID\t#PARTITIONS\tASSIGNMENT")
	for _, m := range l.Members {
		n, assigned := 0, "-"
		if c, ok := m.Assigned.AsConsumer(); ok && len(c.Topics) > 0 {
			var parts []string
			for _, t := range c.Topics {
				n += len(t.Partitions)
				parts = append(parts, t.Topic+"("+joinIDs(t.Partitions)+")")
			}
			sort.Strings(parts)
			assigned = strings.Join(parts, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.MemberID, orDash(m.ClientHost), orDash(m.ClientID), n, assigned)
	}
	_ = tw.Flush()
}

func groupsDeleteCmd(s Streams, k *kafkaFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP",
		Short:   "Delete a group and its committed offsets (the group must have no members)",
		Example: `  runnel groups delete billing`,
		Args:    exactArgs(1, "GROUP"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			group := args[0]
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := adm.DeleteGroup(ctx, group)
			switch {
			case errors.Is(err, kerr.GroupIDNotFound):
				return noGroup(group)
			case errors.Is(err, kerr.NonEmptyGroup):
				return fmt.Errorf("group %q still has members: stop its consumers first, then delete it", group)
			case err != nil:
				return fmt.Errorf("deleting group %q: %s", group, withDetail(groupError(err), resp.ErrMessage))
			}
			fmt.Fprintf(s.Out, "Deleted group %s.\n", group)
			return nil
		}),
	}
}

// resetOptions are the flags of `runnel groups reset-offsets`.
type resetOptions struct {
	topics     []string
	allTopics  bool
	toEarliest bool
	toLatest   bool
	toOffset   int64
	toDatetime string
	shiftBy    int64
	dryRun     bool
	execute    bool
}

func groupsResetCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var o resetOptions
	c := &cobra.Command{
		Use:   "reset-offsets GROUP (--topic TOPIC[:P,P...] | --all-topics) (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME | --shift-by N) [--dry-run | --execute]",
		Short: "Move a group's committed offsets",
		Long: `Move the committed offsets of a group that has no running members, like
kafka-consumer-groups.sh --reset-offsets. Without --execute the new offsets
are only shown (a dry run). --topic orders resets every partition of orders;
--topic orders:0,2 only those partitions; --all-topics every partition the
group has committed offsets for. Offsets are kept between each partition's
earliest and latest offset. --shift-by moves the committed offset and needs
one; --to-datetime takes RFC 3339 (2024-05-01T12:00:00Z) and picks the first
record at or after that time.`,
		Example: `  runnel groups reset-offsets billing --topic orders --to-earliest
  runnel groups reset-offsets billing --topic orders --to-earliest --execute
  runnel groups reset-offsets billing --topic orders:0 --shift-by -10 --execute
  runnel groups reset-offsets billing --all-topics --to-datetime 2024-05-01T12:00:00Z --execute`,
		Args: exactArgs(1, "GROUP"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			return resetOffsets(cmd, k, args[0], o, s)
		}),
	}
	fs := c.Flags()
	fs.StringArrayVar(&o.topics, "topic", nil, "topic to reset, optionally with partitions: TOPIC or TOPIC:0,1 (repeatable)")
	fs.BoolVar(&o.allTopics, "all-topics", false, "reset every partition the group has committed offsets for")
	fs.BoolVar(&o.toEarliest, "to-earliest", false, "to the earliest offset of each partition")
	fs.BoolVar(&o.toLatest, "to-latest", false, "to the latest offset of each partition (skip everything)")
	fs.Int64Var(&o.toOffset, "to-offset", 0, "to this offset")
	fs.StringVar(&o.toDatetime, "to-datetime", "", "to the first offset at or after this time (RFC 3339)")
	fs.Int64Var(&o.shiftBy, "shift-by", 0, "move the committed offset by N (negative: back)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "only show the new offsets (the default)")
	fs.BoolVar(&o.execute, "execute", false, "commit the new offsets")
	c.MarkFlagsOneRequired("topic", "all-topics")
	c.MarkFlagsMutuallyExclusive("topic", "all-topics")
	c.MarkFlagsOneRequired("to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by")
	c.MarkFlagsMutuallyExclusive("to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by")
	c.MarkFlagsMutuallyExclusive("dry-run", "execute")
	return c
}

// parseTopicPartitions parses TOPIC or TOPIC:0,1,2. A nil partition list
// means every partition.
func parseTopicPartitions(s string) (string, []int32, error) {
	topic, list, hasList := strings.Cut(s, ":")
	if topic == "" {
		return "", nil, usagef("--topic %q: want TOPIC or TOPIC:P,P", s)
	}
	if !hasList {
		return topic, nil, nil
	}
	var parts []int32
	for _, p := range strings.Split(list, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 {
			return "", nil, usagef("--topic %q: %q is not a partition number", s, p)
		}
		parts = append(parts, int32(n))
	}
	return topic, parts, nil
}

// parseDatetime reads --to-datetime: RFC 3339, with or without fractional
// seconds; without a zone it is local time, as in Kafka's tool.
func parseDatetime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--to-datetime %q: use RFC 3339, e.g. 2024-05-01T12:00:00Z", s)
}

func resetOffsets(cmd *cobra.Command, k *kafkaFlags, group string, o resetOptions, s Streams) error {
	var at time.Time
	if o.toDatetime != "" {
		var err error
		if at, err = parseDatetime(o.toDatetime); err != nil {
			return err
		}
	}
	want := map[string][]int32{}
	for _, t := range o.topics {
		topic, parts, err := parseTopicPartitions(t)
		if err != nil {
			return err
		}
		want[topic] = append(want[topic], parts...)
		if parts == nil {
			want[topic] = nil
		}
	}
	adm, ctx, done, err := k.adminSession(cmd.Context())
	if err != nil {
		return err
	}
	defer done()

	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describing group %q: %s", group, groupError(err))
	}
	if d, ok := described[group]; ok {
		if d.Err != nil {
			return fmt.Errorf("describing group %q: %s", group, groupError(d.Err))
		}
		if d.State != "Empty" && d.State != "Dead" && d.State != "" {
			return fmt.Errorf("group %q is %s with %d members: offsets can be reset only while it has none; stop its consumers first", group, d.State, len(d.Members))
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("reading offsets of group %q: %s", group, groupError(err))
	}
	if err := committed.Error(); err != nil {
		return fmt.Errorf("reading offsets of group %q: %s", group, groupError(err))
	}

	// The partitions to reset.
	targets := kadm.TopicsSet{}
	if o.allTopics {
		targets = committed.Partitions()
		if len(targets) == 0 {
			return fmt.Errorf("group %q has no committed offsets: name the topics with --topic", group)
		}
	} else {
		for _, topic := range sortedKeys(want) {
			all, err := topicPartitions(ctx, adm, topic)
			if err != nil {
				return err
			}
			parts := want[topic]
			if parts == nil {
				parts = all
			}
			for _, p := range parts {
				if int(p) >= len(all) {
					return fmt.Errorf("topic %q has %d partitions: there is no partition %d", topic, len(all), p)
				}
			}
			targets.Add(topic, parts...)
		}
	}
	topics := targets.Topics()
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("listing earliest offsets: %s", kafkaError(err))
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing latest offsets: %s", kafkaError(err))
	}
	var byTime kadm.ListedOffsets
	if !at.IsZero() {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topics...); err == nil {
			err = byTime.Error()
		}
		if err != nil {
			return fmt.Errorf("listing offsets at %s: %s", o.toDatetime, kafkaError(err))
		}
	}

	plan := kadm.Offsets{}
	for _, tp := range targets.Sorted() {
		for _, p := range tp.Partitions {
			start, _ := starts.Lookup(tp.Topic, p)
			end, _ := ends.Lookup(tp.Topic, p)
			var next int64
			switch {
			case o.toEarliest:
				next = start.Offset
			case o.toLatest:
				next = end.Offset
			case cmd.Flags().Changed("to-offset"):
				next = o.toOffset
			case !at.IsZero():
				next = end.Offset
				if l, ok := byTime.Lookup(tp.Topic, p); ok && l.Offset >= 0 {
					next = l.Offset
				}
			default: // --shift-by
				c, ok := committed.Lookup(tp.Topic, p)
				if !ok || c.At < 0 {
					return fmt.Errorf("%s partition %d has no committed offset to shift from: use --to-earliest, --to-latest or --to-offset for it", tp.Topic, p)
				}
				next = c.At + o.shiftBy
			}
			next = max(start.Offset, min(next, end.Offset))
			plan.Add(kadm.Offset{Topic: tp.Topic, Partition: p, At: next, LeaderEpoch: -1})
		}
	}

	if o.execute {
		resps, err := adm.CommitOffsets(ctx, group, plan)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			return fmt.Errorf("committing offsets of group %q: %s", group, groupError(err))
		}
	}
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET")
	for _, off := range plan.Sorted() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", group, off.Topic, off.Partition, off.At)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !o.execute {
		fmt.Fprintln(s.Err, "Dry run: nothing was committed. Add --execute to commit these offsets.")
	}
	return nil
}

// noGroup says a group does not exist and how to see the ones that do.
func noGroup(group string) error {
	return fmt.Errorf("group %q does not exist: see `runnel groups list`", group)
}

// groupError explains a group request's error; a broker without the group
// APIs gets a sentence of its own.
func groupError(err error) string {
	msg := kafkaError(err)
	if msg == "the broker does not implement this request" {
		return "the broker does not implement consumer groups"
	}
	return msg
}

// exactArgs is cobra.ExactArgs with a message naming the argument.
func exactArgs(n int, name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s as the argument, got %d arguments", name, len(args))
		}
		return nil
	}
}
