package text_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
	"github.com/runnel-io/runnel/sdk/serde/conformance"

	text "example.com/runnel-serde-text"
)

// suite is what the conformance tests check this serializer with: a few
// good values, bad values (with the field the error must name, if any),
// and a generator of large values.
var suite = conformance.Suite{
	Values:  []string{`"hello"`, `""`, `"tab\tand \u00e9"`, `"  spaced  "`},
	Bad:     []conformance.Bad{{Value: `42`}, {Value: `{"not":"a string"}`}},
	BadWire: [][]byte{{0xff, 0xfe}},
	Large:   func(n int) string { return `"` + strings.Repeat("t", n) + `"` },
}

// In-process and over a real gRPC connection: fast, no build needed.
func TestConformance(t *testing.T) {
	t.Run("in-process", func(t *testing.T) { conformance.Run(t, conformance.InProcess(text.Plugin), suite) })
	t.Run("grpc", func(t *testing.T) { conformance.Run(t, conformance.GRPC(text.Plugin), suite) })
}

// As a process, found by name on a plugin path, as runnel would load it.
func TestLoadsByName(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, plugin.BinaryName(plugin.KindSerde, "text"))
	build := exec.Command("go", "build", "-o", bin, "./cmd/runnel-serde-text")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building the plugin: %v", err)
	}
	l := &serde.Loader{Mode: serde.ProcessOnly, Search: plugin.Search{Path: []string{dir}, Executable: "/nonexistent/runnel"}}
	conformance.Run(t, conformance.Loaded(l, "text"), suite)
}
