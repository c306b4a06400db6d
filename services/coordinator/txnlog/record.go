package txnlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	// MaxPayload bounds a record's payload. Append rejects larger payloads, and
	// recovery treats a larger length as corruption rather than trusting a
	// damaged length field with a huge allocation.
	MaxPayload = 16 << 20

	segmentHeaderLen = 16
	frameHeaderLen   = 16
	segmentVersion   = 1
)

var (
	segmentMagic = [4]byte{'R', 'N', 'T', 'X'}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// errCleanEnd is the reader's signal that the data ended where a segment may
// legitimately end: at the end of the file or at an all-zero frame.
var errCleanEnd = errors.New("clean end")

// appendSegmentHeader appends the header of the segment whose first record
// has zxid base.
func appendSegmentHeader(dst []byte, base int64) []byte {
	dst = append(dst, segmentMagic[:]...)
	dst = binary.BigEndian.AppendUint32(dst, segmentVersion)
	return binary.BigEndian.AppendUint64(dst, uint64(base))
}

// parseSegmentHeader checks a segment header against the base its file name
// claims.
func parseSegmentHeader(h []byte, base int64) error {
	if len(h) < segmentHeaderLen {
		return errors.New("short segment header")
	}
	if [4]byte(h[0:4]) != segmentMagic {
		return fmt.Errorf("bad segment magic %q", h[0:4])
	}
	if v := binary.BigEndian.Uint32(h[4:8]); v != segmentVersion {
		return fmt.Errorf("unsupported segment version %d", v)
	}
	if b := int64(binary.BigEndian.Uint64(h[8:16])); b != base {
		return fmt.Errorf("header base zxid %#x does not match file name %#x", b, base)
	}
	return nil
}

// appendRecord appends one framed record to dst. The CRC is computed over
// the bytes already in place, so framing allocates nothing beyond dst.
func appendRecord(dst []byte, zxid int64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // length and crc, filled below
	dst = binary.BigEndian.AppendUint64(dst, uint64(zxid))
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// recordReader decodes the records of one segment after its header. It is the
// only decoder of segment bytes, shared by recovery and Replay.
type recordReader struct {
	br    *bufio.Reader
	off   int64 // offset of the next frame in the file
	limit int64 // stop (cleanly) at this offset; -1 for the end of the file
	prev  int64 // zxid of the previous record, 0 before the first
	want  int64 // when non-zero, the zxid the next record must have
	buf   []byte
	hdr   [frameHeaderLen]byte
}

func newRecordReader(r io.Reader, off, limit, prev int64) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, 1<<20), off: off, limit: limit, prev: prev}
}

// next returns the next record. The payload aliases an internal buffer that
// the following call overwrites. At a clean end it returns errCleanEnd; for a
// torn or corrupt record it returns an error describing it and leaves off at
// the start of that record, so off is always the end of the valid prefix.
func (r *recordReader) next() (int64, []byte, error) {
	if r.limit >= 0 && r.off >= r.limit {
		return 0, nil, errCleanEnd
	}
	n, err := io.ReadFull(r.br, r.hdr[:])
	if err == io.EOF {
		return 0, nil, errCleanEnd
	}
	if err != nil {
		if allZero(r.hdr[:n]) && err == io.ErrUnexpectedEOF {
			// A short run of zeros at the very end: a file whose size is not a
			// multiple of the frame size, still only zero fill.
			return 0, nil, errCleanEnd
		}
		return 0, nil, fmt.Errorf("torn frame header (%d of %d bytes): %w", n, frameHeaderLen, err)
	}
	if allZero(r.hdr[:]) {
		return 0, nil, errCleanEnd
	}
	length := binary.BigEndian.Uint32(r.hdr[0:4])
	crc := binary.BigEndian.Uint32(r.hdr[4:8])
	zxid := int64(binary.BigEndian.Uint64(r.hdr[8:16]))
	if length > MaxPayload {
		return 0, nil, fmt.Errorf("record length %d exceeds the %d-byte bound", length, MaxPayload)
	}
	if r.limit >= 0 && r.off+frameHeaderLen+int64(length) > r.limit {
		return 0, nil, fmt.Errorf("record of %d bytes runs past the end of the data", length)
	}
	if cap(r.buf) < int(length) {
		r.buf = make([]byte, length)
	}
	payload := r.buf[:length]
	if n, err := io.ReadFull(r.br, payload); err != nil {
		return 0, nil, fmt.Errorf("torn record (%d of %d payload bytes): %w", n, length, err)
	}
	got := crc32.Update(crc32.Update(0, castagnoli, r.hdr[8:16]), castagnoli, payload)
	if got != crc {
		return 0, nil, fmt.Errorf("record checksum %#08x, want %#08x", got, crc)
	}
	if zxid <= r.prev {
		return 0, nil, fmt.Errorf("record zxid %#x not greater than the previous %#x", zxid, r.prev)
	}
	if r.want != 0 && zxid != r.want {
		return 0, nil, fmt.Errorf("first record zxid %#x does not match the segment's base %#x", zxid, r.want)
	}
	r.want = 0
	r.prev = zxid
	r.off += frameHeaderLen + int64(length)
	return zxid, payload, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
