package file_test

import (
	"testing"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Backend { return file.New("") }, conformance.Persistent())
}

func BenchmarkAppend(b *testing.B) {
	conformance.BenchmarkAppend(b, func(b *testing.B) storage.Backend { return file.New("") })
}

func BenchmarkRead(b *testing.B) {
	conformance.BenchmarkRead(b, func(b *testing.B) storage.Backend { return file.New("") })
}
