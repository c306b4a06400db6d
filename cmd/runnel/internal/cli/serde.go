package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/runnel-io/runnel/plugins/serde/builtin"
	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
)

// serdeFlags choose a serializer for produce and consume.
type serdeFlags struct {
	format string
	schema string
	opts   []string
	mode   string
}

const serdeHelp = `A serializer (--format json, tsv, avro, or the name of any serializer
plugin found by ` + "`runnel plugins list`" + `) converts values: produce reads JSON
lines (or lines in the format's own text form, for text formats such as
tsv) and sends the encoded values; consume decodes values and prints them as
JSON, one per line. --schema gives a schema file (Avro schema for avro,
column list for tsv) and --serde-opt key=value the serializer's options.`

func (s *serdeFlags) registerExtras(fs *pflag.FlagSet) {
	fs.StringVar(&s.schema, "schema", "", "schema file for the serializer (avro: an .avsc file; tsv: a JSON column list)")
	fs.StringArrayVar(&s.opts, "serde-opt", nil, "serializer option key=value (repeatable), e.g. columns=id:int,name for tsv")
	fs.StringVar(&s.mode, "plugin-mode", "auto", "how to run the serializer: auto (discovery order), builtin (in-process when built in) or process (always a plugin process)")
}

// isSerdeName tells a serializer name from a kcat output template, both
// given to consume's --format: a template has % tokens or escapes.
func isSerdeName(s string) bool {
	return s != "" && !strings.ContainsAny(s, `%\`) && plugin.CheckName(s) == nil
}

// loader is the serializer loader of the CLI: the built-ins are linked
// in, and plugin processes log nothing (their failures come back as
// errors, keeping stderr to one line).
func (s *serdeFlags) loader() (*serde.Loader, error) {
	mode, err := serde.ParseMode(s.mode)
	if err != nil {
		return nil, usagef("--plugin-mode: %v", err)
	}
	return &serde.Loader{
		Builtins: builtin.Plugins(),
		Mode:     mode,
		Logger:   hclog.New(&hclog.LoggerOptions{Level: hclog.Off}),
	}, nil
}

// config reads --schema and --serde-opt.
func (s *serdeFlags) config() (serde.Config, error) {
	cfg := serde.Config{Options: map[string]string{}}
	for _, o := range s.opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return cfg, usagef("--serde-opt %q: use key=value", o)
		}
		cfg.Options[k] = v
	}
	if s.schema != "" {
		b, err := os.ReadFile(s.schema)
		if err != nil {
			return cfg, fmt.Errorf("--schema: %w", err)
		}
		cfg.Schema = b
	}
	return cfg, nil
}

// open starts the serializer named by --format.
func (s *serdeFlags) open(ctx context.Context) (serde.Serde, plugin.Description, serde.Config, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, plugin.Description{}, cfg, err
	}
	l, err := s.loader()
	if err != nil {
		return nil, plugin.Description{}, cfg, err
	}
	sd, err := l.Open(ctx, s.format, cfg)
	if err != nil {
		return nil, plugin.Description{}, cfg, fmt.Errorf("--format %s: %w", s.format, err)
	}
	d, err := sd.Describe(ctx)
	if err != nil {
		sd.Close()
		return nil, plugin.Description{}, cfg, fmt.Errorf("--format %s: %w", s.format, err)
	}
	return sd, d, cfg, nil
}
