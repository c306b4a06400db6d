package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/runnel-io/runnel/internal/envflag"
	"github.com/runnel-io/runnel/services/coordinator/internal/launch"
)

// options are zkbench's flags.
type options struct {
	target        string
	compare       bool
	ensemble      int
	coordinator   string
	cfg           Config
	readyTimeout  time.Duration
	zooKeeperHome string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := pflag.NewFlagSet("zkbench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringVar(&o.target, "target", "", "comma-separated client addresses of a running server or ensemble")
	fs.BoolVar(&o.compare, "compare", false, "start Apache ZooKeeper and Runnel's coordinator and compare them")
	fs.IntVar(&o.ensemble, "ensemble", 0, "with --compare: ensemble size (0: standalone); implies --compare")
	fs.IntVar(&o.cfg.Sessions, "sessions", 64, "parallel sessions, spread over the addresses")
	fs.IntVar(&o.cfg.Ops, "ops", 50000, "operations per phase")
	fs.DurationVar(&o.cfg.PhaseTimeout, "phase-timeout", time.Minute, "time bound of each phase")
	fs.IntVar(&o.cfg.Size, "size", 100, "znode data size in bytes")
	fs.StringVar(&o.cfg.Root, "root", "/zkbench", "parent znode of the benchmark's nodes")
	fs.StringVar(&o.coordinator, "coordinator-bin", "", "runnel-coordinator binary for --compare (default: $"+
		launch.BinaryEnv+", else built from source)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", launch.DefaultReadyTimeout, "how long a started server may take to serve")
	fs.StringVar(&o.zooKeeperHome, "zookeeper-home", "", "Apache ZooKeeper installation (default: $ZOOKEEPER_HOME or "+
		launch.DefaultZooKeeperHome+")")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: zkbench --target ADDR[,ADDR...] | --compare [--ensemble N] [flags]\n\n"+
			"Every flag can also be set as RUNNEL_<FLAG> (for example %s).\n\n%s",
			envflag.Name("sessions"), fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := envflag.Apply(fs); err != nil {
		return nil, err
	}
	if o.ensemble != 0 {
		o.compare = true
	}
	switch {
	case o.target == "" && !o.compare:
		return nil, errors.New("give --target or --compare")
	case o.target != "" && o.compare:
		return nil, errors.New("--target and --compare exclude each other")
	case o.ensemble == 1 || o.ensemble < 0:
		return nil, fmt.Errorf("--ensemble %d: want 0 (standalone) or at least 2", o.ensemble)
	case o.cfg.Sessions < 1 || o.cfg.Ops < 1 || o.cfg.Size < 0 || o.cfg.PhaseTimeout <= 0:
		return nil, errors.New("--sessions and --ops must be positive, --size not negative, --phase-timeout positive")
	case !strings.HasPrefix(o.cfg.Root, "/") || o.cfg.Root == "/":
		return nil, fmt.Errorf("--root %q: want an absolute path below /", o.cfg.Root)
	}
	return o, nil
}

// run is main without the process: it returns the exit code (0 success,
// 1 failure, 2 usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "zkbench: %v\n", err)
		return 2
	}
	if o.compare {
		err = compare(ctx, o, stdout, stderr)
	} else {
		err = single(ctx, o, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "zkbench: %v\n", err)
		return 1
	}
	return 0
}

func header(w io.Writer, o *options) {
	fmt.Fprintf(w, "zkbench: %d sessions, %d-byte znodes, up to %d ops per phase (bound %v), go-zookeeper client, %d CPUs, %s\n\n",
		o.cfg.Sessions, o.cfg.Size, o.cfg.Ops, o.cfg.PhaseTimeout, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
}

func single(ctx context.Context, o *options, w io.Writer) error {
	addrs := strings.Split(o.target, ",")
	header(w, o)
	fmt.Fprintf(w, "target: %s\n\n", o.target)
	res, err := Run(ctx, addrs, o.cfg)
	writeTable(w, res)
	return err
}

// system is one server kind to compare.
type system struct {
	name  string
	start func(ctx context.Context) (*launch.Cluster, error)
}

func compare(ctx context.Context, o *options, w, log io.Writer) error {
	lopts := launch.Options{ReadyTimeout: o.readyTimeout, ZooKeeperHome: o.zooKeeperHome}
	bin := o.coordinator
	if bin == "" {
		fmt.Fprintln(log, "zkbench: building runnel-coordinator")
		var err error
		if bin, err = launch.CoordinatorBinary(ctx); err != nil {
			return err
		}
	}
	n := max(o.ensemble, 1)
	zookeeper := system{"zookeeper", func(ctx context.Context) (*launch.Cluster, error) {
		if n == 1 {
			return launch.ZooKeeper(ctx, lopts)
		}
		return launch.ZooKeeperEnsemble(ctx, n, lopts)
	}}
	runnel := system{"runnel", func(ctx context.Context) (*launch.Cluster, error) {
		if n == 1 {
			return launch.Coordinator(ctx, bin, lopts)
		}
		return launch.CoordinatorEnsemble(ctx, bin, n, lopts)
	}}
	results := map[string][]PhaseResult{}
	for _, s := range []system{zookeeper, runnel} {
		res, err := benchSystem(ctx, s, o, log)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		results[s.name] = res
	}
	header(w, o)
	mode := "standalone"
	if n > 1 {
		mode = fmt.Sprintf("%d-member ensembles, sessions spread over the members", n)
	}
	fmt.Fprintf(w, "Apache ZooKeeper 3.8 vs Runnel coordinator, %s; each server started fresh with default durability settings\n\n", mode)
	writeComparison(w, results["zookeeper"], results["runnel"])
	return nil
}

func benchSystem(ctx context.Context, s system, o *options, log io.Writer) ([]PhaseResult, error) {
	fmt.Fprintf(log, "zkbench: starting %s\n", s.name)
	c, err := s.start(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	fmt.Fprintf(log, "zkbench: benchmarking %s at %s\n", s.name, c.ConnectString())
	res, err := Run(ctx, c.Addrs(), o.cfg)
	if err != nil {
		return res, fmt.Errorf("%w\nserver logs:\n%s", err, c.Logs())
	}
	for _, r := range res {
		if r.Errors > 0 {
			fmt.Fprintf(log, "zkbench: %s %s: %d errors, first: %v\n", s.name, r.Name, r.Errors, r.FirstError)
		}
	}
	return res, nil
}
