package envflag

import (
	"testing"

	"github.com/spf13/pflag"
)

func TestApply(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	dir := fs.String("data-dir", "def", "")
	listen := fs.String("listen", "def", "")
	n := fs.Int("max-conns", 1, "")
	t.Setenv("RUNNEL_DATA_DIR", "/env")
	t.Setenv("RUNNEL_LISTEN", "env:1")
	t.Setenv("RUNNEL_MAX_CONNS", "7")
	if err := fs.Parse([]string{"--listen", "cli:2"}); err != nil {
		t.Fatal(err)
	}
	if err := Apply(fs); err != nil {
		t.Fatal(err)
	}
	if *dir != "/env" || *listen != "cli:2" || *n != 7 {
		t.Fatalf("got dir=%q listen=%q n=%d", *dir, *listen, *n)
	}
	t.Setenv("RUNNEL_MAX_CONNS", "seven")
	fs2 := pflag.NewFlagSet("y", pflag.ContinueOnError)
	fs2.Int("max-conns", 1, "")
	if err := Apply(fs2); err == nil {
		t.Fatal("want error for unparsable env value")
	}
}
