package avro

import (
	"encoding/base64"
	"encoding/binary"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/runnel-io/runnel/sdk/serde"
)

// pathError is a datum that does not fit its schema. Segments are added
// as the error travels up, so a path is built only for bad values.
type pathError struct {
	segs   []string // innermost first
	reason string
}

func (e *pathError) Error() string { return e.path() + ": " + e.reason }

func (e *pathError) path() string {
	var b strings.Builder
	for i := len(e.segs) - 1; i >= 0; i-- {
		s := e.segs[i]
		if b.Len() > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func bad(format string, args ...any) error {
	return &pathError{reason: fmt.Sprintf(format, args...)}
}

// at adds a path segment to err.
func at(seg string, err error) error {
	var pe *pathError
	if errors.As(err, &pe) {
		pe.segs = append(pe.segs, seg)
		return pe
	}
	return &pathError{segs: []string{seg}, reason: err.Error()}
}

func recordError(err error) *serde.RecordError {
	var pe *pathError
	if errors.As(err, &pe) {
		return &serde.RecordError{Field: pe.path(), Reason: pe.reason}
	}
	return &serde.RecordError{Reason: err.Error()}
}

// appendLong writes an Avro int or long: a zig-zag varint, which is what
// encoding/binary's signed varint is.
func appendLong(b []byte, n int64) []byte { return binary.AppendVarint(b, n) }

func appendBytes(b, v []byte) []byte {
	return append(appendLong(b, int64(len(v))), v...)
}

func describe(x any) string {
	switch v := x.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case stdjson.Number:
		return "the number " + v.String()
	case string:
		if len(v) > 30 {
			v = v[:30] + "..."
		}
		return strconv.Quote(v) + " (a string)"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

// appendDatum writes x, a JSON value decoded with UseNumber, as a datum of
// schema s.
func appendDatum(b []byte, s avro.Schema, x any) ([]byte, error) {
	switch s.Type() {
	case avro.Ref:
		return appendDatum(b, s.(*avro.RefSchema).Schema(), x)
	case avro.Null:
		if x != nil {
			return nil, bad("want null, got %s", describe(x))
		}
		return b, nil
	case avro.Boolean:
		v, ok := x.(bool)
		if !ok {
			return nil, bad("want a boolean, got %s", describe(x))
		}
		if v {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case avro.Int, avro.Long:
		n, err := integer(s, x)
		if err != nil {
			return nil, err
		}
		return appendLong(b, n), nil
	case avro.Float:
		f, err := number(x)
		if err != nil {
			return nil, err
		}
		if f32 := float32(f); !math.IsInf(f, 0) && math.IsInf(float64(f32), 0) {
			return nil, bad("%v is out of range for a float", f)
		}
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(f))), nil
	case avro.Double:
		f, err := number(x)
		if err != nil {
			return nil, err
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(f)), nil
	case avro.String:
		v, ok := x.(string)
		if !ok {
			return nil, bad("want a string, got %s", describe(x))
		}
		return appendBytes(b, []byte(v)), nil
	case avro.Bytes:
		if d, ok := s.(*avro.PrimitiveSchema).Logical().(*avro.DecimalLogicalSchema); ok {
			raw, err := decimalBytes(x, d.Precision(), d.Scale(), 0)
			if err != nil {
				return nil, err
			}
			return appendBytes(b, raw), nil
		}
		raw, err := base64Value(x)
		if err != nil {
			return nil, err
		}
		return appendBytes(b, raw), nil
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		if d, ok := fs.Logical().(*avro.DecimalLogicalSchema); ok {
			raw, err := decimalBytes(x, d.Precision(), d.Scale(), fs.Size())
			if err != nil {
				return nil, err
			}
			return append(b, raw...), nil
		}
		raw, err := base64Value(x)
		if err != nil {
			return nil, err
		}
		if len(raw) != fs.Size() {
			return nil, bad("want %d bytes for fixed %s, got %d", fs.Size(), fs.FullName(), len(raw))
		}
		return append(b, raw...), nil
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		v, ok := x.(string)
		if !ok {
			return nil, bad("want one of the symbols of enum %s, got %s", es.FullName(), describe(x))
		}
		i := slices.Index(es.Symbols(), v)
		if i < 0 {
			return nil, bad("%q is not a symbol of enum %s (%s)", v, es.FullName(), strings.Join(es.Symbols(), ", "))
		}
		return appendLong(b, int64(i)), nil
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		v, ok := x.([]any)
		if !ok {
			return nil, bad("want an array, got %s", describe(x))
		}
		if len(v) > 0 {
			b = appendLong(b, int64(len(v)))
			for i, e := range v {
				var err error
				if b, err = appendDatum(b, items, e); err != nil {
					return nil, at("["+strconv.Itoa(i)+"]", err)
				}
			}
		}
		return append(b, 0), nil
	case avro.Map:
		values := s.(*avro.MapSchema).Values()
		v, ok := x.(map[string]any)
		if !ok {
			return nil, bad("want an object (an Avro map), got %s", describe(x))
		}
		if len(v) > 0 {
			b = appendLong(b, int64(len(v)))
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys) // the same value always gives the same bytes
			for _, k := range keys {
				b = appendBytes(b, []byte(k))
				var err error
				if b, err = appendDatum(b, values, v[k]); err != nil {
					return nil, at(k, err)
				}
			}
		}
		return append(b, 0), nil
	case avro.Record:
		rs := s.(*avro.RecordSchema)
		v, ok := x.(map[string]any)
		if !ok {
			return nil, bad("want an object (record %s), got %s", rs.FullName(), describe(x))
		}
		for k := range v {
			if !slices.ContainsFunc(rs.Fields(), func(f *avro.Field) bool { return f.Name() == k }) {
				return nil, at(k, bad("not a field of record %s", rs.FullName()))
			}
		}
		for _, f := range rs.Fields() {
			fv, present := v[f.Name()]
			if !present {
				if !f.HasDefault() {
					return nil, at(f.Name(), bad("missing, and the field has no default"))
				}
				var err error
				if fv, err = jsonDefault(f.Default()); err != nil {
					return nil, at(f.Name(), err)
				}
			}
			var err error
			if b, err = appendDatum(b, f.Type(), fv); err != nil {
				return nil, at(f.Name(), err)
			}
		}
		return b, nil
	case avro.Union:
		return appendUnion(b, s.(*avro.UnionSchema), x)
	}
	return nil, bad("schema type %s is not supported", s.Type())
}

// appendUnion writes x with the first branch that accepts it, or with the
// branch its wrapper names ({"string": "x"}).
//
// When x fits no branch but exactly one branch is of x's JSON kind (an
// object for a record in ["null", Address]), that branch's error is the
// one returned: it names the field inside x that is wrong.
func appendUnion(b []byte, u *avro.UnionSchema, x any) ([]byte, error) {
	var closest error
	kindMatches := 0
	for i, t := range u.Types() {
		out, err := appendDatum(appendLong(b, int64(i)), t, x)
		if err == nil {
			return out, nil
		}
		if sameKind(t, x) {
			kindMatches++
			closest = err
		}
	}
	if m, ok := x.(map[string]any); ok && len(m) == 1 {
		for k, inner := range m {
			for i, t := range u.Types() {
				if branchName(t) == k {
					out, err := appendDatum(appendLong(b, int64(i)), t, inner)
					if err != nil {
						return nil, at(k, err)
					}
					return out, nil
				}
			}
		}
	}
	if kindMatches == 1 {
		return nil, closest
	}
	names := make([]string, len(u.Types()))
	for i, t := range u.Types() {
		names[i] = branchName(t)
	}
	return nil, bad("%s fits no branch of the union [%s]", describe(x), strings.Join(names, ", "))
}

// sameKind reports whether schema s takes JSON values of x's kind.
func sameKind(s avro.Schema, x any) bool {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	switch x.(type) {
	case map[string]any:
		return s.Type() == avro.Record || s.Type() == avro.Map
	case []any:
		return s.Type() == avro.Array
	case string:
		switch s.Type() {
		case avro.String, avro.Enum, avro.Bytes, avro.Fixed:
			return true
		}
	case stdjson.Number:
		switch s.Type() {
		case avro.Int, avro.Long, avro.Float, avro.Double:
			return true
		}
	case bool:
		return s.Type() == avro.Boolean
	case nil:
		return s.Type() == avro.Null
	}
	return false
}

// branchName is how a union branch is named in Avro's JSON encoding.
func branchName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

func integer(s avro.Schema, x any) (int64, error) {
	lt := logical(s)
	switch v := x.(type) {
	case stdjson.Number:
		n, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil {
			return 0, bad("want an integer, got %s", describe(x))
		}
		if s.Type() == avro.Int && (n < math.MinInt32 || n > math.MaxInt32) {
			return 0, bad("%d is out of range for an Avro int", n)
		}
		return n, nil
	case string:
		switch lt {
		case avro.Date:
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return 0, bad("want a date as YYYY-MM-DD or a number of days, got %s", describe(x))
			}
			return t.Unix() / 86400, nil
		case avro.TimestampMillis, avro.TimestampMicros:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return 0, bad("want an RFC 3339 time or a number, got %s", describe(x))
			}
			if lt == avro.TimestampMillis {
				return t.UnixMilli(), nil
			}
			return t.UnixMicro(), nil
		}
	}
	return 0, bad("want an integer, got %s", describe(x))
}

func logical(s avro.Schema) avro.LogicalType {
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		return ls.Logical().Type()
	}
	return ""
}

func number(x any) (float64, error) {
	v, ok := x.(stdjson.Number)
	if !ok {
		return 0, bad("want a number, got %s", describe(x))
	}
	f, err := strconv.ParseFloat(v.String(), 64)
	if err != nil {
		return 0, bad("want a number, got %s", describe(x))
	}
	return f, nil
}

func base64Value(x any) ([]byte, error) {
	v, ok := x.(string)
	if !ok {
		return nil, bad("want bytes as a base64 string, got %s", describe(x))
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, bad("want bytes as a base64 string: %v", err)
	}
	return raw, nil
}

// decimalBytes returns the two's-complement big-endian unscaled value of a
// decimal; size > 0 pads it to a fixed size.
func decimalBytes(x any, precision, scale, size int) ([]byte, error) {
	var text string
	switch v := x.(type) {
	case string:
		text = v
	case stdjson.Number:
		text = v.String()
	default:
		return nil, bad("want a decimal as a string or a number, got %s", describe(x))
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return nil, bad("want a decimal, got %q", text)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !r.IsInt() {
		return nil, bad("%s has more than %d digits after the point", text, scale)
	}
	n := r.Num()
	if len(new(big.Int).Abs(n).String()) > precision {
		return nil, bad("%s has more than %d significant digits", text, precision)
	}
	raw := twosComplement(n)
	if size > 0 {
		if len(raw) > size {
			return nil, bad("%s does not fit in %d bytes", text, size)
		}
		pad := byte(0)
		if n.Sign() < 0 {
			pad = 0xff
		}
		raw = append(slices.Repeat([]byte{pad}, size-len(raw)), raw...)
	}
	return raw, nil
}

func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n - 1, inverted, is n in two's complement.
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

// jsonDefault turns a field default as hamba/avro parsed it into the JSON
// shape appendDatum takes.
func jsonDefault(d any) (any, error) {
	raw, err := stdjson.Marshal(d)
	if err != nil {
		return nil, bad("cannot use the field's default: %v", err)
	}
	var x any
	dec := stdjson.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		return nil, bad("cannot use the field's default: %v", err)
	}
	return x, nil
}
