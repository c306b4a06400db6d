package serde_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the gRPC stubs from serde.proto into
// a temporary folder and compares them with the committed ones (as `make
// check-generate` does). It needs protoc and the two Go plugins, which
// `make generate` installs; without them it is skipped, since it checks
// the repository, not a peer.
func TestGeneratedCodeIsFresh(t *testing.T) {
	gobin := filepath.Join(goEnv(t, "GOPATH"), "bin")
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc is not installed (apt-get install -y protobuf-compiler)")
	}
	for _, p := range []string{"protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := os.Stat(filepath.Join(gobin, p)); err != nil {
			t.Skipf("%s is not installed (make generate installs it)", p)
		}
	}
	out := t.TempDir()
	cmd := exec.Command(protoc, "--proto_path=serdev1",
		"--go_out="+out, "--go_opt=paths=source_relative",
		"--go-grpc_out="+out, "--go-grpc_opt=paths=source_relative",
		"serdev1/serde.proto")
	cmd.Env = append(os.Environ(), "PATH="+gobin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	for _, f := range []string{"serde.pb.go", "serde_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Join("serdev1", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, have) {
			t.Errorf("serdev1/%s differs from what serde.proto generates: run make generate and commit", f)
		}
	}
}

func goEnv(t *testing.T, key string) string {
	t.Helper()
	b, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}
