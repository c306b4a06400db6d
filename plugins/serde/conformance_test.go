// The conformance suite of sdk/serde/conformance, run on the three
// serializers in every mode: in-process, over an in-process gRPC
// connection, and as plugin processes built from plugins/cmd.
package serde_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runnel-io/runnel/plugins/serde/avro"
	"github.com/runnel-io/runnel/plugins/serde/json"
	"github.com/runnel-io/runnel/plugins/serde/tsv"
	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
	"github.com/runnel-io/runnel/sdk/serde/conformance"
)

const userSchema = `{
  "type": "record", "name": "User", "namespace": "runnel.test",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "email", "type": ["null", "string"], "default": null},
    {"name": "score", "type": "double", "default": 0},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    {"name": "attrs", "type": {"type": "map", "values": "int"}, "default": {}},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["FREE", "PAID"]}, "default": "FREE"},
    {"name": "avatar", "type": "bytes", "default": ""},
    {"name": "address", "type": ["null", {"type": "record", "name": "Address", "fields": [
      {"name": "city", "type": "string"},
      {"name": "zip", "type": "int"}
    ]}], "default": null}
  ]
}`

func suites() map[string]conformance.Suite {
	return map[string]conformance.Suite{
		"json": {
			Values: []string{`{"a":1,"b":[true,null,"x"]}`, `  [1, 2.5e3, "\u00e9"]  `, `"just a string"`, `0`, `{"nested":{"deep":{"k":"v"}}}`},
			Bad: []conformance.Bad{
				{Value: `{"a":1,}`, Field: "a"},
				{Value: `{"items":[1,2,{"price":}]}`, Field: "items[2].price"},
				{Value: `not json`},
				{Value: `{"a":1} {"b":2}`},
			},
			BadWire: [][]byte{[]byte(`{`), {0xff, 0xfe}},
			Large: func(n int) string {
				return `{"blob":"` + strings.Repeat("x", n) + `"}`
			},
		},
		"tsv": {
			Config: serde.Config{Options: map[string]string{"columns": "id:int,name,score:float,ok:bool,extra:json"}},
			Values: []string{
				`{"id":1,"name":"ann","score":1.5,"ok":true,"extra":{"k":[1,2]}}`,
				`{"id":-2,"name":"tab\there\nnewline \\ back","score":0,"ok":false,"extra":null}`,
				`{"id":3,"name":"","score":1e300,"ok":null,"extra":"s"}`,
				`{"id":4,"name":"\\N","score":-0.25,"ok":true,"extra":[]}`,
				`{"id":null,"name":null,"score":null,"ok":null,"extra":null}`,
			},
			Bad: []conformance.Bad{
				{Value: `{"id":"one","name":"x"}`, Field: "id"},
				{Value: `{"id":1,"nmae":"typo"}`, Field: "nmae"},
				{Value: `{"id":1,"score":"high"}`, Field: "score"},
				{Value: `{"id":1.5}`, Field: "id"},
				{Value: `[1,2]`},
			},
			BadWire: [][]byte{[]byte("1\tann"), []byte("x\tann\t1\ttrue\tnull"), []byte("1\tbad\\q\t1\ttrue\tnull")},
			Large: func(n int) string {
				return fmt.Sprintf(`{"id":9,"name":"%s","score":1,"ok":true,"extra":null}`, strings.Repeat(`y\t`, n/3))
			},
		},
		"avro": {
			Config: serde.Config{Schema: []byte(userSchema)},
			Values: []string{
				`{"id":1,"name":"ann","email":null,"score":1.5,"tags":["a","b"],"attrs":{"x":1},"kind":"PAID","avatar":"AAEC","address":{"city":"Seoul","zip":4524}}`,
				`{"id":-9007199254740993,"name":"bob","email":"bob@example.com","score":0,"tags":[],"attrs":{},"kind":"FREE","avatar":"","address":null}`,
				`{"id":3,"name":"\u00e9\u00e8","email":"e","score":-1e-300,"tags":["\u0000"],"attrs":{"":-2147483648},"kind":"FREE","avatar":"/w==","address":{"city":"","zip":2147483647}}`,
			},
			Bad: []conformance.Bad{
				{Value: `{"id":"x","name":"a"}`, Field: "id"},
				{Value: `{"id":1}`, Field: "name"},
				{Value: `{"id":1,"name":"a","address":{"city":"x","zip":"nope"}}`, Field: "address.zip"},
				{Value: `{"id":1,"name":"a","tags":["ok",7]}`, Field: "tags[1]"},
				{Value: `{"id":1,"name":"a","kind":"GOLD"}`, Field: "kind"},
				{Value: `{"id":1,"name":"a","unknown":true}`, Field: "unknown"},
			},
			BadWire: [][]byte{{0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 2}, {0x00, 0, 0, 0, 1, 2}, {0xc3}},
			Large: func(n int) string {
				return `{"id":1,"name":"` + strings.Repeat("z", n) + `","email":null,"score":0,"tags":[],"attrs":{},"kind":"FREE","avatar":"","address":null}`
			},
		},
	}
}

var plugins = map[string]serde.Plugin{"json": json.Plugin, "tsv": tsv.Plugin, "avro": avro.Plugin}

func TestConformanceInProcess(t *testing.T) {
	for name, s := range suites() {
		t.Run(name, func(t *testing.T) { conformance.Run(t, conformance.InProcess(plugins[name]), s) })
	}
}

func TestConformanceGRPC(t *testing.T) {
	for name, s := range suites() {
		t.Run(name, func(t *testing.T) { conformance.Run(t, conformance.GRPC(plugins[name]), s) })
	}
}

func TestConformanceProcess(t *testing.T) {
	dir := buildPlugins(t)
	l := &serde.Loader{Mode: serde.ProcessOnly, Search: plugin.Search{Path: []string{dir}, Executable: "/nonexistent/runnel"}}
	for name, s := range suites() {
		t.Run(name, func(t *testing.T) { conformance.Run(t, conformance.Loaded(l, name), s) })
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildPlugins builds the three plugin binaries once per test binary.
func buildPlugins(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "runnel-serde-plugins-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "../cmd/runnel-serde-json", "../cmd/runnel-serde-tsv", "../cmd/runnel-serde-avro")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	for _, n := range []string{"json", "tsv", "avro"} {
		if _, err := os.Stat(filepath.Join(buildDir, plugin.BinaryName(plugin.KindSerde, n))); err != nil {
			t.Fatal(err)
		}
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
