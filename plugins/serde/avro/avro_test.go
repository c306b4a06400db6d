package avro_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	avroserde "github.com/runnel-io/runnel/plugins/serde/avro"
	"github.com/runnel-io/runnel/sdk/serde"
)

const orderSchema = `{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "qty", "type": "int"},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "ratio", "type": "float"},
    {"name": "ok", "type": "boolean"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
      {"name": "sku", "type": "string"}, {"name": "n", "type": "int"}]}}},
    {"name": "digest", "type": {"type": "fixed", "name": "MD5", "size": 4}},
    {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID"]}, "default": "NEW"},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
  ]
}`

func open(t *testing.T, opts map[string]string) serde.Serde {
	t.Helper()
	s, err := avroserde.New(serde.Config{Schema: []byte(orderSchema), Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encodeOne(t *testing.T, s serde.Serde, v string) []byte {
	t.Helper()
	out, err := s.Encode(context.Background(), [][]byte{[]byte(v)})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

const order = `{"id":7,"qty":3,"price":"-12.50","ratio":0.5,"ok":true,"note":"gift",
  "lines":[{"sku":"a","n":1},{"sku":"b","n":2}],"digest":"AQIDBA==","state":"PAID",
  "day":"2024-02-29","at":"2024-02-29T12:00:00.123Z"}`

// The bytes decode with linkedin/goavro, an implementation written
// independently of hamba/avro and of this package, which also checks the
// single-object header (C3 01 and the schema's CRC-64-AVRO fingerprint).
func TestGoavroDecodesOutput(t *testing.T) {
	s := open(t, nil)
	wire := encodeOne(t, s, order)
	if wire[0] != 0xc3 || wire[1] != 0x01 {
		t.Fatalf("no single-object marker: % x", wire[:2])
	}
	codec, err := goavro.NewCodec(orderSchema)
	if err != nil {
		t.Fatal(err)
	}
	// goavro's fingerprint of a schema with logical types departs from
	// the specification (it keeps them, renamed), so the header is checked
	// against the same schema without logical types, and the datum is
	// decoded after it.
	plain, err := goavro.NewCodec(stripLogical(orderSchema))
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint64(wire[2:10]); got != plain.Rabin {
		t.Errorf("fingerprint %x, the specification's (by goavro, logical types stripped) is %x", got, plain.Rabin)
	}
	native, rest, err := codec.NativeFromBinary(wire[10:])
	if err != nil {
		t.Fatalf("goavro rejects the record: %v", err)
	}
	if len(rest) != 0 {
		t.Errorf("%d bytes left over", len(rest))
	}
	m := native.(map[string]any)
	if m["id"] != int64(7) || m["qty"] != int32(3) || m["ratio"] != float32(0.5) || m["ok"] != true || m["state"] != "PAID" {
		t.Errorf("scalars: %v", m)
	}
	if m["note"].(map[string]any)["string"] != "gift" {
		t.Errorf("union: %v", m["note"])
	}
	if p := m["price"]; p == nil || !strings.Contains(stringer(p), "-25/2") {
		t.Errorf("decimal: %v (want -12.50 as a rational)", p)
	}
	lines := m["lines"].([]any)
	if len(lines) != 2 || lines[1].(map[string]any)["sku"] != "b" || lines[1].(map[string]any)["n"] != int32(2) {
		t.Errorf("array of records: %v", lines)
	}
	if !reflect.DeepEqual(m["digest"], []byte{1, 2, 3, 4}) {
		t.Errorf("fixed: %v", m["digest"])
	}
	if d := stringer(m["day"]); !strings.HasPrefix(d, "2024-02-29") {
		t.Errorf("date: %v", d)
	}
	if a := stringer(m["at"]); !strings.Contains(a, "12:00:00.123") {
		t.Errorf("timestamp: %v", a)
	}
}

// stripLogical removes the logical types of orderSchema by hand.
func stripLogical(s string) string {
	for _, r := range []struct{ from, to string }{
		{`{"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}`, `"bytes"`},
		{`{"type": "int", "logicalType": "date"}`, `"int"`},
		{`{"type": "long", "logicalType": "timestamp-millis"}`, `"long"`},
	} {
		if !strings.Contains(s, r.from) {
			panic("stripLogical: " + r.from)
		}
		s = strings.Replace(s, r.from, r.to, 1)
	}
	return s
}

// Without logical types goavro's fingerprint is the specification's, and
// NativeFromSingle checks the whole single-object frame.
func TestGoavroReadsSingleObject(t *testing.T) {
	sch := `{"type":"record","name":"U","namespace":"n","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},{"name":"again","type":["null","E"]},{"name":"f","type":{"type":"fixed","name":"F","size":2}}]}`
	s, err := avroserde.New(serde.Config{Schema: []byte(sch)})
	if err != nil {
		t.Fatal(err)
	}
	wire := encodeOne(t, s, `{"e":"B","again":"A","f":"AQI="}`)
	codec, err := goavro.NewCodec(sch)
	if err != nil {
		t.Fatal(err)
	}
	native, _, err := codec.NativeFromSingle(wire)
	if err != nil {
		t.Fatalf("goavro: %v", err)
	}
	m := native.(map[string]any)
	if m["e"] != "B" || m["again"].(map[string]any)["n.E"] != "A" || !reflect.DeepEqual(m["f"], []byte{1, 2}) {
		t.Errorf("goavro read %v", m)
	}
}

func stringer(v any) string {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// And the other way: what goavro writes, this serializer reads.
func TestDecodesGoavroOutput(t *testing.T) {
	codec, err := goavro.NewCodec(`{"type":"record","name":"P","fields":[{"name":"a","type":["null","long"]},{"name":"m","type":{"type":"map","values":"double"}},{"name":"b","type":"bytes"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := codec.SingleFromNative(nil, map[string]any{"a": goavro.Union("long", int64(-5)), "m": map[string]any{"x": 1.25}, "b": []byte{0xff}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := avroserde.New(serde.Config{Schema: []byte(codec.Schema())})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Decode(context.Background(), [][]byte{wire})
	if err != nil {
		t.Fatal(err)
	}
	if string(out[0]) != `{"a":-5,"m":{"x":1.25},"b":"/w=="}` {
		t.Errorf("decoded %s", out[0])
	}
}

func TestConfluentFraming(t *testing.T) {
	s := open(t, map[string]string{"framing": "confluent", "schema_id": "42"})
	wire := encodeOne(t, s, order)
	if string(wire[:5]) != "\x00\x00\x00\x00\x2a" {
		t.Errorf("prefix % x, want 00 00000 02a", wire[:5])
	}
	other := open(t, map[string]string{"framing": "confluent", "schema_id": "43"})
	_, err := other.Decode(context.Background(), [][]byte{wire})
	if err == nil || !strings.Contains(err.Error(), "written with schema id 42, this serializer has 43") {
		t.Errorf("wrong id: %v", err)
	}
	if _, err := avroserde.New(serde.Config{Schema: []byte(orderSchema), Options: map[string]string{"framing": "confluent"}}); !errors.Is(err, serde.ErrBadConfig) {
		t.Errorf("confluent without schema_id: %v", err)
	}
}

func TestOtherSchemaRejected(t *testing.T) {
	wire := encodeOne(t, open(t, nil), order)
	s, _ := avroserde.New(serde.Config{Schema: []byte(`{"type":"record","name":"X","fields":[{"name":"id","type":"long"}]}`)})
	_, err := s.Decode(context.Background(), [][]byte{wire})
	if err == nil || !strings.Contains(err.Error(), "written with another schema: fingerprint") {
		t.Errorf("decoding with another schema: %v", err)
	}
}

func TestDefaultsAndErrors(t *testing.T) {
	s := open(t, nil)
	minimal := `{"id":1,"qty":1,"price":1,"ratio":1,"ok":false,"lines":[],"digest":"AAAAAA==","day":0,"at":0}`
	out, err := s.Decode(context.Background(), [][]byte{encodeOne(t, s, minimal)})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(out[0], &m)
	if m["note"] != nil || m["state"] != "NEW" || m["price"] != "1.00" {
		t.Errorf("defaults and decimal: %s", out[0])
	}
	for value, want := range map[string]string{
		strings.Replace(minimal, `"qty":1`, `"qty":3000000000`, 1):            `field "qty": 3000000000 is out of range for an Avro int`,
		strings.Replace(minimal, `"price":1`, `"price":"1.234"`, 1):           `field "price": 1.234 has more than 2 digits after the point`,
		strings.Replace(minimal, `"lines":[]`, `"lines":[{"sku":1}]`, 1):      `field "lines[0].sku": want a string`,
		strings.Replace(minimal, `"digest":"AAAAAA=="`, `"digest":"AA=="`, 1): `field "digest": want 4 bytes for fixed shop.MD5, got 1`,
		strings.Replace(minimal, `"day":0`, `"day":"yesterday"`, 1):           `field "day": want a date as YYYY-MM-DD`,
	} {
		_, err := s.Encode(context.Background(), [][]byte{[]byte(value)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %s", err, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	s, err := avroserde.New(serde.Config{Schema: []byte(orderSchema)})
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.Encode(context.Background(), [][]byte{[]byte(order)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good[0])
	f.Add(good[0][:20])
	f.Add([]byte{0xc3, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := s.Decode(context.Background(), [][]byte{b})
		if err != nil {
			return
		}
		if !json.Valid(out[0]) {
			t.Fatalf("decoded to invalid JSON %q", out[0])
		}
		// What decodes must encode, and decode again to the same value
		// (the bytes may differ: a varint can be written longer than
		// needed).
		again, err := s.Encode(context.Background(), out)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", out[0], err)
		}
		back, err := s.Decode(context.Background(), again)
		if err != nil || string(back[0]) != string(out[0]) {
			t.Fatalf("re-encoding changed the value: %s became %s (%v)", out[0], back[0], err)
		}
	})
}
