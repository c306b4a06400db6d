package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/runnel-io/runnel/internal/await"
	"github.com/runnel-io/runnel/sdk"
)

// span is what the receiver keeps of an exported span.
type span struct {
	service, name     string
	trace, id, parent string
	links             []string
}

func (s span) String() string {
	return fmt.Sprintf("%s %q trace=%s id=%s parent=%s", s.service, s.name, s.trace, s.id, s.parent)
}

// receiver is an OTLP/HTTP trace receiver: what a collector would be to
// the services under test.
type receiver struct {
	mu    sync.Mutex
	spans []span
	srv   *http.Server
	addr  string
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = &http.Server{Handler: mux}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *receiver) export(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range in.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == string(semconv.ServiceNameKey) {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := span{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId)}
				for _, l := range s.Links {
					sp.links = append(sp.links, hex.EncodeToString(l.SpanId))
				}
				r.spans = append(r.spans, sp)
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *receiver) all() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}

// find returns the first span matching f.
func (r *receiver) find(f func(span) bool) (span, bool) {
	for _, s := range r.all() {
		if f(s) {
			return s, true
		}
	}
	return span{}, false
}

// binDir is ./bin of the repository (make build fills it; make test runs
// make build first).
func binDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "bin")
	for _, b := range []string{"runnel-coordinator", "runnel-broker", "runnel-lagmon", "plugins/runnel-storage-file"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s is missing: run make build first (make test does)", filepath.Join(dir, b))
		}
	}
	return dir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// service runs one binary until the test ends (SIGTERM, then SIGKILL),
// its output kept for a failure.
func service(t *testing.T, env []string, bin string, args ...string) *bytes.Buffer {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	return &out
}

func get(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// TestTraceFromProducerToConsumer runs a coordinator, two brokers whose
// storage is the file plugin as a process, and lagmon, each exporting
// OTLP to the test's receiver, and checks that one record makes one trace:
// the SDK producer's "send T", the leader's "append T" under it, the
// storage call's client span under that, the plugin process's server span
// under the client span, the wait for the follower ("replicate T", acks=all
// on a topic of two replicas) under "append T", and the SDK consumer's
// "process T" under "send T". Every service names itself, exports its
// spans and serves /metrics.
func TestTraceFromProducerToConsumer(t *testing.T) {
	bin := binDir(t)
	rcv := startReceiver(t)
	env := []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + rcv.addr,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_SERVICE_NAME=", // each service's own name
	}
	zkAddr, zkAdmin := freeAddr(t), freeAddr(t)
	service(t, env, filepath.Join(bin, "runnel-coordinator"), "--listen", zkAddr, "--admin-listen", zkAdmin, "--data-dir", t.TempDir())
	kafka, brokerMetrics := freeAddr(t), freeAddr(t)
	service(t, env, filepath.Join(bin, "runnel-broker"), "--id", "1", "--listen", kafka, "--coordinator", zkAddr,
		"--metrics-listen", brokerMetrics, "--data-dir", t.TempDir(), "--storage-plugin", filepath.Join(bin, "plugins", "runnel-storage-file"))
	kafka2 := freeAddr(t)
	service(t, env, filepath.Join(bin, "runnel-broker"), "--id", "2", "--listen", kafka2, "--coordinator", zkAddr,
		"--data-dir", t.TempDir(), "--storage-plugin", filepath.Join(bin, "plugins", "runnel-storage-file"))
	lagmon := freeAddr(t)
	service(t, env, filepath.Join(bin, "runnel-lagmon"), "--listen", lagmon, "--bootstrap-server", kafka)

	// The test's own process is the application: its spans go to the same
	// receiver, under its own name.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(rcv.addr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(semconv.ServiceName("tracing-test"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	defer tp.Shutdown(context.Background())

	const topic = "traced"
	admin, err := sdk.NewAdmin(sdk.Brokers(kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	await.Until(t, time.Minute, "the brokers create a topic of two replicas", func() error {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		err := admin.CreateTopic(cctx, topic, 1, 2, nil)
		if err != nil && strings.Contains(err.Error(), "already exists") {
			return nil
		}
		return err
	})

	prod, err := sdk.NewProducer(sdk.String(), sdk.String(), sdk.Brokers(kafka), sdk.TracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(context.Background())
	if _, err := prod.SendSync(ctx, sdk.Message[string, string]{Topic: topic, Key: "k", Value: "traced record"}); err != nil {
		t.Fatal(err)
	}
	cons, err := sdk.NewConsumer(sdk.String(), sdk.String(), sdk.Brokers(kafka), sdk.Topics(topic), sdk.FromBeginning(), sdk.TracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(context.Background())
	var processed bool
	for !processed {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := cons.Process(ctx, r, func(context.Context) error { processed = true; return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The trace, span by span.
	var send, appendSpan, client, server, replicate, process span
	await.Until(t, 30*time.Second, "the whole trace at the receiver", func() error {
		var ok bool
		if send, ok = rcv.find(func(s span) bool { return s.service == "tracing-test" && s.name == "send "+topic }); !ok {
			return fmt.Errorf("no send span")
		}
		if appendSpan, ok = rcv.find(func(s span) bool {
			return s.service == "runnel-broker" && s.name == "append "+topic && s.parent == send.id && s.trace == send.trace
		}); !ok {
			return fmt.Errorf("no append span of runnel-broker under %v", send)
		}
		if client, ok = rcv.find(func(s span) bool {
			return s.service == "runnel-broker" && s.name == "runnel.storage.v1.Storage/Append" && s.parent == appendSpan.id
		}); !ok {
			return fmt.Errorf("no storage Append call under %v", appendSpan)
		}
		if server, ok = rcv.find(func(s span) bool {
			return s.service == "runnel-storage-file" && s.name == "runnel.storage.v1.Storage/Append" && s.parent == client.id && s.trace == send.trace
		}); !ok {
			return fmt.Errorf("no Append span of the plugin process under %v", client)
		}
		if replicate, ok = rcv.find(func(s span) bool {
			return s.service == "runnel-broker" && s.name == "replicate "+topic && s.parent == appendSpan.id && s.trace == send.trace
		}); !ok {
			return fmt.Errorf("no replicate span under %v", appendSpan)
		}
		if process, ok = rcv.find(func(s span) bool {
			return s.service == "tracing-test" && s.name == "process "+topic && s.parent == send.id && s.trace == send.trace
		}); !ok {
			return fmt.Errorf("no process span under %v", send)
		}
		return nil
	})
	if len(appendSpan.links) != 1 {
		t.Errorf("the append span links %v, want the Produce request's span", appendSpan.links)
	} else if req, ok := rcv.find(func(s span) bool { return s.id == appendSpan.links[0] }); !ok || req.name != "Produce" || req.service != "runnel-broker" {
		t.Errorf("the append span's link leads to %v", req)
	}
	t.Logf("one trace %s:\n  %v\n  %v\n  %v\n  %v\n  %v\n  %v", send.trace, send, appendSpan, client, server, replicate, process)

	// The coordinator and lagmon export their spans under their own
	// names too (lagmon's: one per API request).
	if _, err := get("http://" + lagmon + "/v3/kafka"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"runnel-coordinator", "runnel-lagmon"} {
		await.Until(t, 30*time.Second, "spans of "+name, func() error {
			if _, ok := rcv.find(func(s span) bool { return s.service == name }); !ok {
				return fmt.Errorf("none yet")
			}
			return nil
		})
	}

	// Every service serves Prometheus metrics.
	for url, want := range map[string]string{
		"http://" + brokerMetrics + "/metrics": "runnel_broker_requests",
		"http://" + zkAdmin + "/metrics":       "go_goroutines",
		"http://" + lagmon + "/metrics":        "go_goroutines",
	} {
		await.Until(t, 30*time.Second, url, func() error {
			body, err := get(url)
			if err != nil {
				return err
			}
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s", want)
			}
			return nil
		})
	}
}
