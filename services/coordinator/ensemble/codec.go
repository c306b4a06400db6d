package ensemble

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrBadFrame means bytes from a peer (a forward-protocol frame) or from the
// raft log (a command envelope) could not be decoded.
var ErrBadFrame = errors.New("ensemble: malformed frame")

// A raft command (raft.Log.Data of a LogCommand entry) is an envelope
// around one marshalled znode.Txn:
//
//	version  1 byte (envelopeFormat)
//	origin   8 bytes: proposing member << 48 | that member's sequence
//	txn      the rest: znode.Txn.MarshalBinary
//
// The origin travels outside the Txn so that a member recognises its own
// proposals without depending on how the Txn encodes itself.
const (
	envelopeFormat     = 1
	envelopeHeaderSize = 9
)

func appendEnvelope(b []byte, origin uint64, txn []byte) []byte {
	b = append(b, envelopeFormat)
	b = binary.BigEndian.AppendUint64(b, origin)
	return append(b, txn...)
}

// parseEnvelope splits a raft command into its origin and Txn bytes (a
// sub-slice of b).
func parseEnvelope(b []byte) (origin uint64, txn []byte, err error) {
	if len(b) < envelopeHeaderSize {
		return 0, nil, fmt.Errorf("%w: command of %d bytes, shorter than its header", ErrBadFrame, len(b))
	}
	if b[0] != envelopeFormat {
		return 0, nil, fmt.Errorf("%w: unknown command format %d", ErrBadFrame, b[0])
	}
	return binary.BigEndian.Uint64(b[1:]), b[envelopeHeaderSize:], nil
}

// The forward protocol runs on a connection whose first byte is muxForward.
// The follower then sends a hello and frames; the leader answers with ack
// frames. Every frame is
//
//	length  4 bytes: the size of type and body
//	type    1 byte
//	body
//
// with these bodies:
//
//	frameHello  (follower)  version 1 byte, member id 2 bytes
//	frameBatch  (follower)  count 4 bytes, then count × (length 4 bytes, envelope)
//	frameLive   (follower)  count 4 bytes, then count × session id 8 bytes
//	frameAcks   (leader)    count 4 bytes, then count × (origin 8, index 8, code 1)
//
// Acks come in the order the envelopes were sent; the leader closes the
// connection after the first failure, so a follower knows that nothing sent
// after a failed envelope was committed through this stream.
const (
	frameHello byte = 1
	frameBatch byte = 2
	frameLive  byte = 3
	frameAcks  byte = 4

	forwardVersion = 1

	// maxFrame bounds a frame: a batch holds at most maxBatchBytes of
	// envelopes, each at most a little over jute's 1 MiB packet limit.
	maxFrame = 16 << 20
	// maxBatchBytes is where a follower stops adding envelopes to a batch.
	maxBatchBytes = 1 << 20
)

// Ack codes.
const (
	ackOK        byte = 0
	ackNotLeader byte = 1
	ackFailed    byte = 2
)

// ack reports the fate of one forwarded envelope.
type ack struct {
	origin uint64
	index  uint64
	code   byte
}

// frameWriter builds frames in a buffer so a whole frame is written at once.
type frameWriter struct {
	w   *bufio.Writer
	buf []byte
}

func (fw *frameWriter) begin(typ byte) {
	fw.buf = append(fw.buf[:0], 0, 0, 0, 0, typ)
}

func (fw *frameWriter) finish() error {
	binary.BigEndian.PutUint32(fw.buf, uint32(len(fw.buf)-4))
	_, err := fw.w.Write(fw.buf)
	return err
}

func (fw *frameWriter) hello(id int) error {
	fw.begin(frameHello)
	fw.buf = append(fw.buf, forwardVersion)
	fw.buf = binary.BigEndian.AppendUint16(fw.buf, uint16(id))
	return fw.finish()
}

func (fw *frameWriter) batch(envs [][]byte) error {
	fw.begin(frameBatch)
	fw.buf = binary.BigEndian.AppendUint32(fw.buf, uint32(len(envs)))
	for _, e := range envs {
		fw.buf = binary.BigEndian.AppendUint32(fw.buf, uint32(len(e)))
		fw.buf = append(fw.buf, e...)
	}
	return fw.finish()
}

func (fw *frameWriter) live(ids []int64) error {
	fw.begin(frameLive)
	fw.buf = binary.BigEndian.AppendUint32(fw.buf, uint32(len(ids)))
	for _, id := range ids {
		fw.buf = binary.BigEndian.AppendUint64(fw.buf, uint64(id))
	}
	return fw.finish()
}

func (fw *frameWriter) acks(as []ack) error {
	fw.begin(frameAcks)
	fw.buf = binary.BigEndian.AppendUint32(fw.buf, uint32(len(as)))
	for _, a := range as {
		fw.buf = binary.BigEndian.AppendUint64(fw.buf, a.origin)
		fw.buf = binary.BigEndian.AppendUint64(fw.buf, a.index)
		fw.buf = append(fw.buf, a.code)
	}
	return fw.finish()
}

// readFrame reads one frame into buf (grown as needed) and returns its type
// and body.
func readFrame(r io.Reader, buf []byte) (typ byte, body []byte, _ []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 1 || n > maxFrame {
		return 0, nil, buf, fmt.Errorf("%w: frame length %d", ErrBadFrame, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, buf, fmt.Errorf("read frame body: %w", err)
	}
	return buf[0], buf[1:], buf, nil
}

func parseHello(b []byte) (id int, err error) {
	if len(b) != 3 {
		return 0, fmt.Errorf("%w: hello of %d bytes", ErrBadFrame, len(b))
	}
	if b[0] != forwardVersion {
		return 0, fmt.Errorf("%w: forward protocol version %d, want %d", ErrBadFrame, b[0], forwardVersion)
	}
	return int(binary.BigEndian.Uint16(b[1:])), nil
}

// parseBatch returns the envelopes of a batch body as sub-slices of b.
func parseBatch(b []byte, into [][]byte) ([][]byte, error) {
	n, b, err := cutCount(b, 4+envelopeHeaderSize)
	if err != nil {
		return into, err
	}
	into = into[:0]
	for range n {
		if len(b) < 4 {
			return into, fmt.Errorf("%w: batch cut short", ErrBadFrame)
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return into, fmt.Errorf("%w: envelope of %d bytes with %d left", ErrBadFrame, l, len(b))
		}
		if _, _, err := parseEnvelope(b[:l]); err != nil {
			return into, err
		}
		into = append(into, b[:l:l])
		b = b[l:]
	}
	if len(b) != 0 {
		return into, fmt.Errorf("%w: %d bytes after the last envelope", ErrBadFrame, len(b))
	}
	return into, nil
}

func parseLive(b []byte) ([]int64, error) {
	n, b, err := cutCount(b, 8)
	if err != nil {
		return nil, err
	}
	if len(b) != n*8 {
		return nil, fmt.Errorf("%w: %d session ids in %d bytes", ErrBadFrame, n, len(b))
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(binary.BigEndian.Uint64(b[i*8:]))
	}
	return ids, nil
}

func parseAcks(b []byte, into []ack) ([]ack, error) {
	const size = 17
	n, b, err := cutCount(b, size)
	if err != nil {
		return into, err
	}
	if len(b) != n*size {
		return into, fmt.Errorf("%w: %d acks in %d bytes", ErrBadFrame, n, len(b))
	}
	into = into[:0]
	for i := range n {
		p := b[i*size:]
		into = append(into, ack{origin: binary.BigEndian.Uint64(p), index: binary.BigEndian.Uint64(p[8:]), code: p[16]})
	}
	return into, nil
}

// cutCount reads a 4-byte element count and checks that the rest of b could
// hold that many elements of at least minSize bytes, so a hostile count
// cannot make the caller allocate more than the frame itself.
func cutCount(b []byte, minSize int) (int, []byte, error) {
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("%w: count cut short", ErrBadFrame)
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n)*uint64(minSize) > uint64(len(b)) {
		return 0, nil, fmt.Errorf("%w: %d elements cannot fit in %d bytes", ErrBadFrame, n, len(b))
	}
	return int(n), b, nil
}
