// Package text is a Runnel serializer plugin: the skeleton to copy when
// writing your own (see README.md). It stores values as plain UTF-8 text.
//
// Canonical form: a JSON string. Wire form: the string's UTF-8 bytes, with
// no quotes. The option trim=true removes leading and trailing white space
// when encoding.
package text

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
)

// Version is this plugin's version, reported by describe.
const Version = "0.1.0"

// Plugin is what main serves and what a host could link in-process.
var Plugin = serde.Plugin{
	Info: plugin.Description{
		Name:    "text", // the binary must be called runnel-serde-text
		Kind:    plugin.KindSerde,
		Version: Version,
		// The contract's protocol versions this plugin speaks.
		Protocols: []int{serde.ProtocolVersion},
		// "text": the wire form is one line of text, so `runnel produce`
		// reads input lines in that form.
		Capabilities: []string{serde.CapEncode, serde.CapDecode, serde.CapText},
		Summary:      "plain UTF-8 text values",
	},
	New: New,
}

// Serde is a configured text serializer. It must be safe for concurrent
// use: hosts call it from several goroutines.
type Serde struct {
	trim bool
}

// New checks the configuration; serde.ErrBadConfig tells the host the
// user's settings are wrong (rather than the plugin broken).
func New(cfg serde.Config) (serde.Serde, error) {
	s := &Serde{}
	for k, v := range cfg.Options {
		switch k {
		case "trim":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%w: text option trim=%q: use true or false", serde.ErrBadConfig, v)
			}
			s.trim = b
		default:
			return nil, fmt.Errorf("%w: text has no option %q", serde.ErrBadConfig, k)
		}
	}
	return s, nil
}

// Describe implements serde.Serde.
func (s *Serde) Describe(context.Context) (plugin.Description, error) { return Plugin.Info, nil }

// Close implements serde.Serde.
func (s *Serde) Close() error { return nil }

// Encode turns JSON strings into text. serde.Batch runs the function on
// each value and gathers *serde.RecordError results, so one bad value
// does not fail the others.
func (s *Serde) Encode(_ context.Context, values [][]byte) ([][]byte, error) {
	return serde.Batch(values, func(v []byte) ([]byte, error) {
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return nil, &serde.RecordError{Reason: "a text value is a JSON string"}
		}
		if s.trim {
			str = strings.TrimSpace(str)
		}
		return []byte(str), nil
	})
}

// Decode turns text into JSON strings.
func (s *Serde) Decode(_ context.Context, data [][]byte) ([][]byte, error) {
	return serde.Batch(data, func(b []byte) ([]byte, error) {
		if !utf8.Valid(b) {
			return nil, &serde.RecordError{Reason: "not valid UTF-8"}
		}
		return json.Marshal(string(b))
	})
}
