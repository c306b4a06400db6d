package serde

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde/serdev1"
)

// ProtocolVersion is the newest serializer protocol this package speaks;
// OldestProtocol the oldest. Both are 1 until serdev2 exists.
const (
	ProtocolVersion = 1
	OldestProtocol  = 1
)

// pluginKey names the serializer in go-plugin's plugin set.
const pluginKey = "serde"

// grpcPlugin is the go-plugin adapter: on the plugin side it registers the
// gRPC server around impl; on the host side it returns a client.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl *Plugin
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	serdev1.RegisterSerdeServer(s, &server{impl: p.impl})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &client{c: serdev1.NewSerdeClient(cc)}, nil
}

// PluginSets are the versioned plugin sets of impl (nil on the host side).
func PluginSets(impl *Plugin) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		1: {pluginKey: &grpcPlugin{impl: impl}},
	}
}

// server serves one Plugin over gRPC. Configure replaces the configured
// serializer atomically, so calls already running finish with the old one.
type server struct {
	serdev1.UnimplementedSerdeServer
	impl    *Plugin
	current atomic.Pointer[Serde]
}

func (s *server) Describe(context.Context, *serdev1.DescribeRequest) (*serdev1.DescribeResponse, error) {
	d := s.impl.Info
	r := &serdev1.DescribeResponse{Name: d.Name, Version: d.Version, Capabilities: d.Capabilities, Summary: d.Summary}
	for _, p := range d.Protocols {
		r.Protocols = append(r.Protocols, int32(p))
	}
	return r, nil
}

func (s *server) Configure(_ context.Context, req *serdev1.ConfigureRequest) (*serdev1.ConfigureResponse, error) {
	sd, err := s.impl.New(Config{Schema: req.Schema, Options: req.Options})
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if old := s.current.Swap(&sd); old != nil {
		_ = (*old).Close()
	}
	return &serdev1.ConfigureResponse{}, nil
}

func (s *server) Encode(ctx context.Context, b *serdev1.Batch) (*serdev1.BatchResult, error) {
	return s.run(ctx, b, Serde.Encode)
}

func (s *server) Decode(ctx context.Context, b *serdev1.Batch) (*serdev1.BatchResult, error) {
	return s.run(ctx, b, Serde.Decode)
}

func (s *server) run(ctx context.Context, b *serdev1.Batch, fn func(Serde, context.Context, [][]byte) ([][]byte, error)) (*serdev1.BatchResult, error) {
	sd := s.current.Load()
	if sd == nil {
		return nil, status.Error(codes.FailedPrecondition, "the serializer was not configured: call Configure first")
	}
	out, err := fn(*sd, ctx, b.Items)
	var be *BatchError
	if err != nil && !errors.As(err, &be) {
		// Aborted, not Unknown: the plugin answered, so the host must not
		// take this for a broken connection.
		return nil, status.Error(codes.Aborted, err.Error())
	}
	r := &serdev1.BatchResult{Items: out}
	if be != nil {
		for _, re := range be.Records {
			r.Errors = append(r.Errors, &serdev1.ItemError{Index: uint32(re.Index), Field: re.Field, Message: re.Reason})
		}
	}
	return r, nil
}

// client is the host side of one plugin connection.
type client struct {
	c serdev1.SerdeClient
}

func (c *client) Describe(ctx context.Context) (plugin.Description, error) {
	r, err := c.c.Describe(ctx, &serdev1.DescribeRequest{})
	if err != nil {
		return plugin.Description{}, err
	}
	d := plugin.Description{Name: r.Name, Kind: plugin.KindSerde, Version: r.Version, Capabilities: r.Capabilities, Summary: r.Summary}
	for _, p := range r.Protocols {
		d.Protocols = append(d.Protocols, int(p))
	}
	return d, nil
}

func (c *client) configure(ctx context.Context, cfg Config) error {
	_, err := c.c.Configure(ctx, &serdev1.ConfigureRequest{Schema: cfg.Schema, Options: cfg.Options})
	if status.Code(err) == codes.InvalidArgument {
		return fmt.Errorf("%w: %s", ErrBadConfig, status.Convert(err).Message())
	}
	return err
}

func (c *client) Encode(ctx context.Context, values [][]byte) ([][]byte, error) {
	return c.call(ctx, c.c.Encode, values)
}

func (c *client) Decode(ctx context.Context, data [][]byte) ([][]byte, error) {
	return c.call(ctx, c.c.Decode, data)
}

func (c *client) call(ctx context.Context, rpc func(context.Context, *serdev1.Batch, ...grpc.CallOption) (*serdev1.BatchResult, error), in [][]byte) ([][]byte, error) {
	r, err := rpc(ctx, &serdev1.Batch{Items: in})
	if err != nil {
		if st, ok := status.FromError(err); ok && st.Code() == codes.Aborted {
			return nil, errors.New(st.Message())
		}
		return nil, err
	}
	if len(r.Items) != len(in) {
		return nil, fmt.Errorf("the plugin answered %d items for a batch of %d", len(r.Items), len(in))
	}
	out := r.Items
	if len(r.Errors) == 0 {
		return out, nil
	}
	be := &BatchError{}
	for _, e := range r.Errors {
		if int(e.Index) >= len(in) {
			return nil, fmt.Errorf("the plugin reported an error for item %d of a batch of %d", e.Index, len(in))
		}
		out[e.Index] = nil
		be.Records = append(be.Records, &RecordError{Index: int(e.Index), Field: e.Field, Reason: e.Message})
	}
	return out, be
}

func (c *client) Close() error { return nil }

// Serve runs p as a plugin process: the main of a serializer binary is
//
//	func main() { serde.Serve(myserde.Plugin) }
//
// It answers the describe subcommand, explains itself when started by
// hand, and otherwise serves until the host goes away. It does not return.
func Serve(p Plugin) {
	serve(p)
}

// description fills the fields every serializer has the same way.
func (p Plugin) description() plugin.Description {
	d := p.Info
	d.Kind = plugin.KindSerde
	if len(d.Protocols) == 0 {
		d.Protocols = []int{ProtocolVersion}
	}
	return d
}
