package cli

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzSplitRecord feeds arbitrary file lines and separators to the splitter
// that turns `runnel produce` input into records: it must never panic, and
// a split must give back the line it came from.
func FuzzSplitRecord(f *testing.F) {
	f.Add([]byte("key\tvalue\n"), []byte("\t"))
	f.Add([]byte("no separator\r\n"), []byte("::"))
	f.Add([]byte("\t\t\n"), []byte("\t"))
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("\xff\x00\n"), []byte("\x00"))
	f.Fuzz(func(t *testing.T, line, sep []byte) {
		key, value, ok := splitRecord(line, sep)
		body := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		switch {
		case len(sep) == 0:
			if !ok || key != nil || !bytes.Equal(value, body) {
				t.Fatalf("no separator: got (%q, %q, %v) for %q", key, value, ok, line)
			}
		case ok:
			if key == nil || bytes.Contains(key, sep) {
				t.Fatalf("key %q (nil=%v) contains separator %q", key, key == nil, sep)
			}
			rebuilt := append(append(append([]byte{}, key...), sep...), value...)
			if !bytes.Equal(rebuilt, body) {
				t.Fatalf("key %q + %q + value %q != line %q", key, sep, value, body)
			}
		default:
			if bytes.Contains(body, sep) {
				t.Fatalf("separator %q is in %q but the split failed", sep, body)
			}
		}
	})
}

// FuzzFormat parses arbitrary --format strings and renders a record with
// the ones that parse: parsing never panics, and rendering a parsed format
// never panics and carries the value wherever %s appears.
func FuzzFormat(f *testing.F) {
	for _, s := range []string{`%s\n`, `%t %p %o %k %s %T %h %K %S\n`, `%%\\%`, `\`, `%z`, "\x00%"} {
		f.Add(s, []byte("value"))
	}
	f.Fuzz(func(t *testing.T, format string, value []byte) {
		rf, err := parseFormat(format)
		if err != nil {
			return
		}
		rec := &kgo.Record{Topic: "t", Key: []byte("k"), Value: value, Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
		out := rf.appendRecord(nil, rec)
		for _, tok := range rf {
			if tok.field == 's' && !bytes.Contains(out, value) {
				t.Fatalf("format %q rendered %q without the value %q", format, out, value)
			}
		}
	})
}
