package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Region is file data to send in place of a placeholder in a response, so
// that record batches travel from the page cache to the socket without
// passing through user space (sendfile).
//
// The handler puts Marker into the response where the data belongs (a
// fetch partition's record batches); the writer encodes the response,
// finds the marker, rewrites the length before it for Len bytes, and sends
// the file range there. Marker must be unique in the encoded response and
// at least 16 bytes; MarkerFor makes such markers.
type Region struct {
	Marker []byte
	File   *os.File
	Pos    int64
	Len    int64
	// Release is called once the region was sent or dropped.
	Release func()
}

// MarkerFor returns the placeholder for region i of a response whose
// random identifier is id.
func MarkerFor(id uint64, i int) []byte {
	m := make([]byte, 0, 16)
	m = binary.BigEndian.AppendUint64(m, id)
	m = binary.BigEndian.AppendUint32(m, uint32(i))
	return append(m, 'R', 'N', 'Z', 'C')
}

// RespondFile answers with resp, in which each region's marker stands for
// the region's file data.
func (r *Request) RespondFile(resp kmsg.Response, regions []Region) {
	r.regions = regions
	r.Respond(resp)
}

func releaseAll(regions []Region) {
	for _, g := range regions {
		if g.Release != nil {
			g.Release()
		}
	}
}

// piece is a part of a spliced response: bytes, or a file region.
type piece struct {
	b      []byte
	region *Region
}

// splice turns an encoded response frame whose regions are still markers
// into pieces: the frame's bytes with each marker (and its length prefix)
// replaced by a new length prefix and the region. flexible tells how the
// prefix is encoded (compact: uvarint of length+1; otherwise int32).
func splice(frame []byte, regions []Region, flexible bool) ([]piece, int64, error) {
	type hit struct {
		at, prefixLen int
		g             *Region
	}
	hits := make([]hit, 0, len(regions))
	for i := range regions {
		g := &regions[i]
		at := bytes.Index(frame, g.Marker)
		if at < 0 || bytes.Contains(frame[at+1:], g.Marker) {
			return nil, 0, errors.New("wire: region marker missing or not unique")
		}
		var want []byte
		if flexible {
			want = binary.AppendUvarint(nil, uint64(len(g.Marker)+1))
		} else {
			want = binary.BigEndian.AppendUint32(nil, uint32(len(g.Marker)))
		}
		if at < len(want)+4 || !bytes.Equal(frame[at-len(want):at], want) {
			return nil, 0, errors.New("wire: region marker without its length prefix")
		}
		hits = append(hits, hit{at: at, prefixLen: len(want), g: g})
	}
	// Order by position.
	for i := 1; i < len(hits); i++ {
		for j := i; j > 0 && hits[j].at < hits[j-1].at; j-- {
			hits[j], hits[j-1] = hits[j-1], hits[j]
		}
	}
	var pieces []piece
	total := int64(len(frame))
	prev := 4 // after the size prefix, rewritten below
	for _, h := range hits {
		head := frame[prev : h.at-h.prefixLen]
		var prefix []byte
		if flexible {
			prefix = binary.AppendUvarint(nil, uint64(h.g.Len+1))
		} else {
			prefix = binary.BigEndian.AppendUint32(nil, uint32(h.g.Len))
		}
		pieces = append(pieces, piece{b: head}, piece{b: prefix}, piece{region: h.g})
		total += int64(len(prefix)) + h.g.Len - int64(h.prefixLen) - int64(len(h.g.Marker))
		prev = h.at + len(h.g.Marker)
	}
	pieces = append(pieces, piece{b: frame[prev:]})
	size := total - 4
	if size > 1<<31-1 {
		return nil, 0, errors.New("wire: spliced response too large")
	}
	sizeBytes := binary.BigEndian.AppendUint32(nil, uint32(size))
	return append([]piece{{b: sizeBytes}}, pieces...), total, nil
}

// sendTimeout bounds one region's transfer, so that a stalled client
// cannot pin a segment (and hold up retention) indefinitely.
const sendTimeout = 30 * time.Second

// writeSpliced writes the pieces, flushing the buffered writer before each
// region and sending the region with sendfile where the connection allows.
func writeSpliced(nc net.Conn, bw *bufio.Writer, pieces []piece) error {
	for _, p := range pieces {
		if p.region == nil {
			if _, err := bw.Write(p.b); err != nil {
				return err
			}
			continue
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := sendRegion(nc, p.region); err != nil {
			return err
		}
	}
	return nil
}

func sendRegion(nc net.Conn, g *Region) error {
	if g.Len == 0 {
		return nil
	}
	_ = nc.SetWriteDeadline(time.Now().Add(sendTimeout))
	defer nc.SetWriteDeadline(time.Time{})
	if tc, ok := nc.(*net.TCPConn); ok {
		if handled, err := sendfile(tc, g); handled {
			return err
		}
	}
	_, err := io.Copy(nc, io.NewSectionReader(g.File, g.Pos, g.Len))
	return err
}

// sendfile sends the region with sendfile(2) at an explicit offset (the
// file's shared seek position is never used). handled is false when
// sendfile is not available, so the caller copies instead.
func sendfile(tc *net.TCPConn, g *Region) (handled bool, err error) {
	src, err := g.File.SyscallConn()
	if err != nil {
		return false, nil
	}
	dst, err := tc.SyscallConn()
	if err != nil {
		return false, nil
	}
	var srcFD int
	if err := src.Control(func(fd uintptr) { srcFD = int(fd) }); err != nil {
		return false, nil
	}
	off, left := g.Pos, g.Len
	var serr error
	werr := dst.Write(func(fd uintptr) bool {
		for left > 0 {
			n, err := syscall.Sendfile(int(fd), srcFD, &off, int(min(left, 1<<30)))
			if n > 0 {
				left -= int64(n)
			}
			switch {
			case err == syscall.EAGAIN:
				return false // wait until the socket is writable
			case err == syscall.EINTR:
				continue
			case err != nil:
				serr = err
				return true
			case n == 0:
				serr = io.ErrUnexpectedEOF // the file is shorter than the region
				return true
			}
		}
		return true
	})
	if errors.Is(serr, syscall.EINVAL) || errors.Is(serr, syscall.ENOSYS) {
		if left == g.Len {
			return false, nil // nothing sent: let the caller copy
		}
	}
	if serr != nil {
		return true, fmt.Errorf("wire: sendfile: %w", serr)
	}
	if werr != nil {
		return true, fmt.Errorf("wire: sendfile: %w", werr)
	}
	return true, nil
}
