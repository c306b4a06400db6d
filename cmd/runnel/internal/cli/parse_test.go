package cli

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFormat(t *testing.T) {
	rec := &kgo.Record{
		Topic: "orders", Partition: 2, Offset: 41,
		Key: []byte("k1"), Value: []byte("hello"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	for _, tc := range []struct{ format, want string }{
		{`%s\n`, "hello\n"},
		{`%t/%p@%o %k=%s`, "orders/2@41 k1=hello"},
		{`%T`, "1700000000123"},
		{`%h`, "a=1,b=2"},
		{`%K:%S`, "2:5"},
		{`100%%\t\r\0\\`, "100%\t\r\x00\\"},
		{`\q%s`, `\qhello`}, // unknown escapes stay as typed
		{`end\`, `end\`},    // a trailing backslash is literal
		{`plain text`, "plain text"},
	} {
		f, err := parseFormat(tc.format)
		if err != nil {
			t.Fatalf("parseFormat(%q): %v", tc.format, err)
		}
		if got := string(f.appendRecord(nil, rec)); got != tc.want {
			t.Errorf("format %q = %q, want %q", tc.format, got, tc.want)
		}
	}
	// A null key renders as nothing, like kcat.
	f, _ := parseFormat(`[%k]`)
	if got := string(f.appendRecord(nil, &kgo.Record{})); got != "[]" {
		t.Errorf("null key rendered %q", got)
	}
	for _, bad := range []string{`%x`, `abc%`, `%`, `%s%q`} {
		_, err := parseFormat(bad)
		var u *usageError
		if !errors.As(err, &u) {
			t.Errorf("parseFormat(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`\t`: "\t", `::`: "::", `a\nb`: "a\nb", `\\t`: `\t`, `\x`: `\x`, `\`: `\`, ``: ``,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitRecord(t *testing.T) {
	for _, tc := range []struct {
		line, sep  string
		key, value string
		nilKey, ok bool
	}{
		{line: "v\n", value: "v", nilKey: true, ok: true},
		{line: "v\r\n", value: "v", nilKey: true, ok: true},
		{line: "v", value: "v", nilKey: true, ok: true},
		{line: "\n", value: "", nilKey: true, ok: true},
		{line: "k\tv\n", sep: "\t", key: "k", value: "v", ok: true},
		{line: "k\tv\tw\n", sep: "\t", key: "k", value: "v\tw", ok: true},
		{line: "\tv\n", sep: "\t", key: "", value: "v", ok: true},
		{line: "k::v", sep: "::", key: "k", value: "v", ok: true},
		{line: "no separator\n", sep: "\t", ok: false},
	} {
		k, v, ok := splitRecord([]byte(tc.line), []byte(tc.sep))
		if ok != tc.ok {
			t.Errorf("splitRecord(%q, %q) ok = %v", tc.line, tc.sep, ok)
			continue
		}
		if !ok {
			continue
		}
		if (k == nil) != tc.nilKey || string(k) != tc.key || string(v) != tc.value {
			t.Errorf("splitRecord(%q, %q) = (%q nil=%v, %q), want (%q nil=%v, %q)", tc.line, tc.sep, k, k == nil, v, tc.key, tc.nilKey, tc.value)
		}
	}
}

func TestFailedLinesSummary(t *testing.T) {
	var f failedLines
	f.add(9, "MESSAGE_TOO_LARGE")
	f.add(3, "no key separator")
	f.add(2, "MESSAGE_TOO_LARGE")
	if got, want := f.summary(), "lines 2, 9: MESSAGE_TOO_LARGE; line 3: no key separator"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if f.count() != 3 {
		t.Errorf("count = %d", f.count())
	}
	var many failedLines
	for i := int64(1); i <= maxListedLines+5; i++ {
		many.add(i, "x")
	}
	if got := many.summary(); !strings.HasSuffix(got, "and 5 more: x") || strings.Contains(got, "\n") {
		t.Errorf("long summary = %q", got)
	}
}

func TestParseStartOffset(t *testing.T) {
	for _, tc := range []struct {
		in            string
		fromBeginning bool
		want          kgo.Offset
	}{
		{"", false, kgo.NewOffset().AtEnd()},
		{"latest", false, kgo.NewOffset().AtEnd()},
		{"", true, kgo.NewOffset().AtStart()},
		{"earliest", false, kgo.NewOffset().AtStart()},
		{"42", false, kgo.NewOffset().At(42)},
		{"-5", false, kgo.NewOffset().AtEnd().Relative(-5)},
	} {
		got, err := parseStartOffset(tc.in, tc.fromBeginning)
		if err != nil {
			t.Fatalf("parseStartOffset(%q): %v", tc.in, err)
		}
		if got.String() != tc.want.String() {
			t.Errorf("parseStartOffset(%q, %v) = %v, want %v", tc.in, tc.fromBeginning, got, tc.want)
		}
	}
	if _, err := parseStartOffset("soon", false); err == nil {
		t.Error("parseStartOffset(soon) succeeded")
	}
}

func TestParseTopicPartitions(t *testing.T) {
	topic, parts, err := parseTopicPartitions("orders:0,2")
	if err != nil || topic != "orders" || fmt.Sprint(parts) != "[0 2]" {
		t.Errorf("orders:0,2 = %q %v %v", topic, parts, err)
	}
	topic, parts, err = parseTopicPartitions("orders")
	if err != nil || topic != "orders" || parts != nil {
		t.Errorf("orders = %q %v %v", topic, parts, err)
	}
	for _, bad := range []string{":1", "orders:x", "orders:-1", "orders:"} {
		if _, _, err := parseTopicPartitions(bad); err == nil {
			t.Errorf("parseTopicPartitions(%q) succeeded", bad)
		}
	}
}

func TestParseDatetime(t *testing.T) {
	got, err := parseDatetime("2024-05-01T12:00:00Z")
	if err != nil || got.UnixMilli() != 1714564800000 {
		t.Errorf("RFC 3339: %v %v", got, err)
	}
	got, err = parseDatetime("2024-05-01T12:00:00.250+02:00")
	if err != nil || got.UnixMilli() != 1714557600250 {
		t.Errorf("with zone and millis: %v %v", got, err)
	}
	if _, err := parseDatetime("yesterday"); err == nil {
		t.Error("parseDatetime(yesterday) succeeded")
	}
}

func TestParseConfigs(t *testing.T) {
	got, err := parseConfigs([]string{"retention.ms=1000", "cleanup.policy=compact; segment.bytes = 2048"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || *got["retention.ms"] != "1000" || *got["cleanup.policy"] != "compact" || *got["segment.bytes"] != "2048" {
		t.Errorf("parseConfigs = %v", got)
	}
	for _, bad := range []string{"retention.ms", "=1"} {
		if _, err := parseConfigs([]string{bad}); err == nil {
			t.Errorf("parseConfigs(%q) succeeded", bad)
		}
	}
}

func TestProgressRendering(t *testing.T) {
	got := renderProgress(1500, 3*1024*1024, 12*1024*1024, 2*time.Second)
	want := "1,500 records  750 records/s  3.0 MiB of 12.0 MiB   25%"
	if got != want {
		t.Errorf("renderProgress = %q, want %q", got, want)
	}
	if got := renderProgress(10, 100, -1, time.Second); strings.Contains(got, "%") {
		t.Errorf("unknown size rendered a percentage: %q", got)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := humanCount(n); got != want {
			t.Errorf("humanCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMessages(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}
	if got := unreachable("127.0.0.1:9092", refused).Error(); !strings.HasPrefix(got, "cannot reach 127.0.0.1:9092 (connection refused): is a broker running? start one with `runnel dev`") {
		t.Errorf("unreachable = %q", got)
	}
	if got := oneLine("first\nsecond"); got != "first" {
		t.Errorf("oneLine = %q", got)
	}
	fxErr := errors.New(`OnStart hook added by go.uber.org/fx.Module failed: --listen: listen tcp 127.0.0.1:1: bind: permission denied`)
	if got := fxCause(fxErr); got != "--listen: listen tcp 127.0.0.1:1: bind: permission denied" {
		t.Errorf("fxCause = %q", got)
	}
	if !errors.Is(noTopic("x"), errNoTopic) {
		t.Error("noTopic does not match errNoTopic")
	}
}
