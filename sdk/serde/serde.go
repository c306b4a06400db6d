package serde

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/runnel-io/runnel/sdk/plugin"
)

// Serde converts batches of canonical values (JSON documents) to wire bytes
// and back. Implementations must be safe for concurrent use: hosts call
// them from several goroutines at once.
type Serde interface {
	// Describe says what the serializer is and can do.
	Describe(ctx context.Context) (plugin.Description, error)
	// Encode returns the wire form of each canonical value. When some
	// values are bad, the others are still encoded and the error is a
	// *BatchError; out[i] is nil for a bad value.
	Encode(ctx context.Context, values [][]byte) (out [][]byte, err error)
	// Decode returns the canonical form of each wire value, with the same
	// partial-failure rule as Encode.
	Decode(ctx context.Context, data [][]byte) (out [][]byte, err error)
	// Close releases what the serializer holds (a plugin process).
	Close() error
}

// Config is what a serializer is configured with.
type Config struct {
	// Schema is the content of a schema file: an Avro schema for avro, a
	// column list for tsv. Serializers without "schema" ignore it.
	Schema []byte
	// Options are settings of the serializer's own (see its documentation).
	Options map[string]string
}

// Factory makes a configured serializer.
type Factory func(cfg Config) (Serde, error)

// Plugin is a serializer implementation: what it says about itself and
// how to make one. The same value is served as a plugin process (Serve) or
// linked into a host as a built-in (Loader).
type Plugin struct {
	Info plugin.Description
	New  Factory
}

// Capabilities of serializers (see the package documentation).
const (
	CapEncode = "encode"
	CapDecode = "decode"
	CapSchema = "schema"
	CapText   = "text"
)

// ErrInvalidValue is matched (errors.Is) by a RecordError: a value the
// serializer rejects, as opposed to a failure of the serializer itself.
var ErrInvalidValue = errors.New("invalid value")

// ErrBadConfig is matched by the error of a Factory (or a plugin's
// Configure) given a schema or options it cannot use.
var ErrBadConfig = errors.New("invalid serializer configuration")

// RecordError says why one value of a batch was rejected.
type RecordError struct {
	// Index is the value's position in its batch. The SDK rewrites it into
	// the record's identity when it reports the error.
	Index int
	// Field is the path of the offending field ("address.zip", "tags[2]",
	// or a TSV column name); empty when the value as a whole is wrong.
	Field string
	// Reason says what is wrong, in the format's terms.
	Reason string
}

func (e *RecordError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("record %d: %s", e.Index, e.Reason)
	}
	return fmt.Sprintf("record %d: field %q: %s", e.Index, e.Field, e.Reason)
}

// Unwrap makes a RecordError match ErrInvalidValue.
func (e *RecordError) Unwrap() error { return ErrInvalidValue }

// BatchError lists the bad values of a batch, in index order.
type BatchError struct {
	Records []*RecordError
}

func (e *BatchError) Error() string {
	if len(e.Records) == 1 {
		return e.Records[0].Error()
	}
	parts := make([]string, 0, min(len(e.Records), 3))
	for _, r := range e.Records[:min(len(e.Records), 3)] {
		parts = append(parts, r.Error())
	}
	s := fmt.Sprintf("%d bad values: %s", len(e.Records), strings.Join(parts, "; "))
	if len(e.Records) > 3 {
		s += "; ..."
	}
	return s
}

// Unwrap exposes each RecordError to errors.Is and errors.As.
func (e *BatchError) Unwrap() []error {
	out := make([]error, len(e.Records))
	for i, r := range e.Records {
		out[i] = r
	}
	return out
}

// ForIndex returns the error of item i, or nil if it succeeded.
func (e *BatchError) ForIndex(i int) *RecordError {
	if e == nil {
		return nil
	}
	for _, r := range e.Records {
		if r.Index == i {
			return r
		}
	}
	return nil
}

// Batch is a helper for implementations: run fn on every item, collecting
// the results and the RecordErrors of the items it rejects. fn returns a
// *RecordError (Index need not be set) for a bad item; any other error
// aborts the batch.
func Batch(in [][]byte, fn func(item []byte) ([]byte, error)) ([][]byte, error) {
	out := make([][]byte, len(in))
	var bad []*RecordError
	for i, item := range in {
		v, err := fn(item)
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			c := *re
			c.Index = i
			bad = append(bad, &c)
			continue
		}
		out[i] = v
	}
	if bad != nil {
		return out, &BatchError{Records: bad}
	}
	return out, nil
}
