// Package service is the shared entry point of Runnel's server binaries:
// it parses flags (each also readable from a RUNNEL_* variable), installs
// logging and telemetry, and runs an fx application until SIGINT or SIGTERM.
//
// Exit codes follow the project's convention: 0 on a clean stop, 1 when the
// service fails (one line on stderr says why), 2 on a usage error.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/runnel-io/runnel/internal/envflag"
	"github.com/runnel-io/runnel/internal/telemetry"
)

// Main runs the service named name. flags registers the binary's flags on
// the flag set; after parsing, opts build the fx graph. It never returns.
func Main(name string, flags func(*pflag.FlagSet), opts ...fx.Option) {
	os.Exit(run(name, os.Args[1:], flags, opts...))
}

func run(name string, args []string, flags func(*pflag.FlagSet), opts ...fx.Option) int {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: %s [flags]\n\nEvery flag can also be set as RUNNEL_<FLAG> (for example %s).\n\n%s", name, envflag.Name("log-level"), fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v (see --help)\n", name, err)
		return 2
	}
	if err := envflag.Apply(fs); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	logger, err := NewLogger(*logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	slog.SetDefault(logger)

	app := fx.New(
		fx.Supply(logger),
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		telemetry.Module(name),
		fx.Options(opts...),
	)
	if err := app.Start(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, rootCause(err))
		return 1
	}
	sig := <-app.Wait()
	stopCtx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: stop: %v\n", name, err)
		return 1
	}
	return sig.ExitCode
}

// NewLogger builds the slog logger the services share.
func NewLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// rootCause trims fx's nesting so the one-line reason names the real failure.
func rootCause(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "): "); i >= 0 && i+3 < len(s) {
		return s[i+3:]
	}
	return s
}
