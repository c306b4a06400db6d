package txnlog

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"path/filepath"
	"testing"
)

// seedSegment is a valid segment holding records from..to.
func seedSegment(from, to int64) []byte {
	b := appendSegmentHeader(nil, from)
	for z := from; z <= to; z++ {
		b = appendRecord(b, z, payloadFor(z))
	}
	return b
}

// FuzzRecover feeds arbitrary bytes to Open as the only segment file. Open
// must not fail or panic, must keep exactly a prefix of complete records,
// and must leave the file as that prefix followed by zeros only.
func FuzzRecover(f *testing.F) {
	valid := seedSegment(1, 4)
	f.Add(valid)
	f.Add(valid[:len(valid)-7])                                        // torn payload
	f.Add(valid[:segmentHeaderLen+5])                                  // torn frame header
	f.Add(append(bytes.Clone(valid), make([]byte, 300)...))            // preallocated tail
	f.Add(append(seedSegment(9, 9), 0, 0, 0, 0, 1))                    // torn frame header ending in a non-zero byte
	f.Add(appendSegmentHeader(nil, 1))                                 // header only
	f.Add([]byte{})                                                    // empty file
	f.Add(append(appendSegmentHeader(nil, 1), 0xff, 0xff, 0xff, 0xff)) // huge length
	flipped := bytes.Clone(valid)
	flipped[len(flipped)-3] ^= 0x20
	f.Add(flipped)
	f.Add(append(appendSegmentHeader(nil, 5), appendRecord(nil, 4, []byte("older"))...)) // zxid below base

	f.Fuzz(func(t *testing.T, data []byte) {
		// Name the file after the header's base when it has one, so the
		// fuzzer can reach the records.
		base := int64(1)
		if len(data) >= segmentHeaderLen {
			if b := int64(binary.BigEndian.Uint64(data[8:16])); b > 0 {
				base = b
			}
		}
		dir := t.TempDir()
		path := filepath.Join(dir, segmentName(base))
		writeFile(t, path, data)
		opts := Options{Dir: dir, SegmentBytes: 1 << 20, NoSync: true, Logger: quiet}
		l, err := Open(opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()

		var prefix []byte
		err = l.Replay(0, func(z int64, p []byte) error {
			if prefix == nil {
				prefix = appendSegmentHeader(nil, base)
			}
			prefix = appendRecord(prefix, z, p)
			return nil
		})
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		st := l.Recovery()
		if !bytes.HasPrefix(data, prefix) {
			t.Fatalf("recovered records are not a prefix of the file")
		}
		if prefix == nil {
			if l.LastZxid() != 0 || len(segmentFiles(t, dir)) != 0 {
				t.Fatalf("no records recovered but LastZxid %d, files %v", l.LastZxid(), segmentFiles(t, dir))
			}
			return
		}
		if st.Records == 0 || st.Segments != 1 {
			t.Fatalf("Recovery() = %+v with records replayed", st)
		}
		if want := lastNonZeroLen(data[len(prefix):]); st.TruncatedBytes != want {
			t.Fatalf("TruncatedBytes = %d, want %d", st.TruncatedBytes, want)
		}
		after := readFile(t, path)
		if !bytes.HasPrefix(after, prefix) || lastNonZeroLen(after[len(prefix):]) != 0 {
			t.Fatalf("file after recovery is not the prefix plus zeros")
		}
	})
}

// FuzzParseSnapshot checks that snapshot verification never panics and
// accepts only what the writer's framing produces.
func FuzzParseSnapshot(f *testing.F) {
	good := func(zxid int64, body []byte) []byte {
		b := append(appendSnapshotHeader(nil, zxid), body...)
		b = binary.BigEndian.AppendUint64(b, uint64(len(body)))
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	f.Add(good(7, []byte("tree")), int64(7))
	f.Add(good(0, nil), int64(0))
	f.Add(good(7, []byte("tree"))[:20], int64(7))
	f.Add([]byte("RNSN"), int64(1))
	f.Fuzz(func(t *testing.T, data []byte, zxid int64) {
		body, err := parseSnapshot(data, zxid)
		if err != nil {
			return
		}
		if !bytes.Equal(good(zxid, body), data) {
			t.Fatalf("accepted bytes that the writer would not produce")
		}
		path := filepath.Join(t.TempDir(), "snap")
		writeFile(t, path, data)
		if err := verifySnapshotFile(path, zxid); err != nil {
			t.Fatalf("parseSnapshot accepted what verifySnapshotFile rejects: %v", err)
		}
	})
}
