package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func partitionsCmd(s Streams) *cobra.Command {
	var k kafkaFlags
	c := &cobra.Command{
		Use:   "partitions",
		Short: "Move partition replicas and elect partition leaders",
		Example: `  runnel partitions reassign --topic orders --partition 0 --replicas 3,2 --wait
  runnel partitions reassign --reassignment-json-file moves.json
  runnel partitions reassign --list
  runnel partitions elect-leaders --all-topic-partitions`,
		RunE: parentRun,
	}
	k.register(c.PersistentFlags())
	c.AddCommand(partitionsReassignCmd(s, &k), partitionsElectCmd(s, &k))
	return c
}

// reassignmentFile is the JSON of kafka-reassign-partitions.sh
// --reassignment-json-file.
type reassignmentFile struct {
	Version    int `json:"version"`
	Partitions []struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Replicas  []int32 `json:"replicas"`
	} `json:"partitions"`
}

type reassignOptions struct {
	file      string
	topic     string
	partition int32
	replicas  string
	cancel    bool
	verify    bool
	list      bool
	wait      bool
	timeout   time.Duration
}

func partitionsReassignCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var o reassignOptions
	c := &cobra.Command{
		Use:   "reassign",
		Short: "Move partitions to other brokers online, like kafka-reassign-partitions.sh",
		Long: `Move partitions to new replica sets while they serve clients: the new
replicas copy the partition from its leader, and once all of them are in
sync the replicas that leave are dropped (and the leadership moves off
them). Give the moves as kafka-reassign-partitions.sh's JSON file
({"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[3,2]}]})
or, for one partition, with --topic, --partition and --replicas.

--wait follows the moves until they are done, showing progress on stderr.
--verify reports whether the given moves are done, --cancel stops them
(back to the original replicas), and --list shows every move under way.`,
		Example: `  runnel partitions reassign --topic orders --partition 0 --replicas 3,2 --wait
  runnel partitions reassign --reassignment-json-file moves.json --verify
  runnel partitions reassign --reassignment-json-file moves.json --cancel
  runnel partitions reassign --list`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return reassign(cmd.Context(), k, o, s)
		}),
	}
	f := c.Flags()
	f.StringVar(&o.file, "reassignment-json-file", "", "the moves, in kafka-reassign-partitions.sh's JSON")
	f.StringVar(&o.topic, "topic", "", "the topic of one move")
	f.Int32Var(&o.partition, "partition", -1, "the partition of one move")
	f.StringVar(&o.replicas, "replicas", "", "the new replicas of one move, comma separated, preferred leader first")
	f.BoolVar(&o.cancel, "cancel", false, "cancel the given moves")
	f.BoolVar(&o.verify, "verify", false, "report whether the given moves are done")
	f.BoolVar(&o.list, "list", false, "list every move under way")
	f.BoolVar(&o.wait, "wait", false, "wait until the moves are done, showing progress")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long --wait waits")
	return c
}

// moves returns the requested moves, by topic and partition.
func (o reassignOptions) moves() (map[string]map[int32][]int32, error) {
	out := map[string]map[int32][]int32{}
	add := func(t string, p int32, r []int32) {
		if out[t] == nil {
			out[t] = map[int32][]int32{}
		}
		out[t][p] = r
	}
	switch {
	case o.file != "" && o.topic != "":
		return nil, usagef("give either --reassignment-json-file or --topic, not both")
	case o.file != "":
		data, err := os.ReadFile(o.file)
		if err != nil {
			return nil, fmt.Errorf("reading the moves: %w", err)
		}
		var rf reassignmentFile
		if err := json.Unmarshal(data, &rf); err != nil {
			return nil, fmt.Errorf("%s is not kafka-reassign-partitions.sh's JSON ({\"version\":1,\"partitions\":[{\"topic\":...,\"partition\":...,\"replicas\":[...]}]}): %v", o.file, err)
		}
		if len(rf.Partitions) == 0 {
			return nil, fmt.Errorf("%s lists no partitions", o.file)
		}
		for _, p := range rf.Partitions {
			add(p.Topic, p.Partition, p.Replicas)
		}
	case o.topic != "":
		if o.partition < 0 {
			return nil, usagef("--topic needs --partition")
		}
		var replicas []int32
		if !o.cancel && !o.verify {
			if o.replicas == "" {
				return nil, usagef("--topic needs --replicas (or --cancel, --verify)")
			}
			for _, f := range strings.Split(o.replicas, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
				if err != nil {
					return nil, usagef("--replicas %q: give broker ids separated by commas", o.replicas)
				}
				replicas = append(replicas, int32(n))
			}
		}
		add(o.topic, o.partition, replicas)
	default:
		return nil, usagef("give the moves with --reassignment-json-file, or --topic, --partition and --replicas")
	}
	return out, nil
}

func reassign(ctx context.Context, k *kafkaFlags, o reassignOptions, s Streams) error {
	if o.list {
		res, err := listReassignments(ctx, k)
		if err != nil {
			return err
		}
		return writeReassignments(s, res)
	}
	moves, err := o.moves()
	if err != nil {
		return err
	}
	adm, actx, done, err := k.adminSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	if o.verify {
		return verifyMoves(actx, k, adm, moves, s)
	}
	var req kadm.AlterPartitionAssignmentsReq
	for t, ps := range moves {
		for p, r := range ps {
			if o.cancel {
				req.CancelAssign(t, p)
			} else {
				req.Assign(t, p, r)
			}
		}
	}
	res, err := adm.AlterPartitionAssignments(actx, req)
	if err != nil {
		return fmt.Errorf("reassigning: %s", kafkaError(err))
	}
	var failed []string
	res.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s-%d: %s", r.Topic, r.Partition, kafkaError(r.Err)))
		}
	})
	sort.Strings(failed)
	if len(failed) > 0 {
		return fmt.Errorf("%d of the moves were refused: %s", len(failed), strings.Join(failed, "; "))
	}
	verb := "Started"
	if o.cancel {
		verb = "Cancelled"
	}
	fmt.Fprintf(s.Out, "%s the reassignment of %d partitions.\n", verb, countMoves(moves))
	if !o.wait || o.cancel {
		if !o.cancel {
			fmt.Fprintln(s.Out, "Follow it with `runnel partitions reassign --list` or add --wait.")
		}
		return nil
	}
	return waitMoves(ctx, k, moves, o.timeout, s)
}

func countMoves(m map[string]map[int32][]int32) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}

// waitMoves polls the reassignments until none of the moves is under way.
func waitMoves(ctx context.Context, k *kafkaFlags, moves map[string]map[int32][]int32, timeout time.Duration, s Streams) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := newProgress(s.Err, "reassigning")
	start, total := time.Now(), countMoves(moves)
	for {
		res, err := listReassignments(ctx, k)
		if err == nil {
			left := 0
			res.Each(func(r kadm.ListPartitionReassignmentsResponse) {
				if _, ok := moves[r.Topic][r.Partition]; ok {
					left++
				}
			})
			p.update(fmt.Sprintf("%d of %d partitions moved", total-left, total))
			if left == 0 {
				p.done()
				fmt.Fprintf(s.Out, "All %d partitions moved in %s.\n", total, time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		select {
		case <-ctx.Done():
			p.done()
			return fmt.Errorf("the moves are still under way after %s: follow them with `runnel partitions reassign --list`", timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// verifyMoves reports, for each move, whether it is done (the partition
// has the requested replicas, all in sync), under way, or neither.
func verifyMoves(ctx context.Context, k *kafkaFlags, adm *kadm.Client, moves map[string]map[int32][]int32, s Streams) error {
	ongoing, err := listReassignments(ctx, k)
	if err != nil {
		return err
	}
	topics := make([]string, 0, len(moves))
	for t := range moves {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return fmt.Errorf("reading metadata: %s", kafkaError(err))
	}
	notDone := 0
	for _, t := range topics {
		ps := make([]int32, 0, len(moves[t]))
		for p := range moves[t] {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		for _, p := range ps {
			want := moves[t][p]
			state := ""
			pd, ok := md.Topics[t].Partitions[p]
			switch {
			case ongoing[t][p].Topic != "":
				state = "is still in progress"
				notDone++
			case !ok:
				state = "does not exist"
				notDone++
			case want == nil || slices.Equal(pd.Replicas, want) && len(pd.ISR) == len(want):
				state = "is complete"
			default:
				state = fmt.Sprintf("is not under way, and the replicas are %s (in sync: %s)", joinIDs(pd.Replicas), joinIDs(pd.ISR))
				notDone++
			}
			fmt.Fprintf(s.Out, "Reassignment of partition %s-%d %s.\n", t, p, state)
		}
	}
	if notDone > 0 {
		return fmt.Errorf("%d of the moves are not complete", notDone)
	}
	return nil
}

// listReassignments lists every reassignment under way: a
// ListPartitionReassignments with a null topic list (kadm asks only for
// named partitions).
func listReassignments(ctx context.Context, k *kafkaFlags) (kadm.ListPartitionReassignmentsResponses, error) {
	cl, err := k.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = int32(adminTimeout.Milliseconds())
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return nil, fmt.Errorf("listing reassignments: %s", kafkaError(err))
	}
	out := kadm.ListPartitionReassignmentsResponses{}
	for _, t := range resp.Topics {
		out[t.Topic] = map[int32]kadm.ListPartitionReassignmentsResponse{}
		for _, p := range t.Partitions {
			out[t.Topic][p.Partition] = kadm.ListPartitionReassignmentsResponse{Topic: t.Topic, Partition: p.Partition,
				Replicas: p.Replicas, AddingReplicas: p.AddingReplicas, RemovingReplicas: p.RemovingReplicas}
		}
	}
	return out, nil
}

func writeReassignments(s Streams, res kadm.ListPartitionReassignmentsResponses) error {
	if len(res) == 0 {
		fmt.Fprintln(s.Out, "No reassignment is under way.")
		return nil
	}
	tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tREPLICAS\tADDING\tREMOVING")
	for _, r := range res.Sorted() {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Topic, r.Partition, joinIDs(r.Replicas), orDash(joinIDs(r.AddingReplicas)), orDash(joinIDs(r.RemovingReplicas)))
	}
	return tw.Flush()
}

func partitionsElectCmd(s Streams, k *kafkaFlags) *cobra.Command {
	var (
		electionType string
		topic        string
		partitions   []int32
		all          bool
	)
	c := &cobra.Command{
		Use:   "elect-leaders",
		Short: "Elect partition leaders, like kafka-leader-election.sh",
		Long: `Ask the controller to elect leaders. The preferred election (the default)
gives each partition back to its preferred replica, the first of its
replica list, when that replica is alive and in sync: this restores the
balance of leaders after brokers restarted. The unclean election gives a
partition that has no leader any live replica, in sync or not, accepting
the loss of what only the lost replicas had.`,
		Example: `  runnel partitions elect-leaders --all-topic-partitions
  runnel partitions elect-leaders --topic orders --partition 0 --partition 2
  runnel partitions elect-leaders --election-type unclean --topic orders --partition 1`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			how := kadm.ElectPreferredReplica
			switch strings.ToLower(electionType) {
			case "preferred":
			case "unclean":
				how = kadm.ElectLiveReplica
			default:
				return usagef("--election-type %q: use preferred or unclean", electionType)
			}
			if all == (topic != "") {
				return usagef("give --all-topic-partitions or --topic (with --partition, or all its partitions)")
			}
			adm, ctx, done, err := k.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var set kadm.TopicsSet
			if topic != "" {
				ps := partitions
				if len(ps) == 0 {
					md, err := adm.Metadata(ctx, topic)
					if err != nil {
						return fmt.Errorf("reading metadata: %s", kafkaError(err))
					}
					td := md.Topics[topic]
					if td.Err != nil {
						return fmt.Errorf("topic %q: %s", topic, kafkaError(td.Err))
					}
					ps = td.Partitions.Numbers()
				}
				set = kadm.TopicsSet{}
				set.Add(topic, ps...)
			}
			res, err := adm.ElectLeaders(ctx, how, set)
			if err != nil {
				return fmt.Errorf("electing leaders: %s", kafkaError(err))
			}
			return writeElections(s, res)
		}),
	}
	f := c.Flags()
	f.StringVar(&electionType, "election-type", "preferred", "preferred or unclean")
	f.StringVar(&topic, "topic", "", "the topic whose partitions to elect for")
	f.Int32SliceVar(&partitions, "partition", nil, "a partition of --topic (repeatable; default: all)")
	f.BoolVar(&all, "all-topic-partitions", false, "elect for every partition of every topic")
	return c
}

func writeElections(s Streams, res kadm.ElectLeadersResults) error {
	var elected, notNeeded int
	var failed []string
	var lines []string
	for t, ps := range res {
		for p, r := range ps {
			switch {
			case r.Err == nil:
				elected++
				lines = append(lines, fmt.Sprintf("Elected a new leader for %s-%d.", t, p))
			case errors.Is(r.Err, kerr.ElectionNotNeeded):
				notNeeded++
			default:
				failed = append(failed, fmt.Sprintf("%s-%d: %s", t, p, kafkaError(r.Err)))
			}
		}
	}
	sort.Strings(lines)
	sort.Strings(failed)
	for _, l := range lines {
		fmt.Fprintln(s.Out, l)
	}
	if elected == 0 && len(failed) == 0 {
		fmt.Fprintln(s.Out, "Every partition already has the leader asked for.")
	} else if notNeeded > 0 {
		fmt.Fprintf(s.Out, "%d partitions already had the leader asked for.\n", notNeeded)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d elections failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}
