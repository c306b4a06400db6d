package memory_test

import (
	"testing"

	"github.com/runnel-io/runnel/plugins/storage/memory"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

func TestCompaction(t *testing.T) {
	conformance.Compaction(t, func(t *testing.T) storage.Backend { return memory.New() })
}
