package serde

import (
	"context"
	"os"
	"runtime/debug"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/runnel-io/runnel/sdk/plugin"
)

// gcPercent is the garbage collector's target in a serializer process
// that was not given GOGC. A serializer keeps almost nothing between
// calls (its configuration, the batch in hand), while every call
// allocates its batch in and its batch out: at Go's default of 100 the
// process collects several times per large batch, a tenth or more of its
// time. Four times the little it keeps is still little.
const gcPercent = 400

func serve(p Plugin) {
	p.Info = p.description()
	if code, done := plugin.Preamble(p.Info, os.Args, os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	goplugin.Serve(plugin.ServeConfig(plugin.KindSerde, OldestProtocol, PluginSets(&p)))
	os.Exit(0)
}

// TestConn connects a client to p served in-process over a real gRPC
// connection (go-plugin's TestPluginGRPCConn) and configures it with cfg,
// so a test exercises the whole protocol without starting a process. The
// connection is closed when the test ends.
func TestConn(t testing.TB, p Plugin, cfg Config) Serde {
	t.Helper()
	p.Info = p.description()
	c, srv := goplugin.TestPluginGRPCConn(t, false, PluginSets(&p)[ProtocolVersion])
	t.Cleanup(func() {
		// Server first: closing the client first asks the server to stop
		// itself (go-plugin's controller), and two concurrent Stops race.
		srv.Stop()
		c.Close()
	})
	raw, err := c.Dispense(pluginKey)
	if err != nil {
		t.Fatalf("dispensing the serializer: %v", err)
	}
	cl := raw.(*client)
	if err := cl.configure(context.Background(), cfg); err != nil {
		t.Fatalf("configuring the serializer: %v", err)
	}
	return cl
}
