package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchWith builds a fetch response of the given version whose two
// partitions carry a and b.
func fetchWith(version int16, a, b []byte) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	t := kmsg.NewFetchResponseTopic()
	t.Topic = "topic"
	for i, data := range [][]byte{a, b} {
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition = int32(i)
		p.HighWatermark = 100
		p.RecordBatches = data
		t.Partitions = append(t.Partitions, p)
	}
	resp.Topics = append(resp.Topics, t)
	return resp
}

// regionsFile writes a and b into a file and returns regions over them.
func regionsFile(t *testing.T, a, b []byte) []Region {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "seg.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	pad := []byte("leading bytes of the segment ")
	if _, err := f.Write(append(append(append([]byte{}, pad...), a...), b...)); err != nil {
		t.Fatal(err)
	}
	rel := func() {}
	return []Region{
		{Marker: MarkerFor(77, 0), File: f, Pos: int64(len(pad)), Len: int64(len(a)), Release: rel},
		{Marker: MarkerFor(77, 1), File: f, Pos: int64(len(pad) + len(a)), Len: int64(len(b)), Release: rel},
	}
}

func TestSpliceMatchesCopiedEncoding(t *testing.T) {
	a := bytes.Repeat([]byte("A"), 300) // 300+1 needs a two-byte uvarint
	b := []byte("bb")
	for _, v := range []int16{4, 11, 12} {
		regions := regionsFile(t, a, b)
		want := AppendResponse(nil, 5, fetchWith(v, a, b))
		frame := AppendResponse(nil, 5, fetchWith(v, regions[0].Marker, regions[1].Marker))
		pieces, total, err := splice(frame, regions, v >= 12)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		var got bytes.Buffer
		for _, p := range pieces {
			if p.region != nil {
				_, _ = io.Copy(&got, io.NewSectionReader(p.region.File, p.region.Pos, p.region.Len))
			} else {
				got.Write(p.b)
			}
		}
		if !bytes.Equal(got.Bytes(), want) || total != int64(len(want)) {
			t.Fatalf("v%d: spliced %d bytes (total %d), copied encoding %d", v, got.Len(), total, len(want))
		}
	}
	// A marker that is not in the frame is refused.
	regions := regionsFile(t, a, b)
	frame := AppendResponse(nil, 5, fetchWith(11, a, regions[1].Marker))
	if _, _, err := splice(frame, regions, false); err == nil {
		t.Fatal("a missing marker was accepted")
	}
}

// fileHandler answers fetches with two file regions.
type fileHandler struct {
	testHandler
	regions []Region
}

func (h *fileHandler) Handle(ctx context.Context, r *Request) {
	req, ok := r.Msg.(*kmsg.FetchRequest)
	if !ok {
		h.testHandler.Handle(ctx, r)
		return
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	*resp = *fetchWith(req.Version, h.regions[0].Marker, h.regions[1].Marker)
	r.RespondFile(resp, h.regions)
}

// TestSendfileOverTCP sends a fetch response with file regions over a real
// socket (sendfile) and compares it with the copied encoding.
func TestSendfileOverTCP(t *testing.T) {
	a := bytes.Repeat([]byte{1, 2, 3, 4}, 100_000) // larger than the socket buffer
	b := []byte("tail")
	var released atomic.Int32
	regions := regionsFile(t, a, b)
	for i := range regions {
		regions[i].Release = func() { released.Add(1) }
	}
	addr := startServer(t, &fileHandler{testHandler: testHandler{release: make(chan struct{})}, regions: regions})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, v := range []int16{11, 12} {
		fetch := kmsg.NewPtrFetchRequest()
		fetch.Version = v
		writeReq(t, c, fetch, int32(v))
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		want := AppendResponse(nil, int32(v), fetchWith(v, a, b))
		if !bytes.Equal(append(size[:], body...), want) {
			t.Fatalf("v%d: %d bytes received, %d expected, or contents differ", v, len(body)+4, len(want))
		}
	}
	// The writer releases regions after sending.
	deadline := time.Now().Add(2 * time.Second)
	for released.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := released.Load(); n != 4 {
		t.Fatalf("%d region releases, want 4", n)
	}
}
