package serde_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
	"github.com/runnel-io/runnel/sdk/serde/conformance"
)

// The test binary doubles as a plugin: started with this variable set it
// serves crashy instead of running tests.
const servePluginEnv = "RUNNEL_SERDE_TEST_SERVE"

// crashy upper-cases values (so canonical values are upper-case JSON); the value "crash" kills its process (as a
// bug in a plugin would) and "panic" panics.
var crashy = serde.Plugin{
	Info: plugin.Description{Name: "crashy", Version: "0.0.1", Capabilities: []string{serde.CapEncode, serde.CapDecode}},
	New: func(cfg serde.Config) (serde.Serde, error) {
		if cfg.Options["fail"] != "" {
			return nil, errors.New("option fail: " + cfg.Options["fail"])
		}
		return upper{}, nil
	},
}

type upper struct{}

func (upper) Describe(context.Context) (plugin.Description, error) { return crashy.Info, nil }
func (upper) Close() error                                         { return nil }
func (upper) Encode(ctx context.Context, in [][]byte) ([][]byte, error) {
	return serde.Batch(in, func(v []byte) ([]byte, error) {
		switch string(v) {
		case `"trace"`:
			// The trace the host's call belongs to, as the plugin sees it.
			return json.Marshal(trace.SpanContextFromContext(ctx).TraceID().String())
		case `"crash"`:
			os.Exit(3)
		case `"panic"`:
			panic("crashy was asked to panic")
		case `"hang"`:
			select {}
		case `"bad"`:
			return nil, &serde.RecordError{Field: "word", Reason: "bad word"}
		}
		return bytes.ToUpper(v), nil
	})
}

// Decode checks the wire value is JSON and returns it as it is: upper-case
// is this format's wire form, and canonical values are upper-case too.
func (upper) Decode(_ context.Context, in [][]byte) ([][]byte, error) {
	return serde.Batch(in, func(v []byte) ([]byte, error) {
		if !json.Valid(v) {
			return nil, &serde.RecordError{Reason: "not JSON"}
		}
		return v, nil
	})
}

func TestMain(m *testing.M) {
	if os.Getenv(servePluginEnv) == "1" {
		serde.Serve(crashy)
	}
	os.Exit(m.Run())
}

// pluginDir puts the test binary on a plugin path as runnel-serde-crashy.
func pluginDir(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "runnel-serde-crashy")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(servePluginEnv, "1")
	return dir
}

func loader(dir string) *serde.Loader {
	return &serde.Loader{
		Mode:    serde.ProcessOnly,
		Search:  plugin.Search{Path: []string{dir}, Executable: "/nonexistent/runnel"},
		Backoff: plugin.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
	}
}

func TestCrashedPluginRestarts(t *testing.T) {
	dir := pluginDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := loader(dir).Open(ctx, "crashy", serde.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	proc := serde.ProcessOf(s)
	if proc == nil || proc.Starts() != 1 {
		t.Fatalf("not a plugin process")
	}
	enc := func(v string) ([][]byte, error) { return s.Encode(ctx, [][]byte{[]byte(v)}) }
	if out, err := enc(`"ok"`); err != nil || string(out[0]) != `"OK"` {
		t.Fatalf("Encode = %q, %v", out, err)
	}
	for _, how := range []string{`"crash"`, `"panic"`} {
		start := time.Now()
		_, err := enc(how)
		if !errors.Is(err, plugin.ErrCrashed) {
			t.Fatalf("%s: error %v, want ErrCrashed", how, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: the call ran until the test's deadline", how)
		}
		var ce *plugin.CrashError
		if !errors.As(err, &ce) || ce.Name != "crashy" || !strings.Contains(err.Error(), `serde plugin "crashy"`) {
			t.Errorf("%s: %v", how, err)
		}
		if how == `"panic"` && !strings.Contains(err.Error(), "panic: crashy was asked to panic") {
			t.Errorf("the crash error does not quote the panic: %v", err)
		}
		t.Logf("%s failed after %s: %v", how, time.Since(start), err)
		if ce.Restart != 50*time.Millisecond {
			t.Errorf("%s: restart after %s, want the initial backoff of 50ms", how, ce.Restart)
		}
		// The next call starts the plugin again, after the backoff: the
		// crash came after start, so at least Restart has passed since.
		if out, err := enc(`"again"`); err != nil || string(out[0]) != `"AGAIN"` {
			t.Fatalf("after %s: Encode = %q, %v", how, out, err)
		}
		if waited := time.Since(start); waited < ce.Restart {
			t.Errorf("%s: the plugin was started again %s after the call, before its backoff of %s", how, waited, ce.Restart)
		}
	}
	if proc.Starts() != 3 {
		t.Errorf("%d starts, want 3", proc.Starts())
	}
	// A process that stops answering is killed after the call timeout.
	hl := loader(dir)
	hl.CallTimeout = time.Second
	hs, err := hl.Open(ctx, "crashy", serde.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	if _, err := hs.Encode(ctx, [][]byte{[]byte(`"hang"`)}); !errors.Is(err, plugin.ErrHung) {
		t.Fatalf("hung plugin: %v, want ErrHung", err)
	}
	if out, err := hs.Encode(ctx, [][]byte{[]byte(`"up"`)}); err != nil || string(out[0]) != `"UP"` || serde.ProcessOf(hs).Starts() != 2 {
		t.Fatalf("after a hang: %q, %v", out, err)
	}
	// A process that dies between calls is replaced too.
	proc.Kill()
	if out, err := enc(`"x"`); err != nil || string(out[0]) != `"X"` {
		t.Fatalf("after kill: %q, %v", out, err)
	}
	// Record errors cross the boundary with their field.
	_, err = enc(`"bad"`)
	var be *serde.BatchError
	if !errors.As(err, &be) || be.Records[0].Field != "word" || be.Records[0].Reason != "bad word" {
		t.Errorf("bad value: %v", err)
	}
	// Crashes in a row double the backoff; a call that succeeds resets it.
	for _, want := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond} {
		_, err := enc(`"crash"`)
		var ce *plugin.CrashError
		if !errors.As(err, &ce) || ce.Restart != want {
			t.Fatalf("crash in a row: %v, want a restart after %s", err, want)
		}
	}
	if out, err := enc(`"ok"`); err != nil || string(out[0]) != `"OK"` {
		t.Fatalf("after crashes in a row: %q, %v", out, err)
	}
	_, err = enc(`"crash"`)
	if ce := new(plugin.CrashError); !errors.As(err, &ce) || ce.Restart != 50*time.Millisecond {
		t.Errorf("after a success the backoff starts over: %v", err)
	}
}

func TestTraceContextReachesThePlugin(t *testing.T) {
	dir := pluginDir(t)
	ctx := context.Background()
	s, err := loader(dir).Open(ctx, "crashy", serde.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(ctx)
	sctx, span := tp.Tracer("test").Start(ctx, "produce")
	defer span.End()
	out, err := s.Encode(sctx, [][]byte{[]byte(`"trace"`)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + span.SpanContext().TraceID().String() + `"`; string(out[0]) != want {
		t.Errorf("the plugin saw trace %s, the host's is %s", out[0], want)
	}
}

func TestBadConfigFailsOpen(t *testing.T) {
	dir := pluginDir(t)
	_, err := loader(dir).Open(context.Background(), "crashy", serde.Config{Options: map[string]string{"fail": "yes"}})
	if !errors.Is(err, serde.ErrBadConfig) || !strings.Contains(err.Error(), "option fail: yes") {
		t.Errorf("Open with a bad config: %v", err)
	}
}

func TestDescribeAndDiscovery(t *testing.T) {
	dir := pluginDir(t)
	exe, _ := os.Executable()
	// Beside the binary: a plugins folder with another crashy (shadowed)
	// and a json that shadows the built-in.
	bin := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bin, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"runnel-serde-crashy", "runnel-serde-json", "runnel-storage-file", "runnel-serde-BAD"} {
		if err := os.Symlink(exe, filepath.Join(bin, "plugins", n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "plugins", "runnel-serde-notexec"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &serde.Loader{
		Builtins: map[string]serde.Plugin{"json": crashy, "tsv": crashy},
		Search:   plugin.Search{Path: []string{dir, filepath.Join(dir, "missing")}, Executable: filepath.Join(bin, "runnel")},
	}
	var got []string
	for _, li := range l.List(context.Background()) {
		s := string(li.Source) + ":" + li.Name
		if li.Shadowed {
			s += "(shadowed)"
		}
		if li.Err != nil {
			t.Errorf("%s: %v", s, li.Err)
		}
		got = append(got, s)
	}
	want := "RUNNEL_PLUGIN_PATH:crashy beside-binary:crashy(shadowed) beside-binary:json builtin:json(shadowed) builtin:tsv"
	if strings.Join(got, " ") != want {
		t.Errorf("discovery order:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	d, err := plugin.Describe(context.Background(), filepath.Join(dir, "runnel-serde-crashy"))
	if err != nil || d.Name != "crashy" || d.Kind != plugin.KindSerde || d.Protocols[0] != serde.ProtocolVersion {
		t.Errorf("describe: %+v, %v", d, err)
	}
	if _, err := l.Open(context.Background(), "nope", serde.Config{}); !errors.Is(err, plugin.ErrNotFound) || !strings.Contains(err.Error(), "runnel-serde-nope") {
		t.Errorf("missing plugin: %v", err)
	}
	if _, err := l.Open(context.Background(), "../x", serde.Config{}); !errors.Is(err, plugin.ErrBadName) {
		t.Errorf("bad name: %v", err)
	}
	// PreferBuiltin links tsv in-process even though... and json too.
	l.Mode = serde.PreferBuiltin
	s, err := l.Open(context.Background(), "json", serde.Config{})
	if err != nil || serde.ProcessOf(s) != nil {
		t.Errorf("PreferBuiltin json: process %v, %v", serde.ProcessOf(s), err)
	}
}

func TestCrashyConformance(t *testing.T) {
	suite := conformance.Suite{
		Values: []string{`"A"`, `"B"`},
		Bad:    []conformance.Bad{{Value: `"bad"`, Field: "word"}},
		Large:  func(n int) string { return `"` + strings.Repeat("A", n) + `"` },
	}
	t.Run("grpc", func(t *testing.T) { conformance.Run(t, conformance.GRPC(crashy), suite) })
	t.Run("process", func(t *testing.T) {
		conformance.Run(t, conformance.Loaded(loader(pluginDir(t)), "crashy"), suite)
	})
}
