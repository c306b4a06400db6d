package serde_test

import (
	"testing"

	"github.com/runnel-io/runnel/sdk/internal/gencheck"
)

// TestGeneratedCodeIsFresh regenerates the gRPC stubs from serde.proto and
// compares them with the committed ones (as `make check-generate` does).
func TestGeneratedCodeIsFresh(t *testing.T) {
	gencheck.Check(t, "serdev1", "serde.proto", "serde.pb.go", "serde_grpc.pb.go")
}
