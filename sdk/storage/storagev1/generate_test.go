package storagev1

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// versionLine matches the generator version comments, which differ between
// machines without the code differing.
var versionLine = regexp.MustCompile(`(?m)^//( -|\t)? *protoc(-gen-go(-grpc)?)? +v?[0-9][^\n]*\n`)

// TestGeneratedCodeIsCurrent regenerates the code from storage.proto and
// compares it with the committed files. It needs protoc, protoc-gen-go and
// protoc-gen-go-grpc; without them it cannot check and says so.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install -y protobuf-compiler; go install google.golang.org/protobuf/cmd/protoc-gen-go and google.golang.org/grpc/cmd/protoc-gen-go-grpc)", tool)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("protoc", "--go_out="+out, "--go_opt=paths=source_relative",
		"--go-grpc_out="+out, "--go-grpc_opt=paths=source_relative", "storage.proto")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	for _, f := range []string{"storage.pb.go", "storage_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(versionLine.ReplaceAll(got, nil), versionLine.ReplaceAll(want, nil)) {
			t.Errorf("%s is not what storage.proto generates: run go generate ./sdk/storage/storagev1", f)
		}
	}
}
