package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for n, w := range want {
		if got := b.after(n); got != w {
			t.Errorf("after %d crashes: %s, want %s", n, got, w)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"json", "avro2", "my-format", "x_y"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "JSON", "-x", "a/b", "../x", "a b", "é"} {
		if err := CheckName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPreamble(t *testing.T) {
	d := Description{Name: "x", Kind: KindSerde, Version: "1.2.3", Protocols: []int{1}, Capabilities: []string{"encode"}}
	var out, errb bytes.Buffer
	code, done := Preamble(d, []string{"runnel-serde-x", "describe"}, &out, &errb)
	var back Description
	if !done || code != 0 || json.Unmarshal(out.Bytes(), &back) != nil || back.Version != "1.2.3" || !back.Has("encode") {
		t.Errorf("describe: done %v code %d output %q", done, code, out.String())
	}
	t.Setenv(MagicCookieKey, "")
	out.Reset()
	code, done = Preamble(d, []string{"runnel-serde-x"}, &out, &errb)
	if !done || code != 1 || !strings.Contains(errb.String(), "runnel-serde-x is a Runnel serde plugin") {
		t.Errorf("started by hand: done %v code %d stderr %q", done, code, errb.String())
	}
	t.Setenv(MagicCookieKey, "runnel-serde-plugin")
	if _, done := Preamble(d, []string{"runnel-serde-x"}, &out, &errb); done {
		t.Error("started by a host, the plugin did not serve")
	}
}

func TestTailPrefersThePanic(t *testing.T) {
	var tl tail
	_, _ = tl.Write([]byte("starting\npanic: boom\n\ngoroutine 1 [running]:\nmain.main()\n"))
	if got := tl.last(); got != "panic: boom" {
		t.Errorf("last = %q", got)
	}
	var quiet tail
	_, _ = quiet.Write([]byte("one\n{\"@level\":\"debug\",\"@message\":\"plugin address\"}\n"))
	if got := quiet.last(); got != "one" {
		t.Errorf("last = %q, want the plugin's own line", got)
	}
}
