// Package cli is the runnel command line: topics, produce, consume, groups
// and cluster speak the Kafka protocol (through franz-go) to any
// Kafka-compatible cluster, and dev runs the local platform in one process.
//
// Conventions every command follows:
//
//   - Flag names are those of Kafka's console tools and kcat
//     (--bootstrap-server, --topic, --partition, --from-beginning, ...), and
//     every flag can also be set as RUNNEL_<FLAG> (--bootstrap-server is
//     RUNNEL_BOOTSTRAP_SERVER); a flag on the command line wins.
//   - Exit codes: 0 success; 1 failure, with one line on stderr saying what
//     went wrong and what to do next; 2 usage error (unknown command or flag,
//     bad flag value, missing required flag).
//   - Results go to stdout, diagnostics and progress to stderr, so output can
//     be piped.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/runnel-io/runnel/internal/envflag"
)

// Exit codes of every runnel command.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the command ran and failed; stderr says why
	ExitUsage   = 2 // the command line is wrong
)

// Streams are the standard streams a command reads and writes.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Main runs runnel with args on the process's standard streams and returns
// its exit code. SIGINT and SIGTERM cancel the running command, which then
// stops cleanly; a second signal kills the process the usual way.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// Restore the default handlers so a second Ctrl-C is not swallowed
		// while a slow shutdown runs.
		stop()
	}()
	return Execute(ctx, args, Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
}

// Execute runs runnel with args (without the program name) and returns its
// exit code. Cancelling ctx stops a running command cleanly.
func Execute(ctx context.Context, args []string, s Streams) int {
	root := newRoot(s)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if cmd == nil {
		cmd = root
	}
	var f *failure
	if errors.As(err, &f) {
		fmt.Fprintf(s.Err, "runnel: %s\n", oneLine(f.err.Error()))
		return ExitFailure
	}
	fmt.Fprintf(s.Err, "%s: %s (see `%s --help`)\n", cmd.CommandPath(), oneLine(err.Error()), cmd.CommandPath())
	return ExitUsage
}

// failure marks an error of a command that ran: exit code 1. Every other
// error that reaches Execute (cobra's own flag and argument errors, and
// usageError) is a usage error: exit code 2.
type failure struct{ err error }

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// usageError is a usage error found by a command itself, such as a flag
// value that parses but makes no sense.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run adapts a command body: its errors are failures (exit 1) unless they
// are usage errors.
func run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		var u *usageError
		if errors.As(err, &u) {
			return err
		}
		return &failure{err: err}
	}
}

// oneLine keeps the first line of a message: the exit-1 contract is one line
// on stderr.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

func newRoot(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "runnel",
		Short: "Runnel's command line: topics, produce, consume, groups, cluster and the local platform",
		Long: `runnel talks to any Kafka-compatible cluster (Runnel's broker, Apache Kafka,
...) and runs Runnel's local platform.

Every flag can also be set as an environment variable RUNNEL_<FLAG>:
--bootstrap-server is RUNNEL_BOOTSTRAP_SERVER. A flag on the command line wins.

Exit codes: 0 success, 1 failure (one line on stderr says why), 2 usage error.`,
		Example: `  runnel dev                                   # the local platform on 127.0.0.1:9092
  runnel topics create --topic demo --partitions 3
  printf 'k1\tv1\nk2\tv2\n' | runnel produce --topic demo --key-separator '\t'
  runnel consume --topic demo --from-beginning --max-messages 2 --format '%k=%s\n'`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := envflag.Apply(cmd.Flags()); err != nil {
				return usagef("%v", err)
			}
			return nil
		},
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.AddGroup(
		&cobra.Group{ID: "kafka", Title: "Kafka commands (every one takes --bootstrap-server):"},
		&cobra.Group{ID: "platform", Title: "Platform commands:"},
	)
	for _, c := range []*cobra.Command{
		topicsCmd(s), produceCmd(s), consumeCmd(s), groupsCmd(s), clusterCmd(s), partitionsCmd(s),
	} {
		c.GroupID = "kafka"
		root.AddCommand(c)
	}
	dev := devCmd(s)
	dev.GroupID = "platform"
	root.AddCommand(dev)
	plugins := pluginsCmd(s)
	plugins.GroupID = "platform"
	root.AddCommand(plugins)
	health := healthCmd(s)
	health.GroupID = "platform"
	root.AddCommand(health)
	return root
}

// parentRun is the body of a command that only groups subcommands: without
// arguments it prints help; with an unknown one it is a usage error (cobra
// would otherwise print help and exit 0).
func parentRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
}
