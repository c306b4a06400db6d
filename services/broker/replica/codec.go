package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/runnel-io/runnel/sdk/storage"
)

// ErrCodec means a compressed batch's records could not be decompressed.
var ErrCodec = errors.New("replica: cannot decompress records")

// maxDecompressed bounds what one batch may expand to when the broker looks
// inside it, so that a small hostile batch cannot exhaust memory.
const maxDecompressed = 256 << 20

// xerialMagic opens snappy data framed by snappy-java (the Java client's
// snappy output): the magic, a version and a compatible version, then
// chunks of a 4-byte length and a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// decompress expands the records section of a batch compressed with codec
// (1 gzip, 2 snappy, 3 lz4, 4 zstd).
func decompress(codec int, data []byte) ([]byte, error) {
	var r io.Reader
	switch codec {
	case 1:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCodec, err)
		}
		defer zr.Close()
		r = zr
	case 2:
		return unsnappy(data)
	case 3:
		r = lz4.NewReader(bytes.NewReader(data))
	case 4:
		zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderMaxMemory(maxDecompressed), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCodec, err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w: unknown codec %d", ErrCodec, codec)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCodec, err)
	}
	if len(out) > maxDecompressed {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrCodec, maxDecompressed)
	}
	return out, nil
}

// unsnappy decodes a raw snappy block or snappy-java's framing.
func unsnappy(data []byte) ([]byte, error) {
	block := func(b []byte, dst []byte) ([]byte, error) {
		n, err := s2.DecodedLen(b)
		if err != nil || n > maxDecompressed || len(dst)+n > maxDecompressed {
			return nil, fmt.Errorf("%w: snappy block", ErrCodec)
		}
		out, err := s2.Decode(nil, b)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrCodec, err)
		}
		return append(dst, out...), nil
	}
	if !bytes.HasPrefix(data, xerialMagic) {
		return block(data, nil)
	}
	if len(data) < 16 {
		return nil, fmt.Errorf("%w: short snappy-java header", ErrCodec)
	}
	data = data[16:]
	var out []byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, fmt.Errorf("%w: snappy-java chunk length", ErrCodec)
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-4) {
			return nil, fmt.Errorf("%w: snappy-java chunk overruns", ErrCodec)
		}
		var err error
		if out, err = block(data[4:4+n], out); err != nil {
			return nil, err
		}
		data = data[4+n:]
	}
	return out, nil
}

// uncompressedView returns a copy of the batch with its records
// decompressed and the codec bits cleared, for reading records (its CRC is
// not valid and it is never stored).
func uncompressedView(batch []byte) ([]byte, error) {
	h, err := storage.ParseBatchHeader(batch)
	if err != nil {
		return nil, err
	}
	if int64(len(batch)) < h.Size() {
		return nil, storage.ErrShortBatch
	}
	if h.Compression() == 0 {
		return batch[:h.Size()], nil
	}
	recs, err := decompress(h.Compression(), batch[storage.BatchHeaderSize:h.Size()])
	if err != nil {
		return nil, err
	}
	out := make([]byte, storage.BatchHeaderSize, storage.BatchHeaderSize+len(recs))
	copy(out, batch[:storage.BatchHeaderSize])
	binary.BigEndian.PutUint32(out[8:], uint32(storage.BatchHeaderSize-storage.BatchLogOverhead+len(recs)))
	attrs := binary.BigEndian.Uint16(out[21:]) &^ storage.AttrCompressionMask
	binary.BigEndian.PutUint16(out[21:], attrs)
	return append(out, recs...), nil
}

// compress compresses a batch's records section with codec (1 gzip, 2
// snappy, 3 lz4, 4 zstd), for batches the broker rewrites (the log
// cleaner). Snappy is written as a raw block, which every client reads;
// lz4 as a frame, as Kafka's clients write it.
func compress(codec int, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch codec {
	case 1:
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(data); err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCodec, err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCodec, err)
		}
	case 2:
		return s2.EncodeSnappy(nil, data), nil
	case 3:
		zw := lz4.NewWriter(&buf)
		if _, err := zw.Write(data); err != nil {
			return nil, fmt.Errorf("%w: lz4: %v", ErrCodec, err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("%w: lz4: %v", ErrCodec, err)
		}
	case 4:
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCodec, err)
		}
		defer zw.Close()
		return zw.EncodeAll(data, nil), nil
	default:
		return nil, fmt.Errorf("%w: unknown codec %d", ErrCodec, codec)
	}
	return buf.Bytes(), nil
}
