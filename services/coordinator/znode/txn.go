package znode

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// ErrCorrupt is wrapped by every error that Txn.UnmarshalBinary and
// DB.ReadSnapshot return for input they cannot decode: truncated, altered,
// or of an unknown format version.
var ErrCorrupt = errors.New("znode: corrupt encoding")

// txnVersion is the first byte of an encoded Txn.
const txnVersion byte = 1

// MarshalBinary encodes the Txn compactly: a version byte, the header
// fields as varints, the auth identities, and the request body in jute. It
// fails when Req is not the record type the opcode takes.
func (t *Txn) MarshalBinary() ([]byte, error) {
	if t.Req != nil {
		want, _ := txnRecord(t.Op)
		if want == nil || recordType(want) != recordType(t.Req) || recordType(want) == 0 {
			return nil, fmt.Errorf("znode: %s cannot carry a %T request", jute.OpName(t.Op), t.Req)
		}
		if m, ok := t.Req.(*jute.MultiRequest); ok {
			for i, op := range m.Ops {
				if !multiOpFits(op) {
					return nil, fmt.Errorf("znode: multi operation %d: %s cannot carry a %T request", i, jute.OpName(op.Type), op.Req)
				}
			}
		}
	}
	b := make([]byte, 0, 64)
	b = append(b, txnVersion)
	b = binary.AppendVarint(b, t.Zxid)
	b = binary.AppendVarint(b, t.Time)
	b = binary.AppendVarint(b, t.SessionID)
	b = binary.AppendVarint(b, int64(t.Cxid))
	b = binary.AppendVarint(b, int64(t.Op))
	b = binary.AppendVarint(b, int64(t.Timeout))
	b = binary.AppendUvarint(b, t.Origin)
	if t.Passwd == nil {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(t.Passwd))+1)
		b = append(b, t.Passwd...)
	}
	b = binary.AppendUvarint(b, uint64(len(t.Auth)))
	for _, id := range t.Auth {
		b = appendUvarintString(b, id.Scheme)
		b = appendUvarintString(b, id.ID)
	}
	if t.Req == nil {
		return append(b, 0), nil
	}
	e := jute.Encoder{B: append(b, 1)}
	t.Req.Encode(&e)
	return e.B, nil
}

func appendUvarintString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes what MarshalBinary produced. It never panics:
// anything else yields an error wrapping ErrCorrupt, and t is then left
// unspecified.
func (t *Txn) UnmarshalBinary(b []byte) error {
	r := byteReader{b: b}
	if v := r.byte(); v != txnVersion {
		if r.err != nil {
			return r.err
		}
		return fmt.Errorf("%w: txn format version %d", ErrCorrupt, v)
	}
	var nt Txn
	nt.Zxid = r.varint()
	nt.Time = r.varint()
	nt.SessionID = r.varint()
	nt.Cxid = r.int32()
	nt.Op = r.int32()
	nt.Timeout = r.int32()
	nt.Origin = r.uvarint()
	if n := r.uvarint(); n > 0 {
		nt.Passwd = r.bytes(n - 1)
	}
	if n := r.uvarint(); n > 0 {
		if n > uint64(r.remaining()/2) {
			return fmt.Errorf("%w: %d auth ids in %d bytes", ErrCorrupt, n, r.remaining())
		}
		nt.Auth = make([]jute.Id, n)
		for i := range nt.Auth {
			nt.Auth[i].Scheme = r.string()
			nt.Auth[i].ID = r.string()
		}
	}
	hasReq := r.byte()
	if r.err != nil {
		return r.err
	}
	switch hasReq {
	case 0:
		if r.remaining() != 0 {
			return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, r.remaining())
		}
	case 1:
		rec, _ := txnRecord(nt.Op)
		if rec == nil {
			return fmt.Errorf("%w: %s carries no request body", ErrCorrupt, jute.OpName(nt.Op))
		}
		if err := jute.Decode(r.b[r.off:], rec, true); err != nil {
			return fmt.Errorf("%w: %s request: %w", ErrCorrupt, jute.OpName(nt.Op), err)
		}
		nt.Req = rec
	default:
		return fmt.Errorf("%w: request marker %d", ErrCorrupt, hasReq)
	}
	*t = nt
	return nil
}

// txnRecord returns an empty request record for a Txn opcode, or nil for
// one without a body.
func txnRecord(op int32) (jute.Record, bool) {
	switch op {
	case jute.OpDeleteContainer:
		return &jute.DeleteRequest{}, true
	case OpNoop:
		return &jute.PathRequest{}, true
	case jute.OpCreateSession, jute.OpCloseSession:
		return nil, true
	}
	return jute.RequestRecord(op)
}

// recordType numbers the request record types, so MarshalBinary can check
// a request against its opcode without reflection. 0 is "not a request".
func recordType(r jute.Record) int {
	switch r.(type) {
	case *jute.CreateRequest:
		return 1
	case *jute.CreateTTLRequest:
		return 2
	case *jute.DeleteRequest:
		return 3
	case *jute.PathWatchRequest:
		return 4
	case *jute.SetDataRequest:
		return 5
	case *jute.PathRequest:
		return 6
	case *jute.SetACLRequest:
		return 7
	case *jute.MultiRequest:
		return 8
	case *jute.AuthPacket:
		return 9
	case *jute.SetWatches:
		return 10
	case *jute.SetWatches2:
		return 11
	case *jute.AddWatchRequest:
		return 12
	case *jute.RemoveWatchesRequest:
		return 13
	}
	return 0
}

// multiOpFits reports whether a multi operation's record is the one jute
// decodes for its opcode, so that the encoding reads back.
func multiOpFits(op jute.MultiOp) bool {
	switch op.Type {
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer:
		_, ok := op.Req.(*jute.CreateRequest)
		return ok
	case jute.OpCreateTTL:
		_, ok := op.Req.(*jute.CreateTTLRequest)
		return ok
	case jute.OpDelete, jute.OpCheck:
		_, ok := op.Req.(*jute.DeleteRequest)
		return ok
	case jute.OpSetData:
		_, ok := op.Req.(*jute.SetDataRequest)
		return ok
	case jute.OpGetData, jute.OpGetChildren:
		_, ok := op.Req.(*jute.PathWatchRequest)
		return ok
	}
	return false
}

// byteReader reads varint-framed fields with a sticky error.
type byteReader struct {
	b   []byte
	off int
	err error
}

func (r *byteReader) remaining() int { return len(r.b) - r.off }

func (r *byteReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or invalid %s at offset %d", ErrCorrupt, what, r.off)
	}
}

func (r *byteReader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("byte")
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *byteReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.off += n
	return v
}

func (r *byteReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.off += n
	return v
}

func (r *byteReader) int32() int32 {
	v := r.varint()
	if v != int64(int32(v)) {
		r.fail("int32")
		return 0
	}
	return int32(v)
}

func (r *byteReader) bytes(n uint64) []byte {
	if r.err != nil || n > uint64(r.remaining()) {
		r.fail("bytes")
		return nil
	}
	out := make([]byte, n)
	copy(out, r.b[r.off:])
	r.off += int(n)
	return out
}

func (r *byteReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(r.remaining()) {
		r.fail("string")
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}
