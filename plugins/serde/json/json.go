// Package json is the json serializer: it validates values as JSON and
// normalises them. Its wire form is the canonical form itself, compacted,
// so it is also the identity serializer for JSON topics.
//
// Options (serde.Config.Options):
//
//   - top=object|array|any: the JSON type every value must have at the top
//     (default any).
//   - sort_keys=true: write object members sorted by key, so equal values
//     have equal bytes (default false: members keep their order).
//
// Normalising means: insignificant whitespace removed, strings and numbers
// kept exactly as written (no float rounding), invalid UTF-8 rejected. A
// value that is not valid JSON is rejected with the path of the member
// where it breaks (for example "items[3].price").
package json

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
)

// Version is the plugin's version.
const Version = "1.0.0"

// Plugin is the json serializer, for serde.Serve and built-in registries.
var Plugin = serde.Plugin{
	Info: plugin.Description{
		Name:         "json",
		Kind:         plugin.KindSerde,
		Version:      Version,
		Protocols:    []int{serde.ProtocolVersion},
		Capabilities: []string{serde.CapEncode, serde.CapDecode, serde.CapText},
		Summary:      "validates and normalises JSON values",
	},
	New: New,
}

// Serde is a configured json serializer.
type Serde struct {
	top      string
	sortKeys bool
}

// New makes a json serializer from its options.
func New(cfg serde.Config) (serde.Serde, error) {
	s := &Serde{top: "any"}
	for k, v := range cfg.Options {
		switch k {
		case "top":
			if v != "any" && v != "object" && v != "array" {
				return nil, fmt.Errorf("%w: json option top=%q: use object, array or any", serde.ErrBadConfig, v)
			}
			s.top = v
		case "sort_keys":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%w: json option sort_keys=%q: use true or false", serde.ErrBadConfig, v)
			}
			s.sortKeys = b
		default:
			return nil, fmt.Errorf("%w: json has no option %q (it has top and sort_keys)", serde.ErrBadConfig, k)
		}
	}
	return s, nil
}

// Describe implements serde.Serde.
func (s *Serde) Describe(context.Context) (plugin.Description, error) { return Plugin.Info, nil }

// Encode validates and normalises each value.
func (s *Serde) Encode(_ context.Context, values [][]byte) ([][]byte, error) {
	return serde.Batch(values, s.normalise)
}

// Decode validates and normalises each value: what a topic holds may have
// been written by anyone.
func (s *Serde) Decode(_ context.Context, data [][]byte) ([][]byte, error) {
	return serde.Batch(data, s.normalise)
}

// Close implements serde.Serde.
func (s *Serde) Close() error { return nil }

func (s *Serde) normalise(v []byte) ([]byte, error) {
	if !utf8.Valid(v) {
		return nil, &serde.RecordError{Reason: "not valid UTF-8"}
	}
	if !stdjson.Valid(v) {
		field, reason := locate(v)
		return nil, &serde.RecordError{Field: field, Reason: reason}
	}
	if s.top != "any" {
		first := bytes.TrimLeft(v, " \t\r\n")
		if want := map[string]byte{"object": '{', "array": '['}[s.top]; first[0] != want {
			return nil, &serde.RecordError{Reason: "the value is not a JSON " + s.top}
		}
	}
	if s.sortKeys {
		d := stdjson.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		var x any
		if err := d.Decode(&x); err != nil {
			return nil, &serde.RecordError{Reason: err.Error()}
		}
		var b bytes.Buffer
		enc := stdjson.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return nil, &serde.RecordError{Reason: err.Error()}
		}
		return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
	}
	var b bytes.Buffer
	b.Grow(len(v))
	if err := stdjson.Compact(&b, v); err != nil {
		return nil, &serde.RecordError{Reason: err.Error()}
	}
	return b.Bytes(), nil
}

// locate walks an invalid document token by token to name the member where
// it breaks and why. It runs only for bad values, so its cost does not
// matter.
func locate(v []byte) (field, reason string) {
	d := stdjson.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	type level struct {
		array bool
		index int
		key   string
		// wantKey is true inside an object where the next string is a key.
		wantKey bool
	}
	var stack []level
	path := func() string {
		var b strings.Builder
		for _, l := range stack {
			if l.array {
				fmt.Fprintf(&b, "[%d]", l.index)
			} else if l.key != "" {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(l.key)
			}
		}
		return b.String()
	}
	// advance marks that a value was completed at the current level.
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	seenTop := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if len(stack) > 0 || !seenTop {
				return path(), "unexpected end of the value"
			}
			return path(), "invalid JSON"
		}
		if err != nil {
			var se *stdjson.SyntaxError
			if errors.As(err, &se) {
				return path(), fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
			}
			return path(), err.Error()
		}
		if len(stack) == 0 && seenTop {
			return "", "more than one JSON value"
		}
		seenTop = true
		switch t := tok.(type) {
		case stdjson.Delim:
			switch t {
			case '{':
				stack = append(stack, level{wantKey: true})
			case '[':
				stack = append(stack, level{array: true})
			case '}', ']':
				stack = stack[:len(stack)-1]
				advance()
			}
			continue
		case string:
			if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].wantKey {
				stack[n-1].key, stack[n-1].wantKey = t, false
				continue
			}
		}
		advance()
	}
}
