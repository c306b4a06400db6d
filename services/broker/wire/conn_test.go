package wire

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testHandler answers Fetch late (after release is closed) and everything
// else at once; Produce with acks=0 gets no answer.
type testHandler struct{ release chan struct{} }

func (h *testHandler) Supports(key, version int16) bool {
	return key == kmsg.Fetch.Int16() || key == kmsg.Metadata.Int16() || key == kmsg.Produce.Int16() || key == kmsg.ApiVersions.Int16() && version <= 3
}

func (h *testHandler) Versions() []kmsg.ApiVersionsResponseApiKey {
	return []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 3}}
}

func (h *testHandler) Handle(ctx context.Context, r *Request) {
	switch req := r.Msg.(type) {
	case *kmsg.FetchRequest:
		go func() {
			select {
			case <-h.release:
			case <-ctx.Done():
			}
			r.Respond(req.ResponseKind())
		}()
	case *kmsg.ProduceRequest:
		if req.Acks == 0 {
			r.Respond(nil)
			return
		}
		r.Respond(req.ResponseKind())
	default:
		r.Respond(r.Msg.ResponseKind())
	}
}

func startServer(t *testing.T, h Handler) string {
	t.Helper()
	s, err := New(Params{Config: Config{Listen: "127.0.0.1:0", MaxRequestSize: 1 << 16}, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr().String()
}

func writeReq(t *testing.T, c net.Conn, req kmsg.Request, corr int32) {
	t.Helper()
	f := encode(req, corr, nil)
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(f))), f...)); err != nil {
		t.Fatal(err)
	}
}

func readCorr(t *testing.T, c net.Conn) int32 {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return int32(binary.BigEndian.Uint32(b))
}

// TestResponsesInRequestOrder pipelines a fetch that waits, an acks=0
// produce and a metadata request: the metadata answer waits for the fetch's,
// and the produce gets none.
func TestResponsesInRequestOrder(t *testing.T) {
	h := &testHandler{release: make(chan struct{})}
	addr := startServer(t, h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	writeReq(t, c, fetch, 1)
	prod := kmsg.NewPtrProduceRequest()
	prod.Version = 7
	prod.Acks = 0
	writeReq(t, c, prod, 2)
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9
	writeReq(t, c, meta, 3)
	// Nothing may arrive while the fetch waits.
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var one [1]byte
	if n, _ := c.Read(one[:]); n != 0 {
		t.Fatal("a response overtook the waiting fetch")
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	close(h.release)
	if got := readCorr(t, c); got != 1 {
		t.Fatalf("first response %d, want the fetch's (1)", got)
	}
	if got := readCorr(t, c); got != 3 {
		t.Fatalf("second response %d, want the metadata's (3); acks=0 gets none", got)
	}
}

// TestBadFrameClosesOnlyItsConnection: an oversize frame closes its
// connection while another connection keeps working.
func TestBadFrameClosesOnlyItsConnection(t *testing.T) {
	addr := startServer(t, &testHandler{release: make(chan struct{})})
	good, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	bad, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_ = bad.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = bad.Write(binary.BigEndian.AppendUint32(nil, 1<<20))
	if _, err := bad.Read(make([]byte, 1)); err == nil {
		t.Fatal("the oversize frame's connection is still open")
	}
	_ = good.SetDeadline(time.Now().Add(5 * time.Second))
	writeReq(t, good, kmsg.NewPtrMetadataRequest(), 9)
	if got := readCorr(t, good); got != 9 {
		t.Fatalf("good connection: response %d", got)
	}
}
