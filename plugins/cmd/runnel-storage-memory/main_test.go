package main

import (
	"context"
	"math"
	"os"
	"testing"

	"github.com/runnel-io/runnel/plugins/storage/memory"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

// The test binary doubles as the plugin: started by a host, it serves.
func TestMain(m *testing.M) { conformance.Main(m, Plugin) }

// TestConformanceProcess runs the suite against the backend as a plugin
// process (this test binary), and kills it under load.
func TestConformanceProcess(t *testing.T) {
	conformance.RunProcess(t, os.Args[0])
}

// TestConformanceGRPC runs the suite over the gRPC protocol in-process,
// where the race detector sees both sides.
func TestConformanceGRPC(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Backend { return storage.TestConn(t, Plugin, -1) })
}

// TestConformanceTailCache runs the suite through a small tail cache, so
// that reads are answered from it and evictions happen all the time.
func TestConformanceTailCache(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Backend { return storage.TestConn(t, Plugin, 4<<10) })
}

// TestConformanceTailCacheLinked runs the suite through a tail cache in
// front of the backend linked in.
func TestConformanceTailCacheLinked(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Backend { return storage.CachedBackend(memory.New(), 64<<10) })
}

// The benchmarks measure the process boundary: the same 16 KiB appends and
// 1 MiB reads linked in, over gRPC in-process, and to a plugin process
// (without the tail cache, so every read crosses).

func BenchmarkAppendLinked(b *testing.B) {
	conformance.BenchmarkAppend(b, func(b *testing.B) storage.Backend { return memory.New() })
}

func BenchmarkAppendProcess(b *testing.B) {
	conformance.BenchmarkAppend(b, func(b *testing.B) storage.Backend { return conformance.StartProcess(b, os.Args[0], -1) })
}

func BenchmarkReadLinked(b *testing.B) {
	conformance.BenchmarkRead(b, func(b *testing.B) storage.Backend { return memory.New() })
}

func BenchmarkReadProcess(b *testing.B) {
	conformance.BenchmarkRead(b, func(b *testing.B) storage.Backend { return conformance.StartProcess(b, os.Args[0], -1) })
}

// benchTail appends a 16 KiB batch and reads it back, as a consumer that
// keeps up does: through the tail cache it never crosses the boundary.
func benchTail(b *testing.B, be storage.Backend) {
	ctx := context.Background()
	l, err := be.Open(ctx, storage.PartitionID{Topic: "tail", Partition: 0}, storage.Config{Dir: b.TempDir(), SegmentBytes: 64 << 20, FileDeleteDelayMs: -1})
	if err != nil {
		b.Fatal(err)
	}
	vals := make([][]byte, 150)
	for i := range vals {
		vals[i] = conformance.Value(int64(i), 100)
	}
	batch := conformance.Batch(0, 1_700_000_000_000, vals...)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := l.EndOffset()
		_ = storage.SetBaseOffset(batch, off)
		if _, err := l.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if r, err := l.Read(ctx, off, 1<<20, math.MaxInt64); err != nil || len(r.Batches) != len(batch) {
			b.Fatalf("Read(%d): %d bytes, %v", off, len(r.Batches), err)
		}
		if i%4096 == 4095 {
			if err := l.DeleteBefore(ctx, l.EndOffset()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkTailProcess(b *testing.B) {
	benchTail(b, conformance.StartProcess(b, os.Args[0], -1))
}

func BenchmarkTailProcessCached(b *testing.B) {
	benchTail(b, conformance.StartProcess(b, os.Args[0], 0))
}
