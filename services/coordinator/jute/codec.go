package jute

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// MaxPacket is the largest frame a server accepts by default, like
// ZooKeeper's jute.maxbuffer (0xfffff bytes).
const MaxPacket = 0xfffff

// Errors reported by the decoder and the framer.
var (
	// ErrShort means a field ran past the end of the packet.
	ErrShort = errors.New("jute: packet too short")
	// ErrLength means a length prefix was negative or implausible.
	ErrLength = errors.New("jute: invalid length")
	// ErrTooLarge means a frame exceeded the packet size limit.
	ErrTooLarge = errors.New("jute: packet exceeds the size limit")
)

// Record is any message that can be written to and read from the wire.
type Record interface {
	Encode(e *Encoder)
	Decode(d *Decoder)
}

// Encoder appends jute-encoded fields to a byte slice.
type Encoder struct {
	B []byte
}

// Int appends a 32-bit integer.
func (e *Encoder) Int(v int32) { e.B = binary.BigEndian.AppendUint32(e.B, uint32(v)) }

// Long appends a 64-bit integer.
func (e *Encoder) Long(v int64) { e.B = binary.BigEndian.AppendUint64(e.B, uint64(v)) }

// Bool appends a boolean as one byte.
func (e *Encoder) Bool(v bool) {
	if v {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}

// Buffer appends a length-prefixed byte slice; nil encodes as length -1.
func (e *Encoder) Buffer(v []byte) {
	if v == nil {
		e.Int(-1)
		return
	}
	e.Int(int32(len(v)))
	e.B = append(e.B, v...)
}

// String appends a length-prefixed UTF-8 string.
func (e *Encoder) String(v string) {
	e.Int(int32(len(v)))
	e.B = append(e.B, v...)
}

// Strings appends a vector of strings; nil encodes as length -1.
func (e *Encoder) Strings(v []string) {
	if v == nil {
		e.Int(-1)
		return
	}
	e.Int(int32(len(v)))
	for _, s := range v {
		e.String(s)
	}
}

// Record appends a nested record.
func (e *Encoder) Record(r Record) { r.Encode(e) }

// Decoder reads jute-encoded fields from a byte slice. The first error is
// sticky: later reads return zero values and Err reports it.
type Decoder struct {
	B   []byte
	Off int
	err error
}

// NewDecoder returns a decoder over b.
func NewDecoder(b []byte) *Decoder { return &Decoder{B: b} }

// Err returns the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Remaining returns how many bytes are left unread.
func (d *Decoder) Remaining() int { return len(d.B) - d.Off }

// Fail records err unless an earlier error is already recorded.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.B)-d.Off {
		d.err = ErrShort
		return nil
	}
	b := d.B[d.Off : d.Off+n]
	d.Off += n
	return b
}

// Int reads a 32-bit integer.
func (d *Decoder) Int() int32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

// Long reads a 64-bit integer.
func (d *Decoder) Long() int64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// Bool reads a one-byte boolean.
func (d *Decoder) Bool() bool {
	b := d.take(1)
	return b != nil && b[0] != 0
}

func (d *Decoder) length() (int, bool) {
	n := d.Int()
	if d.err != nil {
		return 0, false
	}
	if n == -1 {
		return -1, true
	}
	if n < 0 || int(n) > d.Remaining() {
		d.Fail(ErrLength)
		return 0, false
	}
	return int(n), true
}

// Buffer reads a length-prefixed byte slice. Length -1 yields nil. The
// result is a copy, so it stays valid after the packet buffer is reused.
func (d *Decoder) Buffer() []byte {
	n, ok := d.length()
	if !ok || n < 0 {
		return nil
	}
	b := d.take(n)
	out := make([]byte, n)
	copy(out, b)
	return out
}

// String reads a length-prefixed string. Length -1 yields "".
func (d *Decoder) String() string {
	n, ok := d.length()
	if !ok || n < 0 {
		return ""
	}
	return string(d.take(n))
}

// Strings reads a vector of strings. Length -1 yields nil.
func (d *Decoder) Strings() []string {
	n, ok := d.length()
	if !ok || n < 0 {
		return nil
	}
	// Each element needs at least its 4-byte length: bound the allocation
	// by what the packet can hold.
	if n > d.Remaining()/4 {
		d.Fail(ErrLength)
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.String())
	}
	return out
}

// VectorLen reads a vector length and checks that n elements of at least
// minSize bytes each fit in what remains. It returns -1 for a null vector.
func (d *Decoder) VectorLen(minSize int) int {
	n, ok := d.length()
	if !ok {
		return 0
	}
	if n < 0 {
		return -1
	}
	if minSize > 0 && n > d.Remaining()/minSize {
		d.Fail(ErrLength)
		return 0
	}
	return n
}

// Decode decodes b into r and requires that every byte is consumed when
// exact is true.
func Decode(b []byte, r Record, exact bool) error {
	d := NewDecoder(b)
	r.Decode(d)
	if d.err != nil {
		return d.err
	}
	if exact && d.Remaining() != 0 {
		return fmt.Errorf("jute: %d trailing bytes after %T", d.Remaining(), r)
	}
	return nil
}

// Encode returns the encoding of the given records, one after another.
func Encode(rs ...Record) []byte {
	e := &Encoder{}
	for _, r := range rs {
		r.Encode(e)
	}
	return e.B
}

// ReadFrame reads one length-prefixed packet from r into buf (grown as
// needed) and returns the packet. A length above max or below zero returns
// ErrTooLarge or ErrLength; the connection should then be closed.
func ReadFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(hdr[:]))
	if n < 0 {
		return nil, ErrLength
	}
	if int(n) > max {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrTooLarge, n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// AppendFrame appends the records to dst behind a 4-byte length prefix.
func AppendFrame(dst []byte, rs ...Record) []byte {
	start := len(dst)
	e := &Encoder{B: append(dst, 0, 0, 0, 0)}
	for _, r := range rs {
		r.Encode(e)
	}
	n := len(e.B) - start - 4
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	binary.BigEndian.PutUint32(e.B[start:], uint32(n))
	return e.B
}
