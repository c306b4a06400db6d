package memory_test

import (
	"testing"

	"github.com/runnel-io/runnel/plugins/storage/memory"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Backend { return memory.New() })
}

func BenchmarkAppend(b *testing.B) {
	conformance.BenchmarkAppend(b, func(b *testing.B) storage.Backend { return memory.New() })
}

func BenchmarkRead(b *testing.B) {
	conformance.BenchmarkRead(b, func(b *testing.B) storage.Backend { return memory.New() })
}
