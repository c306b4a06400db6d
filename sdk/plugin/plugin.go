package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
)

// Kind is a family of plugins sharing one contract.
type Kind string

// The kinds of plugins Runnel knows.
const (
	KindSerde   Kind = "serde"
	KindStorage Kind = "storage"
)

// MagicCookieKey is the environment variable go-plugin's handshake sets for
// a plugin process. A plugin binary started by hand (without it) explains
// that it is a plugin instead of waiting for a host that is not there.
const MagicCookieKey = "RUNNEL_PLUGIN"

// MaxMessageBytes bounds one gRPC message across a plugin boundary. Hosts
// split larger batches into several calls; a single value larger than this
// cannot cross.
const MaxMessageBytes = 256 << 20

// Handshake returns the handshake of kind k. The cookie differs per kind, so
// a storage plugin started as a serializer fails at once with a clear
// message rather than at the first call. ProtocolVersion is the oldest
// version the kind has; hosts and plugins negotiate the newest both speak
// through VersionedPlugins.
func Handshake(k Kind, oldestProtocol uint) goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  oldestProtocol,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: "runnel-" + string(k) + "-plugin",
	}
}

// BinaryName is the file name of the plugin of kind k called name.
func BinaryName(k Kind, name string) string {
	return "runnel-" + string(k) + "-" + name
}

// ErrBadName is matched by errors about a plugin name that cannot be part
// of a file name.
var ErrBadName = errors.New("invalid plugin name")

// CheckName accepts plugin names made of lower-case letters, digits, '-'
// and '_', starting with a letter or digit: they become part of a file
// name, and a name with a path separator would escape the plugin folders.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return fmt.Errorf("%w %q: use lower-case letters, digits, '-' and '_'", ErrBadName, name)
		}
	}
	return nil
}

// Description is what a plugin says about itself: the answer to the
// describe subcommand and to the Describe call of every contract.
type Description struct {
	// Name is the plugin's name (json for runnel-serde-json).
	Name string `json:"name"`
	// Kind is the contract it implements.
	Kind Kind `json:"kind"`
	// Version is the plugin's own version, free-form (semver advised).
	Version string `json:"version"`
	// Protocols are the contract's protocol versions the plugin speaks.
	Protocols []int `json:"protocols"`
	// Capabilities are the contract's optional features the plugin has;
	// each contract documents its own.
	Capabilities []string `json:"capabilities,omitempty"`
	// Summary is one line for listings.
	Summary string `json:"summary,omitempty"`
}

// Has reports whether d lists capability c.
func (d Description) Has(c string) bool {
	for _, x := range d.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// tracePropagator carries W3C trace context across plugin calls whatever
// global propagator the host installed (the default one propagates
// nothing), so a plugin's spans always join the host's trace.
var tracePropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// ClientConfig returns the go-plugin client configuration every host uses
// for a plugin binary at path: gRPC only, the kind's handshake, versioned
// plugin sets, large messages, and OpenTelemetry on the connection so trace
// context travels with each call.
func ClientConfig(k Kind, oldestProtocol uint, path string, sets map[int]goplugin.PluginSet) *goplugin.ClientConfig {
	return &goplugin.ClientConfig{
		HandshakeConfig:  Handshake(k, oldestProtocol),
		VersionedPlugins: sets,
		Cmd:              command(path),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(tracePropagator))),
			grpc.WithDefaultCallOptions(
				grpc.MaxCallRecvMsgSize(MaxMessageBytes),
				grpc.MaxCallSendMsgSize(MaxMessageBytes),
			),
		},
	}
}

// ServeConfig returns the go-plugin server configuration matching
// ClientConfig, for a plugin binary's main.
func ServeConfig(k Kind, oldestProtocol uint, sets map[int]goplugin.PluginSet) *goplugin.ServeConfig {
	return &goplugin.ServeConfig{
		HandshakeConfig:  Handshake(k, oldestProtocol),
		VersionedPlugins: sets,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts,
				grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithPropagators(tracePropagator))),
				grpc.MaxRecvMsgSize(MaxMessageBytes),
				grpc.MaxSendMsgSize(MaxMessageBytes),
			)
			return grpc.NewServer(opts...)
		},
	}
}

// Preamble is the start of a plugin binary's main. With the argument
// describe it prints d as JSON; started by hand, without a host, it says what
// the binary is on stderr. In both cases done is true and the binary should
// exit with code. Otherwise done is false and the binary serves.
func Preamble(d Description, args []string, stdout, stderr io.Writer) (code int, done bool) {
	if len(args) > 1 && args[1] == "describe" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return 1, true
		}
		return 0, true
	}
	if os.Getenv(MagicCookieKey) == "" {
		name := BinaryName(d.Kind, d.Name)
		fmt.Fprintf(stderr, "%s is a Runnel %s plugin (version %s): hosts such as `runnel` start it; `%s describe` prints what it offers.\n",
			name, d.Kind, d.Version, name)
		return 1, true
	}
	return 0, false
}

// Describe runs `path describe` and parses its answer. The context bounds
// the run.
func Describe(ctx context.Context, path string) (Description, error) {
	cmd := commandContext(ctx, path, "describe")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg != "" {
			return Description{}, fmt.Errorf("%s describe: %w: %s", path, err, firstLine(msg))
		}
		return Description{}, fmt.Errorf("%s describe: %w", path, err)
	}
	var d Description
	if err := json.Unmarshal([]byte(out.String()), &d); err != nil {
		return Description{}, fmt.Errorf("%s describe: not a plugin description: %w", path, err)
	}
	return d, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
