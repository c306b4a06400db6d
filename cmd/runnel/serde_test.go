package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// buildPlugins builds the serializer plugins and the template's text
// serializer (a third party's plugin) into a fresh folder.
func buildPlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range [][]string{
		{"../../plugins", "./cmd/runnel-serde-json", "./cmd/runnel-serde-tsv", "./cmd/runnel-serde-avro"},
		{"../../plugins/template/serde", "./cmd/runnel-serde-text"},
	} {
		cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, b[1:]...)...)
		cmd.Dir = b[0]
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %v: %v\n%s", b, err, out)
		}
	}
	return dir
}

func TestSerializers(t *testing.T) {
	plugins := buildPlugins(t)
	t.Setenv("RUNNEL_PLUGIN_PATH", plugins)

	t.Run("plugins list", func(t *testing.T) {
		r := runnel(t, "", "plugins", "list").ok(t, "plugins list")
		for _, want := range []string{
			`(?m)^KIND\s+NAME\s+VERSION\s+SOURCE\s+CAPABILITIES\s+PATH$`,
			`(?m)^serde\s+avro\s+1\.0\.0\s+RUNNEL_PLUGIN_PATH\s+encode,decode,schema\s+` + regexp.QuoteMeta(filepath.Join(plugins, "runnel-serde-avro")) + `$`,
			`(?m)^serde\s+text\s+0\.1\.0\s+RUNNEL_PLUGIN_PATH\s+encode,decode,text\s+`,
			`(?m)^serde\s+tsv\s+1\.0\.0\s+builtin \(shadowed\)\s+encode,decode,schema,text,header\s+-$`,
		} {
			if !regexp.MustCompile(want).MatchString(r.out) {
				t.Errorf("plugins list lacks %s:\n%s", want, r.out)
			}
		}
	})

	d := startDev(t, t.TempDir(), nil)
	b := d.bootstrapF
	schema := filepath.Join(t.TempDir(), "user.avsc")
	if err := os.WriteFile(schema, []byte(`{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"tags","type":{"type":"array","items":"string"},"default":[]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []string{"builtin", "process"} {
		t.Run("avro "+mode, func(t *testing.T) {
			topic := "users-" + mode
			runnel(t, "", "topics", "create", b, "--topic", topic, "--partitions", "1").ok(t, "create")
			in := `{"id":1,"name":"ann","tags":["a"]}` + "\n" + `{"id":2,"name":"bob","tags":[3]}` + "\n" + `{"id":3,"name":"cy"}` + "\n"
			runnel(t, in, "produce", b, "--topic", topic, "--format", "avro", "--schema", schema, "--plugin-mode", mode).
				fails(t, 1, `1 of 3 records failed: line 2: field "tags[0]": want a string, got the number 3`)
			r := runnel(t, "", "consume", b, "--topic", topic, "--from-beginning", "--max-messages", "2", "--format", "avro", "--schema", schema, "--plugin-mode", mode).ok(t, "consume")
			if r.out != `{"id":1,"name":"ann","tags":["a"]}`+"\n"+`{"id":3,"name":"cy","tags":[]}`+"\n" {
				t.Errorf("consumed:\n%s", r.out)
			}
			// The stored values are Avro single-object records: C3 01 and
			// an 8-byte fingerprint before the datum.
			r = runnel(t, "", "consume", b, "--topic", topic, "--from-beginning", "--max-messages", "1", "--format", `%S\n`).ok(t, "consume raw")
			if r.out != "19\n" {
				t.Errorf("the first record is %s bytes, want 19 (10 of header, 9 of datum)", strings.TrimSpace(r.out))
			}
		})
	}

	t.Run("tsv with a header, as a plugin process", func(t *testing.T) {
		runnel(t, "", "topics", "create", b, "--topic", "rows", "--partitions", "1").ok(t, "create")
		in := "id\tname\n1\tann\n2\tb\\tob\nx\tcy\n"
		runnel(t, in, "produce", b, "--topic", "rows", "--format", "tsv", "--serde-opt", "columns=id:int,name", "--serde-opt", "header=true", "--plugin-mode", "process").
			fails(t, 1, `line 4: field "id": want a 64-bit integer, got "x"`)
		r := runnel(t, "", "consume", b, "--topic", "rows", "--from-beginning", "--max-messages", "2", "--format", "tsv", "--serde-opt", "columns=id:int,name").ok(t, "consume")
		if r.out != `{"id":1,"name":"ann"}`+"\n"+`{"id":2,"name":"b\tob"}`+"\n" {
			t.Errorf("consumed:\n%s", r.out)
		}
	})

	t.Run("json", func(t *testing.T) {
		runnel(t, "", "topics", "create", b, "--topic", "docs", "--partitions", "1").ok(t, "create")
		runnel(t, "{ \"a\" : [1, 2] }\n{\"b\":}\n", "produce", b, "--topic", "docs", "--format", "json").
			fails(t, 1, `line 2: field "b": invalid character '}'`)
		r := runnel(t, "", "consume", b, "--topic", "docs", "--from-beginning", "--max-messages", "1", "--format", `%s\n`).ok(t, "consume")
		if r.out != `{"a":[1,2]}`+"\n" {
			t.Errorf("stored %q, want the normalised JSON", r.out)
		}
	})

	t.Run("third-party plugin by name", func(t *testing.T) {
		runnel(t, "", "topics", "create", b, "--topic", "notes", "--partitions", "1").ok(t, "create")
		runnel(t, "hello world\n  padded  \n", "produce", b, "--topic", "notes", "--format", "text", "--serde-opt", "trim=true").ok(t, "produce text")
		r := runnel(t, "", "consume", b, "--topic", "notes", "--from-beginning", "--max-messages", "2", "--format", "text").ok(t, "consume text")
		if r.out != `"hello world"`+"\n"+`"padded"`+"\n" {
			t.Errorf("consumed:\n%s", r.out)
		}
		runnel(t, "", "produce", b, "--topic", "notes", "--format", "nosuch").
			fails(t, 1, `no serde plugin "nosuch"`)
	})
}
