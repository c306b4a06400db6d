package avro

import (
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/pkg/crc64"
)

// canonicalForm writes s in Avro's Parsing Canonical Form: only the
// attributes that matter for reading data (type, name, fields, symbols,
// items, values, size), full names, in the specification's order, and a
// named type written out once then referred to by name.
//
// hamba/avro's own canonical form keeps logicalType (and linkedin/goavro's
// renames decimals), which gives a schema with logical types a fingerprint
// Java's SchemaNormalization and other clients do not compute; the
// specification strips logicalType like every other attribute not listed.
func canonicalForm(s avro.Schema) string {
	var b strings.Builder
	writeCanonical(&b, s, map[string]bool{})
	return b.String()
}

func writeCanonical(b *strings.Builder, s avro.Schema, defined map[string]bool) {
	q := strconv.Quote
	if n, ok := s.(avro.NamedSchema); ok && s.Type() != avro.Ref {
		if defined[n.FullName()] {
			b.WriteString(q(n.FullName()))
			return
		}
		defined[n.FullName()] = true
	}
	switch s.Type() {
	case avro.Ref:
		writeCanonical(b, s.(*avro.RefSchema).Schema(), defined)
	case avro.Record:
		rs := s.(*avro.RecordSchema)
		b.WriteString(`{"name":` + q(rs.FullName()) + `,"type":"record","fields":[`)
		for i, f := range rs.Fields() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"name":` + q(f.Name()) + `,"type":`)
			writeCanonical(b, f.Type(), defined)
			b.WriteByte('}')
		}
		b.WriteString("]}")
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		b.WriteString(`{"name":` + q(es.FullName()) + `,"type":"enum","symbols":[`)
		for i, sym := range es.Symbols() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(q(sym))
		}
		b.WriteString("]}")
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		b.WriteString(`{"name":` + q(fs.FullName()) + `,"type":"fixed","size":` + strconv.Itoa(fs.Size()) + `}`)
	case avro.Array:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, s.(*avro.ArraySchema).Items(), defined)
		b.WriteByte('}')
	case avro.Map:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, s.(*avro.MapSchema).Values(), defined)
		b.WriteByte('}')
	case avro.Union:
		b.WriteByte('[')
		for i, t := range s.(*avro.UnionSchema).Types() {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, t, defined)
		}
		b.WriteByte(']')
	default:
		b.WriteString(q(string(s.Type())))
	}
}

// fingerprint is the CRC-64-AVRO (Rabin) fingerprint of s's canonical
// form, little-endian as single-object encoding writes it.
func fingerprint(s avro.Schema) []byte {
	h := crc64.NewWithByteOrder(crc64.LittleEndian)
	_, _ = h.Write([]byte(canonicalForm(s)))
	return h.Sum(nil)
}

// singleObjectHeader is the two-byte marker C3 01 and the fingerprint.
func singleObjectHeader(s avro.Schema) []byte {
	return append([]byte{0xc3, 0x01}, fingerprint(s)...)
}
