package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// formatHelp lists the tokens of --format, for help texts and errors.
const formatHelp = `%t topic, %p partition, %o offset, %k key, %s value, %T timestamp (ms),
%h headers (k=v,k=v), %K key length, %S value length, %% a percent sign;
escapes \n newline, \t tab, \r carriage return, \0 NUL, \\ backslash`

// recordFormat is a parsed kcat-style output format: literal text and
// record fields, rendered in order for every record.
type recordFormat []formatToken

type formatToken struct {
	field byte   // one of "tpokThKS", or 0 for literal text
	text  []byte // the literal text when field is 0
}

// parseFormat parses a kcat -f style format string.
func parseFormat(s string) (recordFormat, error) {
	var (
		out recordFormat
		lit []byte
	)
	flush := func() {
		if len(lit) > 0 {
			out = append(out, formatToken{text: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+1 >= len(s) {
				return nil, usagef("--format %q ends with a lone %%: use %%%% for a percent sign", s)
			}
			i++
			switch t := s[i]; t {
			case '%':
				lit = append(lit, '%')
			case 't', 'p', 'o', 'k', 's', 'T', 'h', 'K', 'S':
				flush()
				out = append(out, formatToken{field: t})
			default:
				return nil, usagef("--format %q: unknown token %%%c; the tokens are %s", s, t, strings.ReplaceAll(formatHelp, "\n", " "))
			}
		case c == '\\' && i+1 < len(s):
			if e, ok := escapeChar(s[i+1]); ok {
				lit = append(lit, e)
				i++
			} else {
				lit = append(lit, c)
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return out, nil
}

// escapeChar maps the letter after a backslash to the byte it stands for.
func escapeChar(c byte) (byte, bool) {
	switch c {
	case 'n':
		return '\n', true
	case 't':
		return '\t', true
	case 'r':
		return '\r', true
	case '0':
		return 0, true
	case '\\':
		return '\\', true
	}
	return 0, false
}

// unescape resolves backslash escapes (\t, \n, \r, \0, \\) in a flag value,
// so a tab can be typed as '\t'. Other backslashes stay as they are.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if e, ok := escapeChar(s[i+1]); ok {
				b.WriteByte(e)
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// appendRecord renders r after dst. A missing (null) key renders as
// nothing, as kcat does.
func (f recordFormat) appendRecord(dst []byte, r *kgo.Record) []byte {
	for _, t := range f {
		switch t.field {
		case 0:
			dst = append(dst, t.text...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 's':
			dst = append(dst, r.Value...)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'K':
			dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
		case 'S':
			dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		default:
			panic(fmt.Sprintf("cli: format token %q was not rejected by parseFormat", t.field))
		}
	}
	return dst
}
