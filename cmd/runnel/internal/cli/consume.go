package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/sdk/serde"
)

// defaultFormat prints each record's value on its own line, like
// kafka-console-consumer and kcat.
const defaultFormat = `%s\n`

// consumeOptions are the flags of `runnel consume`.
type consumeOptions struct {
	topic         string
	fromBeginning bool
	offset        string
	partition     int32
	maxMessages   int64
	group         string
	format        string
	timeout       time.Duration
	serde         serdeFlags
}

func consumeCmd(s Streams) *cobra.Command {
	var (
		k kafkaFlags
		o consumeOptions
	)
	c := &cobra.Command{
		Use:   "consume --topic TOPIC",
		Short: "Print records of a topic",
		Long: `Print records of a topic, one --format per record (default: the value and a
newline). Without --group every partition (or the one --partition names) is
read directly and no offsets are committed; with --group the command joins
that consumer group, reads what the group assigns it and commits the offsets
of the records it printed.

Where to start: the end of each partition (only new records) unless
--from-beginning or --offset says otherwise. --offset takes earliest, latest,
an offset, or -N for the last N records of each partition. In a group, these
apply only to partitions the group has no committed offset for.

--max-messages N stops after N records, --timeout D after D without a
record; Ctrl-C stops cleanly. The format tokens are kcat's:
` + formatHelp + `

--format also takes a serializer's name instead of a template. ` + serdeHelp + `
Records that cannot be decoded are counted, and the command then exits 1
naming the first one.`,
		Example: `  runnel consume --topic demo --from-beginning
  runnel consume --topic demo --from-beginning --max-messages 10 --format '%p:%o\t%k\t%s\n'
  runnel consume --topic demo --partition 0 --offset 42
  runnel consume --topic demo --group billing --timeout 5s
  runnel consume --topic users --format avro --schema user.avsc --from-beginning`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return consume(cmd.Context(), &k, o, s)
		}),
	}
	k.register(c.Flags())
	fs := c.Flags()
	fs.StringVar(&o.topic, "topic", "", "topic to read")
	fs.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the earliest record (same as --offset earliest)")
	fs.StringVar(&o.offset, "offset", "", "where to start: earliest, latest, an offset, or -N for the last N records (default: latest)")
	fs.Int32Var(&o.partition, "partition", -1, "read only this partition (-1: all of them)")
	fs.Int64Var(&o.maxMessages, "max-messages", 0, "stop after this many records (default: no limit)")
	fs.StringVar(&o.group, "group", "", "consumer group to join and commit offsets for")
	fs.StringVar(&o.format, "format", "", `output format per record, kcat's -f tokens (see above; empty: %s\n, the value and a newline), or a serializer's name (json, tsv, avro, ...) to print decoded values as JSON`)
	o.serde.registerExtras(fs)
	fs.DurationVar(&o.timeout, "timeout", 0, "stop when no record arrives for this long, e.g. 5s (default: wait forever)")
	_ = c.MarkFlagRequired("topic")
	c.MarkFlagsMutuallyExclusive("from-beginning", "offset")
	c.MarkFlagsMutuallyExclusive("group", "partition")
	return c
}

// parseStartOffset turns --offset into where the client starts.
func parseStartOffset(s string, fromBeginning bool) (kgo.Offset, error) {
	if fromBeginning {
		return kgo.NewOffset().AtStart(), nil
	}
	switch strings.ToLower(s) {
	case "", "latest", "end":
		return kgo.NewOffset().AtEnd(), nil
	case "earliest", "beginning", "start":
		return kgo.NewOffset().AtStart(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return kgo.Offset{}, usagef("--offset %q: use earliest, latest, an offset or -N", s)
	}
	if n < 0 {
		return kgo.NewOffset().AtEnd().Relative(n), nil
	}
	return kgo.NewOffset().At(n), nil
}

func consume(ctx context.Context, k *kafkaFlags, o consumeOptions, s Streams) error {
	if o.format == "" {
		o.format = defaultFormat
	}
	var dec *recordDecoder
	if isSerdeName(o.format) {
		o.serde.format = o.format
		sd, _, _, err := o.serde.open(ctx)
		if err != nil {
			return err
		}
		defer sd.Close()
		dec = &recordDecoder{sd: sd}
		o.format = defaultFormat
	}
	format, err := parseFormat(o.format)
	if err != nil {
		return err
	}
	start, err := parseStartOffset(o.offset, o.fromBeginning)
	if err != nil {
		return err
	}
	if o.maxMessages < 0 {
		return usagef("--max-messages %d: give a positive number", o.maxMessages)
	}
	if o.partition < -1 {
		return usagef("--partition %d: give a partition number (0 or more)", o.partition)
	}
	opts := []kgo.Opt{kgo.ConsumeResetOffset(start)}
	switch {
	case o.group != "":
		// Commit only what was printed: marks, not everything polled.
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.ConsumeTopics(o.topic), kgo.AutoCommitMarks())
	case o.partition >= 0:
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: {o.partition: start}}))
	default:
		opts = append(opts, kgo.ConsumeTopics(o.topic))
	}
	cl, err := k.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	parts, err := topicPartitions(ctx, kadm.NewClient(cl), o.topic)
	if err != nil {
		return err
	}
	if o.partition >= int32(len(parts)) {
		return fmt.Errorf("topic %q has %d partitions, numbered 0 to %d: there is no partition %d", o.topic, len(parts), len(parts)-1, o.partition)
	}

	w := bufio.NewWriterSize(s.Out, 64<<10)
	var (
		printed int64
		buf     []byte
		fatal   error
	)
	for fatal == nil && (o.maxMessages == 0 || printed < o.maxMessages) {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		limit := -1
		if o.maxMessages > 0 {
			limit = int(o.maxMessages - printed)
		}
		fetches := cl.PollRecords(pctx, limit)
		idle := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			switch {
			case fatal != nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			case t == "":
				// The client reports group failures without a partition.
				fatal = fmt.Errorf("consumer group %q: %s", o.group, groupError(err))
			default:
				fatal = fmt.Errorf("reading %s partition %d: %s", t, p, kafkaError(err))
			}
		})
		n := 0
		if dec != nil {
			dec.decode(ctx, fetches)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if o.maxMessages > 0 && printed >= o.maxMessages {
				return
			}
			if dec == nil || dec.ok(r) {
				buf = format.appendRecord(buf[:0], r)
				_, _ = w.Write(buf)
			}
			printed++
			n++
			if o.group != "" {
				cl.MarkCommitRecords(r)
			}
		})
		if err := w.Flush(); err != nil {
			// The reader went away (a closed pipe): nothing more to do.
			fatal = fmt.Errorf("writing output: %w", err)
		}
		if idle && n == 0 {
			break
		}
	}
	if o.group != "" {
		cctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil && fatal == nil {
			fatal = fmt.Errorf("committing offsets of group %q: %s", o.group, kafkaError(err))
		}
	}
	if fatal == nil && dec != nil && dec.failed > 0 {
		fatal = fmt.Errorf("%d records could not be decoded; the first: %s", dec.failed, dec.first)
	}
	return fatal
}

// recordDecoder decodes a poll's values in one serializer call, replacing
// each record's value with its canonical JSON.
type recordDecoder struct {
	sd     serde.Serde
	bad    map[*kgo.Record]bool
	failed int
	first  string
}

func (d *recordDecoder) decode(ctx context.Context, fetches kgo.Fetches) {
	recs := fetches.Records()
	d.bad = map[*kgo.Record]bool{}
	if len(recs) == 0 {
		return
	}
	values := make([][]byte, len(recs))
	for i, r := range recs {
		values[i] = r.Value
	}
	out, err := d.sd.Decode(ctx, values)
	var be *serde.BatchError
	if err != nil && !errors.As(err, &be) {
		for _, r := range recs {
			d.fail(r, "serializer failed: "+err.Error())
		}
		return
	}
	for i, r := range recs {
		if re := be.ForIndex(i); re != nil {
			d.fail(r, recordReason(re))
			continue
		}
		r.Value = out[i]
	}
}

func (d *recordDecoder) fail(r *kgo.Record, why string) {
	d.bad[r] = true
	d.failed++
	if d.first == "" {
		d.first = fmt.Sprintf("%s partition %d offset %d: %s", r.Topic, r.Partition, r.Offset, why)
	}
}

func (d *recordDecoder) ok(r *kgo.Record) bool { return !d.bad[r] }
