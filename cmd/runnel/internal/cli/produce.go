package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/sdk/serde"
)

// produceOptions are the flags of `runnel produce`.
type produceOptions struct {
	topic        string
	keySeparator string
	partition    int32
	acks         string
	file         string
	compression  string
	serde        serdeFlags
}

func produceCmd(s Streams) *cobra.Command {
	var (
		k kafkaFlags
		o produceOptions
	)
	c := &cobra.Command{
		Use:   "produce --topic TOPIC [--file FILE]",
		Short: "Send lines from stdin or a file as records",
		Long: `Send each line of stdin (or of --file) as one record. With --key-separator,
the text before the first separator is the record's key and the rest its
value; a line without the separator is not sent and is reported as failed.
Keyed records go to the partition Kafka's Java client picks (murmur2 of the
key) unless --partition names one.

With --file, progress (records/s, bytes, percentage) is shown on stderr when
stderr is a terminal, and a summary line follows at the end. Records that
fail are reported with their line numbers, and the exit code is then 1.

The separator may be written with escapes: '\t' is a tab.

` + serdeHelp + `

With tsv and --serde-opt header=true, the first line is the header and is
skipped. A line whose value the serializer rejects is reported with its
line number and the field.`,
		Example: `  echo hello | runnel produce --topic demo
  printf 'user1\t{"n":1}\nuser2\t{"n":2}\n' | runnel produce --topic demo --key-separator '\t'
  runnel produce --topic demo --file events.txt --acks 1 --compression zstd
  runnel produce --topic demo --partition 2 < lines.txt
  runnel produce --topic users --format avro --schema user.avsc < users.jsonl
  runnel produce --topic rows --format tsv --serde-opt columns=id:int,name < rows.tsv`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return produce(cmd.Context(), &k, o, s)
		}),
	}
	k.register(c.Flags())
	fs := c.Flags()
	fs.StringVar(&o.topic, "topic", "", "topic to send to")
	fs.StringVar(&o.keySeparator, "key-separator", "", "split each line into key and value at the first occurrence of this text (default: no key)")
	fs.Int32Var(&o.partition, "partition", -1, "send every record to this partition (-1: by key, or spread)")
	fs.StringVar(&o.acks, "acks", "all", "acknowledgements to wait for: 0, 1 or all")
	fs.StringVar(&o.file, "file", "", "read lines from this file instead of stdin")
	fs.StringVar(&o.compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&o.serde.format, "format", "", "serializer for values: json, tsv, avro or a plugin's name (default: send lines as they are)")
	o.serde.registerExtras(fs)
	_ = c.MarkFlagRequired("topic")
	return c
}

// produceClientOpts turns the flags into client options.
func produceClientOpts(o produceOptions) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(o.topic),
		// Like the console producer: the broker decides through
		// auto.create.topics.enable whether a missing topic is created.
		kgo.AllowAutoTopicCreation(),
		// A record that cannot be delivered fails instead of being retried
		// forever, so the command always ends.
		kgo.RecordDeliveryTimeout(time.Minute),
	}
	switch o.acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, usagef("--acks %q: use 0, 1 or all", o.acks)
	}
	var codec kgo.CompressionCodec
	switch o.compression {
	case "none", "":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, usagef("--compression %q: use none, gzip, snappy, lz4 or zstd", o.compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	} else if o.partition != -1 {
		return nil, usagef("--partition %d: give a partition number (0 or more)", o.partition)
	}
	return opts, nil
}

func produce(ctx context.Context, k *kafkaFlags, o produceOptions, s Streams) error {
	opts, err := produceClientOpts(o)
	if err != nil {
		return err
	}
	sep := []byte(unescape(o.keySeparator))
	in, size, name := s.In, int64(-1), "stdin"
	if o.file != "" {
		f, err := os.Open(o.file)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in, name = f, o.file
	}
	var enc *lineEncoder
	if o.serde.format != "" {
		sd, d, cfg, err := o.serde.open(ctx)
		if err != nil {
			return err
		}
		defer sd.Close()
		enc = &lineEncoder{sd: sd, text: d.Has(serde.CapText), skipHeader: d.Has("header") && cfg.Options["header"] == "true"}
	}
	cl, err := k.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	var (
		fails    failedLines
		acked    atomic.Int64
		readB    atomic.Int64
		start    = time.Now()
		progress *progressLine
	)
	if o.file != "" && isTerminal(s.Err) {
		progress = startProgress(s.Err, size, &acked, &readB)
	}
	r := bufio.NewReaderSize(in, 1<<20)
	line := int64(0)
	var readErr error
	for ctx.Err() == nil {
		raw, err := r.ReadBytes('\n')
		if len(raw) > 0 {
			line++
			readB.Add(int64(len(raw)))
			key, value, ok := splitRecord(raw, sep)
			switch {
			case !ok:
				fails.add(line, fmt.Sprintf("no key separator %q", sep))
			case enc != nil:
				if line == 1 && enc.skipHeader {
					break
				}
				rec := &kgo.Record{Key: key, Value: value}
				if o.partition >= 0 {
					rec.Partition = o.partition
				}
				enc.add(line, rec)
				// Encode a batch when it is full or when no more input is
				// waiting, so interactive input is sent line by line.
				if enc.full() || r.Buffered() == 0 {
					enc.flush(ctx, cl, &fails, &acked)
				}
			default:
				rec := &kgo.Record{Key: key, Value: value}
				if o.partition >= 0 {
					rec.Partition = o.partition
				}
				n := line
				cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
					if err != nil {
						fails.add(n, kafkaError(err))
						return
					}
					acked.Add(1)
				})
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	if enc != nil {
		enc.flush(ctx, cl, &fails, &acked)
	}
	flushErr := cl.Flush(ctx)
	progress.stop()
	switch {
	case ctx.Err() != nil || errors.Is(flushErr, context.Canceled):
		return fmt.Errorf("interrupted: %d of %d records were acknowledged", acked.Load(), line)
	case readErr != nil:
		return fmt.Errorf("reading %s at line %d: %w (%d records acknowledged before that)", name, line+1, readErr, acked.Load())
	case fails.count() > 0:
		return fmt.Errorf("%d of %d records failed: %s", fails.count(), line, fails.summary())
	}
	if o.file != "" {
		el := time.Since(start)
		fmt.Fprintf(s.Err, "Produced %d records (%s) from %s to %s in %s (%s records/s).\n",
			acked.Load(), humanBytes(readB.Load()), name, o.topic, el.Round(time.Millisecond), humanCount(rate(acked.Load(), el)))
	}
	return nil
}

// splitRecord cuts one input line (with or without its line ending) into a
// record's key and value. With an empty separator the whole line is the
// value and the key is nil; otherwise the key is what precedes the first
// separator, and ok is false when there is none.
func splitRecord(line, sep []byte) (key, value []byte, ok bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(sep) == 0 {
		return nil, line, true
	}
	k, v, found := bytes.Cut(line, sep)
	if !found {
		return nil, nil, false
	}
	// Never nil: an empty key is a key, unlike a missing one.
	if k == nil {
		k = []byte{}
	}
	return k, v, true
}

// failedLines collects the records that failed, by reason.
type failedLines struct {
	mu     sync.Mutex
	n      int
	order  []string
	byWhy  map[string][]int64
	totals map[string]int
}

func (f *failedLines) add(line int64, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byWhy == nil {
		f.byWhy, f.totals = map[string][]int64{}, map[string]int{}
	}
	if _, seen := f.totals[why]; !seen {
		f.order = append(f.order, why)
	}
	f.n++
	f.totals[why]++
	if len(f.byWhy[why]) < maxListedLines {
		f.byWhy[why] = append(f.byWhy[why], line)
	}
}

func (f *failedLines) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// maxListedLines bounds the line numbers named per reason, to keep the
// report on one readable line.
const maxListedLines = 10

// summary renders the failures on one line: "line 3, 7: reason; line 9:
// other reason", in the order the reasons first appeared. Lines are sorted
// since callbacks of different partitions can arrive out of order.
func (f *failedLines) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := make([]string, 0, len(f.order))
	for _, why := range f.order {
		lines := append([]int64(nil), f.byWhy[why]...)
		slices.Sort(lines)
		nums := make([]string, len(lines))
		for i, l := range lines {
			nums[i] = strconv.FormatInt(l, 10)
		}
		word := "line "
		if len(lines) > 1 {
			word = "lines "
		}
		p := word + strings.Join(nums, ", ")
		if more := f.totals[why] - len(lines); more > 0 {
			p += fmt.Sprintf(" and %d more", more)
		}
		parts = append(parts, p+": "+why)
	}
	return strings.Join(parts, "; ")
}

// lineEncoder batches input lines through a serializer: one serializer
// call per batch, as the plugin contract wants.
type lineEncoder struct {
	sd serde.Serde
	// text: the format's wire form is a text line, so input lines are in
	// that form (decoded to check them, then encoded again to normalise);
	// otherwise input lines are canonical JSON.
	text       bool
	skipHeader bool
	lines      []int64
	recs       []*kgo.Record
}

const encodeBatch = 512

func (e *lineEncoder) add(line int64, r *kgo.Record) {
	e.lines = append(e.lines, line)
	e.recs = append(e.recs, r)
}

func (e *lineEncoder) full() bool { return len(e.recs) >= encodeBatch }

// flush encodes the pending lines and sends those that encoded; the
// others are reported by line number with the serializer's reason.
func (e *lineEncoder) flush(ctx context.Context, cl *kgo.Client, fails *failedLines, acked *atomic.Int64) {
	if len(e.recs) == 0 {
		return
	}
	defer func() { e.lines, e.recs = e.lines[:0], e.recs[:0] }()
	values := make([][]byte, len(e.recs))
	for i, r := range e.recs {
		values[i] = r.Value
	}
	bad := map[int]string{}
	collect := func(err error) bool {
		var be *serde.BatchError
		if errors.As(err, &be) {
			for _, re := range be.Records {
				if _, seen := bad[re.Index]; !seen {
					bad[re.Index] = recordReason(re)
				}
			}
			return true
		}
		return false
	}
	if e.text {
		canon, err := e.sd.Decode(ctx, values)
		if err != nil && !collect(err) {
			e.failAll(fails, err)
			return
		}
		for i := range canon {
			if _, isBad := bad[i]; isBad {
				canon[i] = []byte("null")
			}
		}
		values = canon
	}
	wire, err := e.sd.Encode(ctx, values)
	if err != nil && !collect(err) {
		e.failAll(fails, err)
		return
	}
	for i, r := range e.recs {
		if why, isBad := bad[i]; isBad {
			fails.add(e.lines[i], why)
			continue
		}
		r.Value = wire[i]
		n := e.lines[i]
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				fails.add(n, kafkaError(err))
				return
			}
			acked.Add(1)
		})
	}
}

func (e *lineEncoder) failAll(fails *failedLines, err error) {
	for _, l := range e.lines {
		fails.add(l, "serializer failed: "+oneLine(err.Error()))
	}
}

// recordReason words a rejected value for the failure summary.
func recordReason(re *serde.RecordError) string {
	if re.Field == "" {
		return re.Reason
	}
	return fmt.Sprintf("field %q: %s", re.Field, re.Reason)
}
