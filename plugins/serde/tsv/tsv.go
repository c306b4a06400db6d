// Package tsv is the tsv serializer: a value is one line of tab-separated
// columns, declared in the configuration.
//
// # Columns
//
// The columns come from the option columns, a comma-separated list of
// NAME or NAME:TYPE (for example "id:int,name,score:float,active:bool"),
// or from a schema file (serde.Config.Schema) holding the same as JSON:
//
//	{"columns": [{"name": "id", "type": "int"}, {"name": "name"}], "header": true}
//
// Types are string (the default), int (64-bit), float (64-bit), bool
// (true or false) and json (any JSON value, written compactly).
//
// # Canonical form
//
// A JSON object with one member per column. Encode rejects members that are
// not columns and values of the wrong type, naming the column; a missing
// member or null is written as \N. Decode returns every column, in declared
// order, with \N as null.
//
// # Escaping
//
// Inside a field, a backslash escapes the characters that would break the
// line: \t is a tab, \n a newline, \r a carriage return, \\ a backslash. A
// field that is exactly \N is null (as in PostgreSQL's COPY text format);
// an empty field is the empty string for a string column and an error for
// the other types. Encode escapes exactly these characters, so Decode of
// Encode is the identity.
//
// # Header line
//
// With header=true (option or schema), input files start with a header
// line: the column names separated by tabs. The serializer itself encodes
// one record per value and never writes it; tools reading TSV files (runnel
// produce --format tsv) check the first line against HeaderLine and skip
// it. The "header" capability says a serializer follows this convention.
package tsv

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
)

// Version is the plugin's version.
const Version = "1.0.0"

// CapHeader is the capability of serializers whose text input may start
// with a header line (see the package documentation).
const CapHeader = "header"

// Plugin is the tsv serializer, for serde.Serve and built-in registries.
var Plugin = serde.Plugin{
	Info: plugin.Description{
		Name:         "tsv",
		Kind:         plugin.KindSerde,
		Version:      Version,
		Protocols:    []int{serde.ProtocolVersion},
		Capabilities: []string{serde.CapEncode, serde.CapDecode, serde.CapSchema, serde.CapText, CapHeader},
		Summary:      "tab-separated columns declared in the configuration",
	},
	New: New,
}

// Column is one declared column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

// schemaFile is the JSON form of the configuration.
type schemaFile struct {
	Columns []Column `json:"columns"`
	Header  bool     `json:"header"`
}

// Serde is a configured tsv serializer.
type Serde struct {
	cols   []Column
	index  map[string]int
	header bool
}

// New makes a tsv serializer from its columns.
func New(cfg serde.Config) (serde.Serde, error) {
	s, err := configure(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func configure(cfg serde.Config) (*Serde, error) {
	var sf schemaFile
	if len(bytes.TrimSpace(cfg.Schema)) > 0 {
		d := stdjson.NewDecoder(bytes.NewReader(cfg.Schema))
		d.DisallowUnknownFields()
		if err := d.Decode(&sf); err != nil {
			return nil, fmt.Errorf("%w: tsv schema: %w", serde.ErrBadConfig, err)
		}
	}
	for k, v := range cfg.Options {
		switch k {
		case "columns":
			sf.Columns = nil
			for _, c := range strings.Split(v, ",") {
				name, typ, _ := strings.Cut(strings.TrimSpace(c), ":")
				sf.Columns = append(sf.Columns, Column{Name: name, Type: typ})
			}
		case "header":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%w: tsv option header=%q: use true or false", serde.ErrBadConfig, v)
			}
			sf.Header = b
		default:
			return nil, fmt.Errorf("%w: tsv has no option %q (it has columns and header)", serde.ErrBadConfig, k)
		}
	}
	if len(sf.Columns) == 0 {
		return nil, fmt.Errorf("%w: tsv needs its columns: set the option columns=NAME[:TYPE],... or give a schema file", serde.ErrBadConfig)
	}
	s := &Serde{index: map[string]int{}, header: sf.Header}
	for _, c := range sf.Columns {
		if c.Type == "" {
			c.Type = "string"
		}
		switch c.Type {
		case "string", "int", "float", "bool", "json":
		default:
			return nil, fmt.Errorf("%w: tsv column %q has type %q: use string, int, float, bool or json", serde.ErrBadConfig, c.Name, c.Type)
		}
		if c.Name == "" || strings.ContainsAny(c.Name, "\t\n\r\\") {
			return nil, fmt.Errorf("%w: tsv column name %q: give a name without tabs, line breaks or backslashes", serde.ErrBadConfig, c.Name)
		}
		if _, dup := s.index[c.Name]; dup {
			return nil, fmt.Errorf("%w: tsv column %q is declared twice", serde.ErrBadConfig, c.Name)
		}
		s.index[c.Name] = len(s.cols)
		s.cols = append(s.cols, c)
	}
	return s, nil
}

// HeaderLine returns the header line for cfg's columns and whether cfg
// asks for one.
func HeaderLine(cfg serde.Config) (line string, enabled bool, err error) {
	s, err := configure(cfg)
	if err != nil {
		return "", false, err
	}
	names := make([]string, len(s.cols))
	for i, c := range s.cols {
		names[i] = c.Name
	}
	return strings.Join(names, "\t"), s.header, nil
}

// Describe implements serde.Serde.
func (s *Serde) Describe(context.Context) (plugin.Description, error) { return Plugin.Info, nil }

// Close implements serde.Serde.
func (s *Serde) Close() error { return nil }

// Encode turns JSON objects into TSV lines.
func (s *Serde) Encode(_ context.Context, values [][]byte) ([][]byte, error) {
	return serde.Batch(values, s.encode)
}

// Decode turns TSV lines into JSON objects.
func (s *Serde) Decode(_ context.Context, data [][]byte) ([][]byte, error) {
	return serde.Batch(data, s.decode)
}

func (s *Serde) encode(v []byte) ([]byte, error) {
	var obj map[string]stdjson.RawMessage
	if err := stdjson.Unmarshal(v, &obj); err != nil || obj == nil {
		return nil, &serde.RecordError{Reason: "a tsv value is a JSON object with one member per column"}
	}
	for k := range obj {
		if _, ok := s.index[k]; !ok {
			return nil, &serde.RecordError{Field: k, Reason: "not a declared column (the columns are " + s.names() + ")"}
		}
	}
	var out []byte
	for i, c := range s.cols {
		if i > 0 {
			out = append(out, '\t')
		}
		raw, ok := obj[c.Name]
		if !ok || string(raw) == "null" {
			out = append(out, `\N`...)
			continue
		}
		var err error
		out, err = appendField(out, c, raw)
		if err != nil {
			return nil, &serde.RecordError{Field: c.Name, Reason: err.Error()}
		}
	}
	return out, nil
}

func (s *Serde) names() string {
	n := make([]string, len(s.cols))
	for i, c := range s.cols {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}

// appendField writes one JSON value as a TSV field of column c.
func appendField(out []byte, c Column, raw stdjson.RawMessage) ([]byte, error) {
	switch c.Type {
	case "string":
		if raw[0] != '"' {
			return nil, fmt.Errorf("want a string, got %s", jsonKind(raw))
		}
		// Most strings have no escapes: their JSON is their text.
		if bytes.IndexByte(raw, '\\') < 0 {
			return appendEscaped(out, string(raw[1:len(raw)-1])), nil
		}
		var str string
		if err := stdjson.Unmarshal(raw, &str); err != nil {
			return nil, fmt.Errorf("want a string, got %s", jsonKind(raw))
		}
		return appendEscaped(out, str), nil
	case "int":
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want a 64-bit integer, got %s", abbrev(raw))
		}
		return strconv.AppendInt(out, n, 10), nil
	case "float":
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || raw[0] == '"' {
			return nil, fmt.Errorf("want a number, got %s", abbrev(raw))
		}
		return strconv.AppendFloat(out, f, 'g', -1, 64), nil
	case "bool":
		switch string(raw) {
		case "true", "false":
			return append(out, raw...), nil
		}
		return nil, fmt.Errorf("want true or false, got %s", abbrev(raw))
	case "json":
		var b bytes.Buffer
		if err := stdjson.Compact(&b, raw); err != nil {
			return nil, err
		}
		return appendEscaped(out, b.String()), nil
	}
	return nil, fmt.Errorf("unknown column type %q", c.Type)
}

func (s *Serde) decode(line []byte) ([]byte, error) {
	if !utf8.Valid(line) {
		return nil, &serde.RecordError{Reason: "not valid UTF-8"}
	}
	fields := bytes.Split(line, []byte{'\t'})
	if len(fields) != len(s.cols) {
		return nil, &serde.RecordError{Reason: fmt.Sprintf("%d fields, want %d (%s)", len(fields), len(s.cols), s.names())}
	}
	out := []byte{'{'}
	for i, c := range s.cols {
		if i > 0 {
			out = append(out, ',')
		}
		name, _ := stdjson.Marshal(c.Name)
		out = append(out, name...)
		out = append(out, ':')
		f := fields[i]
		if string(f) == `\N` {
			out = append(out, "null"...)
			continue
		}
		str, err := unescape(f)
		if err != nil {
			return nil, &serde.RecordError{Field: c.Name, Reason: err.Error()}
		}
		switch c.Type {
		case "string":
			b, _ := stdjson.Marshal(str)
			out = append(out, b...)
		case "int":
			n, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				return nil, &serde.RecordError{Field: c.Name, Reason: fmt.Sprintf("want a 64-bit integer, got %q", str)}
			}
			out = strconv.AppendInt(out, n, 10)
		case "float":
			f, err := strconv.ParseFloat(str, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, &serde.RecordError{Field: c.Name, Reason: fmt.Sprintf("want a finite number, got %q", str)}
			}
			out = strconv.AppendFloat(out, f, 'g', -1, 64)
		case "bool":
			b, err := strconv.ParseBool(str)
			if err != nil || (str != "true" && str != "false") {
				return nil, &serde.RecordError{Field: c.Name, Reason: fmt.Sprintf("want true or false, got %q", str)}
			}
			out = strconv.AppendBool(out, b)
		case "json":
			var b bytes.Buffer
			if err := stdjson.Compact(&b, []byte(str)); err != nil {
				return nil, &serde.RecordError{Field: c.Name, Reason: "not valid JSON: " + err.Error()}
			}
			out = append(out, b.Bytes()...)
		}
	}
	return append(out, '}'), nil
}

// appendEscaped writes s with tabs, line breaks and backslashes escaped.
// Since every backslash is escaped, a string that is exactly \N is written
// \\N and never reads back as null.
func appendEscaped(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\t':
			out = append(out, '\\', 't')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\\':
			out = append(out, '\\', '\\')
		default:
			out = append(out, c)
		}
	}
	return out
}

// unescape reverses appendEscaped; a backslash before anything else is an
// error, so every field has one meaning.
func unescape(f []byte) (string, error) {
	if bytes.IndexByte(f, '\\') < 0 {
		return string(f), nil
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '\\' {
			b.WriteByte(f[i])
			continue
		}
		if i+1 == len(f) {
			return "", fmt.Errorf("a lone backslash ends the field")
		}
		i++
		switch f[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		default:
			return "", fmt.Errorf("unknown escape \\%c (use \\t, \\n, \\r or \\\\)", f[i])
		}
	}
	return b.String(), nil
}

func jsonKind(raw []byte) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func abbrev(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
