// Package avro is the avro serializer: values are Avro binary data of a
// schema given in the configuration, each framed with the identification
// of its schema. It parses schemas with github.com/hamba/avro/v2 and
// reads single-object headers and computes CRC-64-AVRO with its soe and
// crc64 packages.
//
// # Configuration
//
// serde.Config.Schema holds the Avro schema (JSON, as in an .avsc file).
// Options:
//
//   - framing=single-object (default): each record is Avro's single-object
//     encoding: the two bytes C3 01, the CRC-64-AVRO fingerprint of the
//     schema's Parsing Canonical Form (8 bytes, little-endian), then the
//     binary datum. The canonical form strips logicalType as the
//     specification says (see canonicalForm).
//   - framing=confluent: the 5-byte prefix of schema registries: a zero
//     byte, then the schema id (option schema_id, 4 bytes big-endian), then
//     the binary datum.
//   - framing=none: the bare binary datum.
//
// Decode checks the frame: a record written with another schema (another
// fingerprint or id) is rejected, naming both.
//
// # Canonical form
//
// A value is the JSON document of the datum, without Avro's JSON-encoding
// union wrappers:
//
//   - null, boolean, int, long, float, double, string: the JSON value.
//   - bytes and fixed: a base64 string (standard alphabet, padded).
//   - enum: the symbol as a string.
//   - array, map, record: a JSON array, object, object. A record member
//     missing from the input takes the field's default; unknown members are
//     rejected.
//   - union: the plain value, written with the first branch that accepts
//     it (null for null). The wrapped form {"branch": value} is also
//     accepted on input. Decode always returns the plain value.
//   - logical types: decimal as a string ("12.34"; a JSON number is
//     accepted on input); date, time-* and timestamp-* as their underlying
//     number; date also accepts "YYYY-MM-DD" and timestamp-millis/micros an
//     RFC 3339 string on input.
//
// A value that does not fit the schema is rejected with the path of the
// field (for example "address.zip" or "items[2].price").
package avro

import (
	"bytes"
	"context"
	"encoding/binary"
	stdjson "encoding/json"
	"fmt"
	"strconv"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/soe"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
)

// Version is the plugin's version.
const Version = "1.0.0"

// Plugin is the avro serializer, for serde.Serve and built-in registries.
var Plugin = serde.Plugin{
	Info: plugin.Description{
		Name:         "avro",
		Kind:         plugin.KindSerde,
		Version:      Version,
		Protocols:    []int{serde.ProtocolVersion},
		Capabilities: []string{serde.CapEncode, serde.CapDecode, serde.CapSchema},
		Summary:      "Avro binary with a schema file; single-object or schema-registry framing",
	},
	New: New,
}

// Framings of records.
const (
	FramingSingleObject = "single-object"
	FramingConfluent    = "confluent"
	FramingNone         = "none"
)

// Serde is a configured avro serializer.
type Serde struct {
	schema  avro.Schema
	framing string
	prefix  []byte
}

// New parses the schema and the options.
func New(cfg serde.Config) (serde.Serde, error) {
	if len(bytes.TrimSpace(cfg.Schema)) == 0 {
		return nil, fmt.Errorf("%w: avro needs a schema file (--schema FILE)", serde.ErrBadConfig)
	}
	sch, err := avro.ParseBytes(cfg.Schema)
	if err != nil {
		return nil, fmt.Errorf("%w: avro schema: %w", serde.ErrBadConfig, err)
	}
	s := &Serde{schema: sch, framing: FramingSingleObject}
	var id string
	for k, v := range cfg.Options {
		switch k {
		case "framing":
			s.framing = v
		case "schema_id":
			id = v
		default:
			return nil, fmt.Errorf("%w: avro has no option %q (it has framing and schema_id)", serde.ErrBadConfig, k)
		}
	}
	switch s.framing {
	case FramingSingleObject:
		s.prefix = singleObjectHeader(sch)
	case FramingConfluent:
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: avro framing=confluent needs the option schema_id=N (the registry's id of the schema), got %q", serde.ErrBadConfig, id)
		}
		s.prefix = binary.BigEndian.AppendUint32([]byte{0}, uint32(n))
	case FramingNone:
	default:
		return nil, fmt.Errorf("%w: avro framing=%q: use single-object, confluent or none", serde.ErrBadConfig, s.framing)
	}
	if id != "" && s.framing != FramingConfluent {
		return nil, fmt.Errorf("%w: avro option schema_id only applies with framing=confluent", serde.ErrBadConfig)
	}
	return s, nil
}

// Schema returns the parsed schema.
func (s *Serde) Schema() avro.Schema { return s.schema }

// Describe implements serde.Serde.
func (s *Serde) Describe(context.Context) (plugin.Description, error) { return Plugin.Info, nil }

// Close implements serde.Serde.
func (s *Serde) Close() error { return nil }

// Encode turns JSON values into framed Avro records.
func (s *Serde) Encode(_ context.Context, values [][]byte) ([][]byte, error) {
	return serde.Batch(values, s.encode)
}

// Decode turns framed Avro records into JSON values.
func (s *Serde) Decode(_ context.Context, data [][]byte) ([][]byte, error) {
	return serde.Batch(data, s.decode)
}

func (s *Serde) encode(v []byte) ([]byte, error) {
	d := stdjson.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, &serde.RecordError{Reason: "not valid JSON: " + err.Error()}
	}
	if d.More() {
		return nil, &serde.RecordError{Reason: "more than one JSON value"}
	}
	out := append(make([]byte, 0, len(s.prefix)+len(v)), s.prefix...)
	out, err := appendDatum(out, s.schema, x)
	if err != nil {
		return nil, recordError(err)
	}
	return out, nil
}

func (s *Serde) decode(b []byte) ([]byte, error) {
	body, err := s.unframe(b)
	if err != nil {
		return nil, &serde.RecordError{Reason: err.Error()}
	}
	r := newReader(body)
	out, err := r.datum(make([]byte, 0, 2*len(body)), s.schema)
	if err == nil && len(r.b) > 0 {
		err = fmt.Errorf("%d bytes after the end of the datum", len(r.b))
	}
	if err != nil {
		return nil, recordError(err)
	}
	return out, nil
}

// unframe checks the frame of a record and returns the datum.
func (s *Serde) unframe(b []byte) ([]byte, error) {
	switch s.framing {
	case FramingSingleObject:
		fp, body, err := soe.ParseHeader(b)
		if err != nil {
			return nil, fmt.Errorf("not Avro single-object encoding: %w", err)
		}
		if !bytes.Equal(fp, s.prefix[2:]) {
			return nil, fmt.Errorf("written with another schema: fingerprint %x, this serializer's schema has %x", fp, s.prefix[2:])
		}
		return body, nil
	case FramingConfluent:
		if len(b) < 5 || b[0] != 0 {
			return nil, fmt.Errorf("no schema-registry prefix (a zero byte and a 4-byte schema id)")
		}
		if !bytes.Equal(b[:5], s.prefix) {
			return nil, fmt.Errorf("written with schema id %d, this serializer has %d", binary.BigEndian.Uint32(b[1:5]), binary.BigEndian.Uint32(s.prefix[1:5]))
		}
		return b[5:], nil
	}
	return b, nil
}
