package main

import (
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
