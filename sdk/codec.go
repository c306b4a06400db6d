package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/runnel-io/runnel/sdk/serde"
)

// Codec converts keys or values of type T to bytes and back, a batch at a
// time, so a codec behind a process boundary costs one call per batch.
// Errors about single items are a *serde.BatchError, as in sdk/serde.
type Codec[T any] interface {
	Encode(ctx context.Context, in []T) ([][]byte, error)
	Decode(ctx context.Context, in [][]byte) ([]T, error)
}

// Bytes passes []byte through: nil is a null key or value.
func Bytes() Codec[[]byte] { return bytesCodec{} }

type bytesCodec struct{}

func (bytesCodec) Encode(_ context.Context, in [][]byte) ([][]byte, error) { return in, nil }
func (bytesCodec) Decode(_ context.Context, in [][]byte) ([][]byte, error) { return in, nil }
func (bytesCodec) encodeOne(v []byte) ([]byte, error)                      { return v, nil }
func (bytesCodec) fromWire(b []byte) []byte                                { return b }

// String converts UTF-8 text; the empty string is written as null (no
// key), which is how keyless records are spread across partitions.
func String() Codec[string] { return stringCodec{} }

type stringCodec struct{}

func (stringCodec) Encode(_ context.Context, in []string) ([][]byte, error) {
	out := make([][]byte, len(in))
	for i, s := range in {
		if s != "" {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

func (stringCodec) encodeOne(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return []byte(s), nil
}

// fromWire is the string whose encoding is b.
func (stringCodec) fromWire(b []byte) string { return string(b) }

func (stringCodec) Decode(_ context.Context, in [][]byte) ([]string, error) {
	out := make([]string, len(in))
	for i, b := range in {
		out[i] = string(b)
	}
	return out, nil
}

// JSON converts T with encoding/json, in-process.
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

type jsonCodec[T any] struct{}

func (jsonCodec[T]) Encode(_ context.Context, in []T) ([][]byte, error) {
	return marshalAll(in)
}

func (jsonCodec[T]) encodeOne(v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &serde.RecordError{Reason: err.Error()}
	}
	return b, nil
}

func (jsonCodec[T]) Decode(_ context.Context, in [][]byte) ([]T, error) {
	return unmarshalAll[T](in)
}

func marshalAll[T any](in []T) ([][]byte, error) {
	out := make([][]byte, len(in))
	var bad []*serde.RecordError
	for i, v := range in {
		b, err := json.Marshal(v)
		if err != nil {
			bad = append(bad, &serde.RecordError{Index: i, Reason: err.Error()})
			continue
		}
		out[i] = b
	}
	if bad != nil {
		return out, &serde.BatchError{Records: bad}
	}
	return out, nil
}

func unmarshalAll[T any](in [][]byte) ([]T, error) {
	out := make([]T, len(in))
	var bad []*serde.RecordError
	for i, b := range in {
		if b == nil {
			continue
		}
		if err := json.Unmarshal(b, &out[i]); err != nil {
			re := &serde.RecordError{Index: i, Reason: err.Error()}
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				re.Field, re.Reason = te.Field, fmt.Sprintf("cannot put a JSON %s into Go type %s", te.Value, te.Type)
			}
			bad = append(bad, re)
		}
	}
	if bad != nil {
		return out, &serde.BatchError{Records: bad}
	}
	return out, nil
}

// SerdeCodec adapts a serializer of sdk/serde to Go type T: values go
// through encoding/json to the serializer's canonical form, then to its
// wire form, one serializer call per batch. Use T = json.RawMessage to hand
// canonical JSON directly.
func SerdeCodec[T any](s serde.Serde) Codec[T] { return serdeCodec[T]{s} }

type serdeCodec[T any] struct{ s serde.Serde }

func (c serdeCodec[T]) Encode(ctx context.Context, in []T) ([][]byte, error) {
	canon, jerr := marshalAll(in)
	var jbe *serde.BatchError
	if jerr != nil && !errors.As(jerr, &jbe) {
		return nil, jerr
	}
	out, err := c.s.Encode(ctx, canon)
	return out, mergeBatchErrors(jbe, err)
}

// Decode leaves null (nil) keys and values, such as the tombstones of
// compacted topics, as T's zero value: no serializer is asked to decode
// nothing.
func (c serdeCodec[T]) Decode(ctx context.Context, in [][]byte) ([]T, error) {
	canon, err := c.decodePresent(ctx, in)
	var sbe *serde.BatchError
	if err != nil && !errors.As(err, &sbe) {
		return nil, err
	}
	out, jerr := unmarshalAll[T](canon)
	var jbe *serde.BatchError
	if jerr != nil && !errors.As(jerr, &jbe) {
		return nil, jerr
	}
	if sbe == nil {
		return out, batchOrNil(jbe)
	}
	return out, mergeBatchErrors(sbe, batchOrNil(jbe))
}

// decodePresent decodes the non-nil items of in, keeping positions.
func (c serdeCodec[T]) decodePresent(ctx context.Context, in [][]byte) ([][]byte, error) {
	var idx []int
	var present [][]byte
	for i, b := range in {
		if b != nil {
			idx = append(idx, i)
			present = append(present, b)
		}
	}
	if len(present) == len(in) {
		return c.s.Decode(ctx, in)
	}
	out := make([][]byte, len(in))
	if len(present) == 0 {
		return out, nil
	}
	dec, err := c.s.Decode(ctx, present)
	var be *serde.BatchError
	if err != nil && !errors.As(err, &be) {
		return nil, err
	}
	for j, i := range idx {
		out[i] = dec[j]
	}
	if be != nil {
		for _, r := range be.Records {
			r.Index = idx[r.Index]
		}
		return out, be
	}
	return out, nil
}

func batchOrNil(b *serde.BatchError) error {
	if b == nil {
		return nil
	}
	return b
}

// mergeBatchErrors joins the per-item errors of two stages; a non-batch
// error of the second stage wins as a whole.
func mergeBatchErrors(first *serde.BatchError, second error) error {
	var sb *serde.BatchError
	if second != nil && !errors.As(second, &sb) {
		return second
	}
	if first == nil && sb == nil {
		return nil
	}
	out := &serde.BatchError{}
	seen := map[int]bool{}
	for _, b := range []*serde.BatchError{first, sb} {
		if b == nil {
			continue
		}
		for _, r := range b.Records {
			if !seen[r.Index] {
				seen[r.Index] = true
				out.Records = append(out.Records, r)
			}
		}
	}
	return out
}
