// Package gencheck verifies that committed protoc output is what the .proto
// files generate, for the tests of the plugin contracts (serde, storage).
package gencheck

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// versionLine matches the generator version comments, which may differ
// between machines without the code differing.
var versionLine = regexp.MustCompile(`(?m)^//( -|\t)? *protoc(-gen-go(-grpc)?)? +v?[0-9][^\n]*\n`)

// Check runs protoc on proto (in dir) into a temporary folder and compares
// each generated file with the committed one in dir. It needs protoc,
// protoc-gen-go and protoc-gen-go-grpc (on PATH or in GOPATH/bin). Without
// them it skips, except under CI=true, where .ci/run installs them and a
// missing tool is a failure.
func Check(t *testing.T, dir, proto string, files ...string) {
	t.Helper()
	gobin := filepath.Join(goEnv(t, "GOPATH"), "bin")
	path := gobin + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := lookPath(tool, path); err != nil {
			msg := tool + " is not installed (apt-get install -y protobuf-compiler; make generate installs the Go plugins)"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	protoc, _ := lookPath("protoc", path)
	out := t.TempDir()
	cmd := exec.Command(protoc, "--proto_path="+dir,
		"--go_out="+out, "--go_opt=paths=source_relative",
		"--go-grpc_out="+out, "--go-grpc_opt=paths=source_relative",
		filepath.Join(dir, proto))
	cmd.Env = append(os.Environ(), "PATH="+path)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	for _, f := range files {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(versionLine.ReplaceAll(have, nil), versionLine.ReplaceAll(want, nil)) {
			t.Errorf("%s differs from what %s generates: run make generate and commit", filepath.Join(dir, f), proto)
		}
	}
}

func lookPath(name, path string) (string, error) {
	for _, d := range strings.Split(path, string(os.PathListSeparator)) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

func goEnv(t *testing.T, key string) string {
	t.Helper()
	b, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}
