package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors of request decoding. All of them close the connection that sent
// the frame; none affects other connections.
var (
	// ErrFrameTooLarge means a frame's size prefix exceeds the configured
	// maximum request size (socket.request.max.bytes) or is negative.
	ErrFrameTooLarge = errors.New("wire: request frame too large")

	// ErrMalformed means a request header or body does not parse.
	ErrMalformed = errors.New("wire: malformed request")

	// ErrUnknownKey means the API key is not one the broker serves.
	ErrUnknownKey = errors.New("wire: unknown API key")

	// ErrUnsupportedVersion means the API key is served but not at the
	// requested version.
	ErrUnsupportedVersion = errors.New("wire: unsupported API version")
)

// DefaultMaxRequestSize is Kafka's socket.request.max.bytes default (100 MiB).
const DefaultMaxRequestSize = 100 << 20

// minHeaderSize is the smallest request header: key, version, correlation id
// and the client id's length.
const minHeaderSize = 2 + 2 + 4 + 2

// Header is a decoded request header.
type Header struct {
	Key           int16
	Version       int16
	CorrelationID int32
	// ClientID is the client.id the client sent; empty when it sent null.
	ClientID string
}

// ReadFrame reads one size-prefixed frame from r into buf (grown when too
// small) and returns the frame without its prefix. A size above max or below
// the smallest header gives ErrFrameTooLarge or ErrMalformed; io errors are
// returned as they come (io.EOF at a frame boundary means the peer closed).
func ReadFrame(r io.Reader, buf []byte, max int32) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	switch {
	case n < 0 || n > max:
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrFrameTooLarge, uint32(n), max)
	case n < minHeaderSize:
		return nil, fmt.Errorf("%w: a %d-byte frame cannot hold a request header", ErrMalformed, n)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// ParseHeader decodes the fixed part of a request header (key, version,
// correlation id, client id) and returns it with the rest of the frame. It
// does not consume the flexible header's tagged fields, because whether a
// request is flexible depends on its key and version; ParseRequest does.
func ParseHeader(frame []byte) (Header, []byte, error) {
	if len(frame) < minHeaderSize {
		return Header{}, nil, fmt.Errorf("%w: %d-byte header", ErrMalformed, len(frame))
	}
	h := Header{
		Key:           int16(binary.BigEndian.Uint16(frame[0:])),
		Version:       int16(binary.BigEndian.Uint16(frame[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	l := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if l >= 0 {
		if int(l) > len(rest) {
			return h, nil, fmt.Errorf("%w: client id of %d bytes overruns the frame", ErrMalformed, l)
		}
		h.ClientID = string(rest[:l])
		rest = rest[l:]
	} else if l != -1 {
		return h, nil, fmt.Errorf("%w: client id length %d", ErrMalformed, l)
	}
	return h, rest, nil
}

// ParseRequest decodes a whole request frame: the header, the header's
// tagged fields when the request is flexible, and the body as a kmsg
// request at the header's version. supported reports whether the broker
// serves a key at a version. The header is returned even when the request
// fails, so that the caller can answer or log it.
//
// The body is decoded without copying: byte fields of the returned request
// (record batches) alias frame.
func ParseRequest(frame []byte, supported func(key, version int16) bool) (Header, kmsg.Request, error) {
	h, rest, err := ParseHeader(frame)
	if err != nil {
		return h, nil, err
	}
	req := kmsg.RequestForKey(h.Key)
	if req == nil {
		return h, nil, fmt.Errorf("%w: %d", ErrUnknownKey, h.Key)
	}
	if !supported(h.Key, h.Version) {
		if !supported(h.Key, -1) {
			return h, nil, fmt.Errorf("%w: %d (%s)", ErrUnknownKey, h.Key, kmsg.NameForKey(h.Key))
		}
		return h, nil, fmt.Errorf("%w: %s v%d", ErrUnsupportedVersion, kmsg.NameForKey(h.Key), h.Version)
	}
	req.SetVersion(h.Version)
	if req.IsFlexible() {
		rest, err = skipTags(rest)
		if err != nil {
			return h, nil, err
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d body: %v", ErrMalformed, kmsg.NameForKey(h.Key), h.Version, err)
	}
	return h, req, nil
}

// skipTags skips a tagged-field section: a count, then per field a tag, a
// size and that many bytes (all unsigned varints). The broker knows no
// header tags, so their contents are ignored, as Kafka ignores unknown tags.
func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: header tagged fields", ErrMalformed)
	}
	b = b[l:]
	for i := uint64(0); i < n; i++ {
		if _, l = binary.Uvarint(b); l <= 0 {
			return nil, fmt.Errorf("%w: header tag", ErrMalformed)
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || size > uint64(len(b)-l) {
			return nil, fmt.Errorf("%w: header tag size", ErrMalformed)
		}
		b = b[l+int(size):]
	}
	return b, nil
}

// AppendResponse appends a whole response frame to dst: the size prefix, the
// response header (correlation id, plus an empty tagged-field section when the
// response is flexible, except for ApiVersions, KIP-511) and the body at the
// response's version.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
