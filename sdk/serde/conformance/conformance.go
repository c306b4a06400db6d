// Package conformance is the test suite every serializer runs against
// itself, in-process, over an in-process gRPC connection and as a plugin
// process. A plugin author calls Run from a test with a Suite describing a
// few good and bad values of the format:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.GRPC(myserde.Plugin), suite)
//	}
//
// It checks that the serializer describes itself, round-trips values
// (Decode of Encode gives back an equal JSON value, and encoding is
// deterministic), rejects bad values one by one while encoding the good
// ones of the same batch, names the field of a bad value, survives
// arbitrary wire bytes, gives the same answers under concurrent calls, and
// carries large values.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/serde"
)

// Suite describes the values a serializer is tested with.
type Suite struct {
	// Config configures the serializer under test.
	Config serde.Config
	// Values are good canonical values. Each must come back from
	// Decode(Encode(v)) as an equal JSON value.
	Values []string
	// Bad are canonical values Encode must reject.
	Bad []Bad
	// BadWire are wire values Decode must reject (besides random bytes,
	// which it may accept or reject but must survive).
	BadWire [][]byte
	// Large returns a good canonical value of about n bytes; nil skips the
	// large-value test.
	Large func(n int) string
	// LargeBytes is the size of the large value (default 1 MiB).
	LargeBytes int
}

// Bad is a value Encode must reject.
type Bad struct {
	Value string
	// Field is the path the RecordError must name ("" to accept any,
	// including none).
	Field string
}

// Opener opens the serializer under test with a configuration.
type Opener func(t *testing.T, cfg serde.Config) serde.Serde

// InProcess opens p by calling its factory directly.
func InProcess(p serde.Plugin) Opener {
	return func(t *testing.T, cfg serde.Config) serde.Serde {
		s, err := p.New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	}
}

// GRPC opens p behind a real gRPC connection served in-process.
func GRPC(p serde.Plugin) Opener {
	return func(t *testing.T, cfg serde.Config) serde.Serde {
		return serde.TestConn(t, p, cfg)
	}
}

// Loaded opens the serializer called name through l (for instance with
// Mode ProcessOnly and Search.Path pointing at a folder of binaries).
func Loaded(l *serde.Loader, name string) Opener {
	return func(t *testing.T, cfg serde.Config) serde.Serde {
		s, err := l.Open(context.Background(), name, cfg)
		if err != nil {
			t.Fatalf("opening %s: %v", name, err)
		}
		return s
	}
}

// Run runs the suite.
func Run(t *testing.T, open Opener, s Suite) {
	t.Helper()
	ctx := context.Background()
	sd := open(t, s.Config)
	t.Cleanup(func() { _ = sd.Close() })
	good := make([][]byte, len(s.Values))
	for i, v := range s.Values {
		good[i] = []byte(v)
	}

	t.Run("describe", func(t *testing.T) {
		d, err := sd.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if plugin.CheckName(d.Name) != nil || d.Version == "" {
			t.Errorf("description %+v: want a valid name and a version", d)
		}
		if !slices.Contains(d.Protocols, serde.ProtocolVersion) {
			t.Errorf("protocols %v lack %d", d.Protocols, serde.ProtocolVersion)
		}
		if !d.Has(serde.CapEncode) || !d.Has(serde.CapDecode) {
			t.Errorf("capabilities %v: want encode and decode", d.Capabilities)
		}
	})

	t.Run("empty batch", func(t *testing.T) {
		out, err := sd.Encode(ctx, nil)
		if err != nil || len(out) != 0 {
			t.Errorf("Encode(nil) = %d items, %v", len(out), err)
		}
		out, err = sd.Decode(ctx, [][]byte{})
		if err != nil || len(out) != 0 {
			t.Errorf("Decode(empty) = %d items, %v", len(out), err)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		if len(good) == 0 {
			t.Fatal("the suite has no values")
		}
		wire := encode(t, sd, good)
		again := encode(t, sd, good)
		for i := range wire {
			if !bytes.Equal(wire[i], again[i]) {
				t.Errorf("value %d encodes to different bytes on a second call", i)
			}
		}
		back := decode(t, sd, wire)
		for i := range good {
			sameJSON(t, fmt.Sprintf("value %d", i), good[i], back[i])
		}
		// The decoded form encodes to the same bytes: canonical values
		// are a fixed point.
		rewire := encode(t, sd, back)
		for i := range wire {
			if !bytes.Equal(wire[i], rewire[i]) {
				t.Errorf("value %d: the decoded value %s encodes to other bytes", i, back[i])
			}
		}
	})

	t.Run("bad values", func(t *testing.T) {
		if len(s.Bad) == 0 {
			t.Fatal("the suite has no bad values")
		}
		// Interleave: good, bad, good, bad, ... so partial results are
		// checked by position.
		var batch [][]byte
		var badAt []int
		for i, b := range s.Bad {
			batch = append(batch, good[i%len(good)])
			badAt = append(badAt, len(batch))
			batch = append(batch, []byte(b.Value))
		}
		out, err := sd.Encode(ctx, batch)
		var be *serde.BatchError
		if !errors.As(err, &be) {
			t.Fatalf("Encode with bad values: %v (%T), want a *serde.BatchError", err, err)
		}
		if !errors.Is(err, serde.ErrInvalidValue) {
			t.Errorf("the error does not match serde.ErrInvalidValue")
		}
		if len(out) != len(batch) {
			t.Fatalf("Encode returned %d items for %d", len(out), len(batch))
		}
		for i, b := range s.Bad {
			at := badAt[i]
			re := be.ForIndex(at)
			if re == nil {
				t.Errorf("bad value %q (item %d) was accepted", b.Value, at)
				continue
			}
			if re.Reason == "" {
				t.Errorf("bad value %q: empty reason", b.Value)
			}
			if b.Field != "" && re.Field != b.Field {
				t.Errorf("bad value %q: error names field %q, want %q (%v)", b.Value, re.Field, b.Field, re)
			}
			if out[at] != nil {
				t.Errorf("bad value %q: item %d has output", b.Value, at)
			}
		}
		for i := range batch {
			if !slices.Contains(badAt, i) && (out[i] == nil || be.ForIndex(i) != nil) {
				t.Errorf("good item %d of a batch with bad values was not encoded", i)
			}
		}
		if len(be.Records) != len(s.Bad) {
			t.Errorf("%d errors for %d bad values: %v", len(be.Records), len(s.Bad), err)
		}
	})

	t.Run("bad wire data", func(t *testing.T) {
		if len(s.BadWire) > 0 {
			out, err := sd.Decode(ctx, s.BadWire)
			var be *serde.BatchError
			if !errors.As(err, &be) || len(be.Records) != len(s.BadWire) {
				t.Errorf("Decode of %d bad wire values: %v", len(s.BadWire), err)
			}
			if len(out) != len(s.BadWire) {
				t.Errorf("Decode returned %d items for %d", len(out), len(s.BadWire))
			}
		}
		// Random bytes and truncations of good records: any answer but a
		// crash or a transport failure.
		wire := encode(t, sd, good)
		rng := rand.New(rand.NewPCG(1, 2))
		var junk [][]byte
		for _, w := range wire {
			for cut := 0; cut < len(w); cut += max(1, len(w)/7) {
				junk = append(junk, w[:cut])
			}
			flipped := bytes.Clone(w)
			if len(flipped) > 0 {
				flipped[rng.IntN(len(flipped))] ^= 0xff
			}
			junk = append(junk, flipped)
		}
		for range 32 {
			b := make([]byte, rng.IntN(64))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			junk = append(junk, b)
		}
		out, err := sd.Decode(ctx, junk)
		var be *serde.BatchError
		if err != nil && !errors.As(err, &be) {
			t.Fatalf("Decode of junk failed as a whole: %v", err)
		}
		if len(out) != len(junk) {
			t.Fatalf("Decode returned %d items for %d", len(out), len(junk))
		}
		for i, o := range out {
			if be.ForIndex(i) == nil && !json.Valid(o) {
				t.Errorf("junk item %d decoded to invalid JSON %q", i, o)
			}
		}
	})

	t.Run("concurrency", func(t *testing.T) {
		want := encode(t, sd, good)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range 20 {
					// Each goroutine sends a different slice of the values.
					lo := (g + n) % len(good)
					got, err := sd.Encode(ctx, good[lo:])
					if err != nil {
						errs <- err
						return
					}
					for i := range got {
						if !bytes.Equal(got[i], want[lo+i]) {
							errs <- fmt.Errorf("goroutine %d: value %d encoded differently", g, lo+i)
							return
						}
					}
					back, err := sd.Decode(ctx, got)
					if err != nil {
						errs <- err
						return
					}
					if len(back) != len(got) {
						errs <- fmt.Errorf("goroutine %d: %d decoded for %d", g, len(back), len(got))
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("large values", func(t *testing.T) {
		if s.Large == nil {
			t.Skip("the suite has no large-value generator")
		}
		n := s.LargeBytes
		if n == 0 {
			n = 1 << 20
		}
		big := []byte(s.Large(n))
		if len(big) < n/2 {
			t.Fatalf("Large(%d) made only %d bytes", n, len(big))
		}
		batch := [][]byte{big, good[0], big}
		wire := encode(t, sd, batch)
		back := decode(t, sd, wire)
		sameJSON(t, "the large value", big, back[0])
		sameJSON(t, "the large value", big, back[2])
		sameJSON(t, "the small value between", good[0], back[1])
	})
}

func encode(t *testing.T, sd serde.Serde, in [][]byte) [][]byte {
	t.Helper()
	out, err := sd.Encode(context.Background(), in)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if len(out) != len(in) {
		t.Fatalf("Encode returned %d items for %d", len(out), len(in))
	}
	return out
}

func decode(t *testing.T, sd serde.Serde, in [][]byte) [][]byte {
	t.Helper()
	out, err := sd.Decode(context.Background(), in)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(out) != len(in) {
		t.Fatalf("Decode returned %d items for %d", len(out), len(in))
	}
	return out
}

// sameJSON fails unless a and b are equal JSON values (member order and
// number spelling aside).
func sameJSON(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Errorf("%s: %q is not JSON: %v", what, abbrev(a), err)
		return
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Errorf("%s: decoded %q is not JSON: %v", what, abbrev(b), err)
		return
	}
	if !reflect.DeepEqual(x, y) {
		t.Errorf("%s: round trip changed %s into %s", what, abbrev(a), abbrev(b))
	}
}

func abbrev(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
