package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// defaultBootstrap is where `runnel dev` and a lone broker listen.
	defaultBootstrap = "127.0.0.1:9092"
	// connectTimeout bounds the first contact with the cluster, so an
	// unreachable broker fails the command quickly with a clear reason
	// instead of letting the client retry for minutes.
	connectTimeout = 10 * time.Second
	// adminTimeout bounds each administrative request (create, describe,
	// alter, ...).
	adminTimeout = 30 * time.Second
)

// kafkaFlags are the connection flags of every Kafka command.
type kafkaFlags struct {
	bootstrap string
}

func (k *kafkaFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&k.bootstrap, "bootstrap-server", defaultBootstrap, "Kafka broker(s) to connect to, HOST:PORT[,HOST:PORT...]")
}

// seeds splits --bootstrap-server into its addresses.
func (k *kafkaFlags) seeds() []string {
	var out []string
	for _, s := range strings.Split(k.bootstrap, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// connect returns a client that has reached the cluster at least once. An
// unreachable cluster is reported as such, naming the address and the
// command that starts a local one.
func (k *kafkaFlags) connect(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	seeds := k.seeds()
	if len(seeds) == 0 {
		return nil, usagef("--bootstrap-server is empty: give HOST:PORT")
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("runnel"),
		kgo.DialTimeout(connectTimeout),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, usagef("--bootstrap-server %q: %v", k.bootstrap, err)
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted while connecting to %s", k.bootstrap)
		}
		return nil, unreachable(k.bootstrap, err)
	}
	return cl, nil
}

// admin returns an admin client over a connected client; closing it closes
// both.
func (k *kafkaFlags) admin(ctx context.Context) (*kadm.Client, error) {
	cl, err := k.connect(ctx)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// adminSession connects an admin client and bounds the command's admin
// calls by adminTimeout; done releases both.
func (k *kafkaFlags) adminSession(ctx context.Context) (adm *kadm.Client, bounded context.Context, done func(), err error) {
	adm, err = k.admin(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	bounded, cancel := context.WithTimeout(ctx, adminTimeout)
	return adm, bounded, func() { cancel(); adm.Close() }, nil
}

// unreachable explains a failed first contact.
func unreachable(addr string, err error) error {
	return fmt.Errorf("cannot reach %s (%s): is a broker running? start one with `runnel dev`, or point --bootstrap-server at your cluster", addr, shortNetError(err))
}

// shortNetError reduces a dial error to its cause ("connection refused")
// without the Go call chain around it.
func shortNetError(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "no such host " + dns.Name
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return "timed out"
	}
	if errors.Is(err, io.EOF) {
		return "connection closed by the server"
	}
	return err.Error()
}

// kafkaError turns a client error into a sentence. It names Kafka's error
// code (for example UNKNOWN_TOPIC_OR_PARTITION) so the message can be looked
// up, and says when the broker does not implement a request at all.
func kafkaError(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message + ": " + ke.Description
	}
	if strings.Contains(err.Error(), "broker is too old") {
		return "the broker does not implement this request"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "connection lost (" + shortNetError(err) + ")"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the cluster did not answer in time"
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return err.Error()
}

// isTerminal reports whether w is a terminal (a character device), where
// progress lines that redraw themselves make sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// topicPartitions returns the partitions of topic, or an error saying it
// does not exist.
func topicPartitions(ctx context.Context, adm *kadm.Client, topic string) ([]int32, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of %q: %s", topic, kafkaError(err))
	}
	td, ok := md.Topics[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return nil, noTopic(topic)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("topic %q: %s", topic, kafkaError(td.Err))
	}
	return td.Partitions.Numbers(), nil
}

// errNoTopic is matched (errors.Is) by the errors saying a topic does not
// exist, so --if-exists can recognise them.
var errNoTopic = errors.New("topic does not exist")

// missingTopicError says a topic does not exist and how to see the ones that
// do.
type missingTopicError struct{ topic string }

func (e *missingTopicError) Error() string {
	return fmt.Sprintf("topic %q does not exist: see `runnel topics list`, or create it with `runnel topics create --topic %s`", e.topic, e.topic)
}

func (e *missingTopicError) Is(target error) bool { return target == errNoTopic }

func noTopic(topic string) error { return &missingTopicError{topic: topic} }
