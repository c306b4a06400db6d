package serde

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/runnel-io/runnel/sdk/plugin"
)

// Mode says how a Loader runs a serializer.
type Mode int

const (
	// Auto follows the discovery order: a plugin binary found on the
	// plugin path or beside the host wins over a built-in of the same name.
	Auto Mode = iota
	// PreferBuiltin links a built-in in-process when there is one, and
	// starts a plugin process only for names no built-in has.
	PreferBuiltin
	// ProcessOnly always starts a plugin process, even for a built-in.
	ProcessOnly
)

// ParseMode reads a Mode from its name: auto, builtin or process.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return Auto, nil
	case "builtin":
		return PreferBuiltin, nil
	case "process":
		return ProcessOnly, nil
	}
	return Auto, fmt.Errorf("unknown plugin mode %q: use auto, builtin or process", s)
}

// Loader finds serializers by name and opens them.
type Loader struct {
	// Builtins are the serializers linked into the host, by name.
	Builtins map[string]Plugin
	// Search overrides where plugin binaries are looked for (its
	// Builtins field is filled from the map above).
	Search plugin.Search
	// Mode picks between a plugin process and a built-in.
	Mode Mode
	// Backoff is the restart policy of plugin processes (zero: the
	// default).
	Backoff plugin.Backoff
	// Logger receives plugin processes' log lines (nil: warnings and
	// errors on stderr).
	Logger hclog.Logger
	// CallTimeout bounds a call to a plugin process whose context has no
	// sooner deadline (zero: plugin.DefaultCallTimeout); a process that
	// does not answer in time is killed and restarted.
	CallTimeout time.Duration
	// MaxBatchBytes splits a batch sent to a plugin process into calls of
	// at most this many bytes (zero: 16 MiB), under gRPC's message limit.
	MaxBatchBytes int
}

func (l *Loader) search() plugin.Search {
	s := l.Search
	s.Builtins = nil
	for n := range l.Builtins {
		s.Builtins = append(s.Builtins, n)
	}
	sort.Strings(s.Builtins)
	return s
}

// Open returns the serializer called name, configured with cfg. With
// ProcessOnly, a built-in name with no binary on the path is an error
// matching plugin.ErrNotFound.
func (l *Loader) Open(ctx context.Context, name string, cfg Config) (Serde, error) {
	found, err := l.pick(name)
	if err != nil {
		return nil, err
	}
	if found.Source == plugin.SourceBuiltin {
		p := l.Builtins[name]
		sd, err := p.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("serializer %q: %w", name, err)
		}
		return &builtin{Serde: sd, info: p.description()}, nil
	}
	return l.start(ctx, found, cfg)
}

// pick applies the mode to discovery.
func (l *Loader) pick(name string) (plugin.Found, error) {
	s := l.search()
	if l.Mode == PreferBuiltin {
		if _, ok := l.Builtins[name]; ok {
			return plugin.Found{Kind: plugin.KindSerde, Name: name, Source: plugin.SourceBuiltin}, nil
		}
	}
	if l.Mode == ProcessOnly {
		s.Builtins = nil
	}
	return plugin.Find(plugin.KindSerde, name, s)
}

// Listing is one serializer in List's answer.
type Listing struct {
	plugin.Found
	// Info is the plugin's answer to describe (for a process plugin, from
	// running `runnel-serde-NAME describe`).
	Info plugin.Description
	// Err is why describe failed, if it did.
	Err error
}

// List returns every serializer discovery finds, in search order, each
// described.
func (l *Loader) List(ctx context.Context) []Listing {
	var out []Listing
	for _, f := range plugin.Discover(plugin.KindSerde, l.search()) {
		li := Listing{Found: f}
		if f.Source == plugin.SourceBuiltin {
			li.Info = l.Builtins[f.Name].description()
		} else {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			li.Info, li.Err = plugin.Describe(dctx, f.Path)
			cancel()
		}
		out = append(out, li)
	}
	return out
}

// start launches a plugin process and configures it; a restart after a
// crash configures it again.
func (l *Loader) start(ctx context.Context, f plugin.Found, cfg Config) (Serde, error) {
	ps := &processSerde{maxBytes: l.MaxBatchBytes}
	if ps.maxBytes <= 0 {
		ps.maxBytes = 16 << 20
	}
	proc, err := plugin.Start(ctx, plugin.ProcessConfig[*client]{
		Kind: plugin.KindSerde, Name: f.Name, Path: f.Path,
		Client: func() *goplugin.ClientConfig {
			return plugin.ClientConfig(plugin.KindSerde, OldestProtocol, f.Path, PluginSets(nil))
		},
		Dispense: pluginKey,
		Init: func(ctx context.Context, c *client) error {
			d, err := c.Describe(ctx)
			if err != nil {
				return fmt.Errorf("describe: %w", err)
			}
			if d.Name != f.Name {
				return fmt.Errorf("the binary says it is %q, not %q", d.Name, f.Name)
			}
			if err := c.configure(ctx, cfg); err != nil {
				return fmt.Errorf("configure: %w", err)
			}
			return nil
		},
		Backoff:     l.Backoff,
		Logger:      l.Logger,
		CallTimeout: l.CallTimeout,
	})
	if err != nil {
		var bad error
		if errors.Is(err, ErrBadConfig) {
			bad = ErrBadConfig
		}
		return nil, errors.Join(fmt.Errorf("serializer %q: %w", f.Name, err), bad)
	}
	ps.proc = proc
	return ps, nil
}

// builtin is a serializer linked in-process.
type builtin struct {
	Serde
	info plugin.Description
}

func (b *builtin) Describe(context.Context) (plugin.Description, error) { return b.info, nil }

// processSerde is a serializer running as a supervised plugin process.
type processSerde struct {
	proc     *plugin.Process[*client]
	maxBytes int
}

func (p *processSerde) Describe(ctx context.Context) (plugin.Description, error) {
	var d plugin.Description
	err := p.proc.Do(ctx, func(ctx context.Context, c *client) error {
		var err error
		d, err = c.Describe(ctx)
		return err
	})
	return d, err
}

func (p *processSerde) Encode(ctx context.Context, values [][]byte) ([][]byte, error) {
	return p.chunked(ctx, values, (*client).Encode)
}

func (p *processSerde) Decode(ctx context.Context, data [][]byte) ([][]byte, error) {
	return p.chunked(ctx, data, (*client).Decode)
}

// chunked sends in in calls of at most maxBytes each and reassembles the
// results, renumbering item errors.
func (p *processSerde) chunked(ctx context.Context, in [][]byte, fn func(*client, context.Context, [][]byte) ([][]byte, error)) ([][]byte, error) {
	out := make([][]byte, 0, len(in))
	var bad []*RecordError
	for start := 0; start < len(in); {
		end, size := start, 0
		for end < len(in) && (end == start || size+len(in[end]) <= p.maxBytes) {
			size += len(in[end])
			end++
		}
		var part [][]byte
		err := p.proc.Do(ctx, func(ctx context.Context, c *client) error {
			var err error
			part, err = fn(c, ctx, in[start:end])
			var be *BatchError
			if errors.As(err, &be) {
				for _, r := range be.Records {
					r.Index += start
					bad = append(bad, r)
				}
				return nil
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
		start = end
	}
	if bad != nil {
		slices.SortFunc(bad, func(a, b *RecordError) int { return a.Index - b.Index })
		return out, &BatchError{Records: bad}
	}
	return out, nil
}

func (p *processSerde) Close() error { return p.proc.Close() }

// Supervised is the view of a plugin process that tests and diagnostics
// get through ProcessOf.
type Supervised interface {
	// Starts is how many times the binary was started.
	Starts() int
	// Kill kills the process as a crash would.
	Kill()
}

// ProcessOf returns the plugin process behind s, or nil for a built-in.
func ProcessOf(s Serde) Supervised {
	if p, ok := s.(*processSerde); ok {
		return p.proc
	}
	return nil
}
