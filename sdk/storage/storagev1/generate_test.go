package storagev1

import (
	"testing"

	"github.com/runnel-io/runnel/sdk/internal/gencheck"
)

// TestGeneratedCodeIsCurrent regenerates the code from storage.proto and
// compares it with the committed files.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	gencheck.Check(t, ".", "storage.proto", "storage.pb.go", "storage_grpc.pb.go")
}
