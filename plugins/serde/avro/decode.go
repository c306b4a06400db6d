package avro

import (
	"encoding/base64"
	"encoding/binary"
	stdjson "encoding/json"
	"errors"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// maxDepth bounds the nesting of recursive schemas while decoding, so a
// crafted record cannot exhaust the stack.
const maxDepth = 256

var errTruncated = errors.New("the record ends in the middle of a datum")

// reader decodes a binary datum into its canonical JSON.
type reader struct {
	b     []byte
	depth int
	// budget bounds the array and map elements of one datum. Elements of
	// some types (null, an empty record) take no bytes, so the input's
	// length alone does not bound the work a crafted count causes.
	budget int64
}

func newReader(b []byte) *reader {
	return &reader{b: b, budget: 8*int64(len(b)) + 1024}
}

func (r *reader) long() (int64, error) {
	n, k := binary.Varint(r.b)
	if k <= 0 {
		if k == 0 {
			return 0, errTruncated
		}
		return 0, errors.New("an integer is longer than 64 bits")
	}
	r.b = r.b[k:]
	return n, nil
}

func (r *reader) take(n int64) ([]byte, error) {
	if n < 0 {
		return nil, bad("negative length %d", n)
	}
	if n > int64(len(r.b)) {
		return nil, errTruncated
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, nil
}

func (r *reader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

// blocks reads an array's or map's blocks, calling item for each element.
func (r *reader) blocks(item func(i int) error) error {
	i := 0
	for {
		n, err := r.long()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			// A negative count is followed by the block's size in bytes.
			n = -n
			if _, err := r.long(); err != nil {
				return err
			}
		}
		if r.budget -= n; r.budget < 0 {
			return bad("a block claims %d elements, more than the record can hold", n)
		}
		for range n {
			if err := item(i); err != nil {
				return err
			}
			i++
		}
	}
}

func appendJSONString(out []byte, s string) []byte {
	b, _ := stdjson.Marshal(s)
	return append(out, b...)
}

func (r *reader) datum(out []byte, s avro.Schema) ([]byte, error) {
	r.depth++
	defer func() { r.depth-- }()
	if r.depth > maxDepth {
		return nil, bad("nested more than %d levels deep", maxDepth)
	}
	switch s.Type() {
	case avro.Ref:
		return r.datum(out, s.(*avro.RefSchema).Schema())
	case avro.Null:
		return append(out, "null"...), nil
	case avro.Boolean:
		v, err := r.take(1)
		if err != nil {
			return nil, err
		}
		switch v[0] {
		case 0:
			return append(out, "false"...), nil
		case 1:
			return append(out, "true"...), nil
		}
		return nil, bad("a boolean byte is %d", v[0])
	case avro.Int, avro.Long:
		n, err := r.long()
		if err != nil {
			return nil, err
		}
		if s.Type() == avro.Int && (n < math.MinInt32 || n > math.MaxInt32) {
			return nil, bad("%d is out of range for an Avro int", n)
		}
		return strconv.AppendInt(out, n, 10), nil
	case avro.Float, avro.Double:
		var f float64
		if s.Type() == avro.Float {
			v, err := r.take(4)
			if err != nil {
				return nil, err
			}
			f = float64(math.Float32frombits(binary.LittleEndian.Uint32(v)))
		} else {
			v, err := r.take(8)
			if err != nil {
				return nil, err
			}
			f = math.Float64frombits(binary.LittleEndian.Uint64(v))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, bad("%v has no JSON form", f)
		}
		bits := 64
		if s.Type() == avro.Float {
			bits = 32
		}
		return strconv.AppendFloat(out, f, 'g', -1, bits), nil
	case avro.String:
		v, err := r.bytes()
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(v) {
			return nil, bad("a string is not valid UTF-8")
		}
		return appendJSONString(out, string(v)), nil
	case avro.Bytes:
		v, err := r.bytes()
		if err != nil {
			return nil, err
		}
		if d, ok := s.(*avro.PrimitiveSchema).Logical().(*avro.DecimalLogicalSchema); ok {
			return appendDecimal(out, v, d.Scale()), nil
		}
		return appendJSONString(out, base64.StdEncoding.EncodeToString(v)), nil
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		v, err := r.take(int64(fs.Size()))
		if err != nil {
			return nil, err
		}
		if d, ok := fs.Logical().(*avro.DecimalLogicalSchema); ok {
			return appendDecimal(out, v, d.Scale()), nil
		}
		return appendJSONString(out, base64.StdEncoding.EncodeToString(v)), nil
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		n, err := r.long()
		if err != nil {
			return nil, err
		}
		sym, ok := es.Symbol(int(n))
		if n < 0 || n > math.MaxInt32 || !ok {
			return nil, bad("enum index %d is not a symbol of %s", n, es.FullName())
		}
		return appendJSONString(out, sym), nil
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		out = append(out, '[')
		err := r.blocks(func(i int) error {
			if i > 0 {
				out = append(out, ',')
			}
			var err error
			if out, err = r.datum(out, items); err != nil {
				return at("["+strconv.Itoa(i)+"]", err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return append(out, ']'), nil
	case avro.Map:
		values := s.(*avro.MapSchema).Values()
		out = append(out, '{')
		err := r.blocks(func(i int) error {
			if i > 0 {
				out = append(out, ',')
			}
			k, err := r.bytes()
			if err != nil {
				return err
			}
			if !utf8.Valid(k) {
				return bad("a map key is not valid UTF-8")
			}
			out = append(appendJSONString(out, string(k)), ':')
			if out, err = r.datum(out, values); err != nil {
				return at(string(k), err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return append(out, '}'), nil
	case avro.Record:
		out = append(out, '{')
		for i, f := range s.(*avro.RecordSchema).Fields() {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(appendJSONString(out, f.Name()), ':')
			var err error
			if out, err = r.datum(out, f.Type()); err != nil {
				return nil, at(f.Name(), err)
			}
		}
		return append(out, '}'), nil
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		n, err := r.long()
		if err != nil {
			return nil, err
		}
		if n < 0 || n >= int64(len(types)) {
			return nil, bad("union branch %d does not exist (the union has %d)", n, len(types))
		}
		return r.datum(out, types[n])
	}
	return nil, bad("schema type %s is not supported", s.Type())
}

// appendDecimal writes a two's-complement unscaled value with its scale as
// a JSON string.
func appendDecimal(out, raw []byte, scale int) []byte {
	n := new(big.Int).SetBytes(raw)
	if len(raw) > 0 && raw[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(raw))))
	}
	r := new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	return appendJSONString(out, r.FloatString(scale))
}
