package api

import (
	"bytes"
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/wire"
)

// tracedBatch is a v2 batch of n records, the first of which carries
// traceparent in its headers, compressed with codec.
func tracedBatch(t testing.TB, traceparent string, n int, codec kgo.CompressionCodec) []byte {
	t.Helper()
	var body []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("v")}
		if i == 0 && traceparent != "" {
			r.Headers = []kmsg.Header{{Key: "other", Value: []byte("x")}, {Key: "traceparent", Value: []byte(traceparent)}}
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	var attrs int16
	if codec != kgo.NoCompression() {
		var buf bytes.Buffer
		c, err := kgo.DefaultCompressor(codec)
		if err != nil {
			t.Fatal(err)
		}
		out, ctype := c.Compress(&buf, body)
		body = append([]byte(nil), out...)
		attrs = int16(ctype)
	}
	b := kmsg.RecordBatch{
		Length:          int32(storage.BatchHeaderSize - storage.BatchLogOverhead + len(body)),
		Magic:           2,
		Attributes:      attrs,
		LastOffsetDelta: int32(n - 1),
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(n),
		Records:         body,
	}
	out := b.AppendTo(nil)
	if err := storage.UpdateCRC(out); err != nil {
		t.Fatal(err)
	}
	return out
}

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestBatchTraceContext(t *testing.T) {
	for name, codec := range map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	} {
		t.Run(name, func(t *testing.T) {
			sc, n := batchTraceContext(tracedBatch(t, testTraceparent, 5, codec))
			if n != 5 || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" || !sc.IsRemote() || !sc.IsSampled() {
				t.Fatalf("got %v (remote %v), %d records", sc, sc.IsRemote(), n)
			}
		})
	}
	if sc, n := batchTraceContext(tracedBatch(t, "", 2, kgo.NoCompression())); sc.IsValid() || n != 2 {
		t.Fatalf("no header: %v, %d", sc, n)
	}
	if sc, _ := batchTraceContext(tracedBatch(t, "00-bogus", 1, kgo.NoCompression())); sc.IsValid() {
		t.Fatalf("bad traceparent: %v", sc)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, tracedBatch(t, testTraceparent, 1, kgo.NoCompression())[:70]} {
		if sc, _ := batchTraceContext(bad); sc.IsValid() {
			t.Fatalf("%x: %v", bad, sc)
		}
	}
}

// TestAppendSpan checks the append span's place: a child of the
// producer's span, linked to the request's, and absent when the request is
// not sampled.
func TestAppendSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, reqSpan := tp.Tracer("wire").Start(context.Background(), "Produce")
	r := &wire.Request{Span: reqSpan}

	actx, span := startAppend(ctx, r, "orders", 2, tracedBatch(t, testTraceparent, 3, kgo.SnappyCompression()))
	if trace.SpanFromContext(actx) != span {
		t.Fatal("the returned context does not carry the append span")
	}
	endAppend(span, 42, nil)
	reqSpan.End()
	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans", len(ended))
	}
	a := ended[0]
	if a.Name() != "append orders" || a.Parent().SpanID().String() != "00f067aa0ba902b7" || a.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("span %q parent %v trace %v", a.Name(), a.Parent(), a.SpanContext().TraceID())
	}
	if len(a.Links()) != 1 || a.Links()[0].SpanContext.SpanID() != reqSpan.SpanContext().SpanID() {
		t.Fatalf("links %v", a.Links())
	}
	want := map[string]string{"messaging.destination.name": "orders", "messaging.destination.partition.id": "2", "messaging.batch.message_count": "3", "messaging.kafka.offset": "42"}
	for _, kv := range a.Attributes() {
		if w, ok := want[string(kv.Key)]; ok && kv.Value.String() == w {
			delete(want, string(kv.Key))
		}
	}
	if len(want) != 0 {
		t.Fatalf("missing attributes %v in %v", want, a.Attributes())
	}

	// Without trace context in the batch: a child of the request.
	_, span = startAppend(ctx, r, "orders", 0, tracedBatch(t, "", 1, kgo.NoCompression()))
	endAppend(span, 0, nil)
	if got := rec.Ended()[2]; got.Parent().SpanID() != reqSpan.SpanContext().SpanID() || len(got.Links()) != 0 {
		t.Fatalf("parent %v links %v", got.Parent(), got.Links())
	}

	// An unsampled request: no span at all.
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(rec))
	uctx, uspan := never.Tracer("wire").Start(context.Background(), "Produce")
	if _, span := startAppend(uctx, &wire.Request{Span: uspan}, "orders", 0, tracedBatch(t, testTraceparent, 1, kgo.NoCompression())); span != nil {
		t.Fatal("an unsampled request got an append span")
	}
}

// FuzzBatchTraceContext: whatever the produce request carries, reading its
// trace context returns (perhaps nothing) without panicking.
func FuzzBatchTraceContext(f *testing.F) {
	f.Add(tracedBatch(f, testTraceparent, 2, kgo.NoCompression()))
	f.Add(tracedBatch(f, testTraceparent, 2, kgo.SnappyCompression()))
	f.Add(tracedBatch(f, testTraceparent, 1, kgo.ZstdCompression()))
	f.Add(tracedBatch(f, "", 1, kgo.NoCompression()))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, n := batchTraceContext(b)
		if sc.IsValid() && n < 1 {
			t.Fatalf("trace context %v from a batch of %d records", sc, n)
		}
	})
}
