package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func all(key, version int16) bool {
	return kmsg.RequestForKey(key) != nil && (version == -1 || version <= kmsg.RequestForKey(key).MaxVersion())
}

// encode builds a request frame the way clients do (without the size).
func encode(req kmsg.Request, corr int32, clientID *string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func TestParseRequestRoundTrip(t *testing.T) {
	id := "client-1"
	topic := "t"
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9 // flexible: header v2 with tags
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	prod := kmsg.NewPtrProduceRequest()
	prod.Version = 7
	prod.Acks = -1
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 2, Records: []byte{1, 2, 3}}}}}
	for _, req := range []kmsg.Request{meta, prod} {
		for _, cid := range []*string{&id, nil} {
			h, got, err := ParseRequest(encode(req, 42, cid), all)
			if err != nil {
				t.Fatalf("%T: %v", req, err)
			}
			if h.Key != req.Key() || h.Version != req.GetVersion() || h.CorrelationID != 42 {
				t.Fatalf("header %+v", h)
			}
			if (cid == nil && h.ClientID != "") || (cid != nil && h.ClientID != *cid) {
				t.Fatalf("client id %q", h.ClientID)
			}
			if !bytes.Equal(got.AppendTo(nil), req.AppendTo(nil)) {
				t.Fatalf("%T body differs after a round trip", req)
			}
		}
	}
}

func TestParseRequestHeaderTags(t *testing.T) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	b := encode(req, 1, nil)
	// Replace the empty tag section with one unknown tag of 2 bytes.
	i := 10
	withTag := append(append(append([]byte{}, b[:i]...), 1, 5, 2, 0xaa, 0xbb), b[i+1:]...)
	if _, _, err := ParseRequest(withTag, all); err != nil {
		t.Fatalf("unknown header tag: %v", err)
	}
	bad := append(append([]byte{}, b[:i]...), 1, 5, 9)
	if _, _, err := ParseRequest(bad, all); !errors.Is(err, ErrMalformed) {
		t.Fatalf("tag overrunning the frame: %v", err)
	}
}

func TestParseRequestErrors(t *testing.T) {
	none := func(int16, int16) bool { return false }
	onlyV0 := func(k, v int16) bool { return v <= 0 }
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 4
	frame := encode(req, 1, nil)
	cases := []struct {
		name  string
		frame []byte
		sup   func(int16, int16) bool
		want  error
	}{
		{"short", []byte{0, 3, 0}, all, ErrMalformed},
		{"client id overrun", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 9, 'a'}, all, ErrMalformed},
		{"bad client id length", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0x80, 0}, all, ErrMalformed},
		{"unknown key", []byte{0x7f, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, all, ErrUnknownKey},
		{"not served", frame, none, ErrUnknownKey},
		{"unsupported version", frame, onlyV0, ErrUnsupportedVersion},
		{"truncated body", frame[:len(frame)-1], all, ErrMalformed},
	}
	for _, c := range cases {
		if _, _, err := ParseRequest(c.frame, c.sup); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestReadFrame(t *testing.T) {
	frame := func(n uint32, body []byte) io.Reader {
		return bytes.NewReader(append(binary.BigEndian.AppendUint32(nil, n), body...))
	}
	body := bytes.Repeat([]byte{7}, 20)
	got, err := ReadFrame(frame(20, body), nil, 100)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("%v %v", got, err)
	}
	// The buffer is reused when large enough.
	buf := make([]byte, 0, 64)
	got, _ = ReadFrame(frame(20, body), buf, 100)
	if &got[0] != &buf[:1][0] {
		t.Fatal("buffer not reused")
	}
	if _, err := ReadFrame(frame(101, nil), nil, 100); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if _, err := ReadFrame(frame(0xfffffff0, nil), nil, 100); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("negative: %v", err)
	}
	if _, err := ReadFrame(frame(3, []byte{1, 2, 3}), nil, 100); !errors.Is(err, ErrMalformed) {
		t.Fatalf("tiny: %v", err)
	}
	if _, err := ReadFrame(frame(20, body[:5]), nil, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("torn: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(nil), nil, 100); !errors.Is(err, io.EOF) {
		t.Fatalf("clean EOF: %v", err)
	}
}

func TestAppendResponseHeaders(t *testing.T) {
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3)
	b := AppendResponse(nil, 9, av)
	if int(binary.BigEndian.Uint32(b)) != len(b)-4 || binary.BigEndian.Uint32(b[4:]) != 9 {
		t.Fatal("size or correlation id")
	}
	// ApiVersions never carries the flexible header's tag byte: its body
	// (error code first) follows the correlation id directly.
	if !bytes.Equal(b[8:], av.AppendTo(nil)) {
		t.Fatal("ApiVersions v3 response has a flexible header")
	}
	md := kmsg.NewPtrMetadataResponse()
	md.SetVersion(9)
	b = AppendResponse(nil, 9, md)
	if b[8] != 0 || !bytes.Equal(b[9:], md.AppendTo(nil)) {
		t.Fatal("flexible Metadata response lacks the header tag byte")
	}
	md.SetVersion(8)
	if b = AppendResponse(nil, 9, md); !bytes.Equal(b[8:], md.AppendTo(nil)) {
		t.Fatal("non-flexible Metadata response has a tag byte")
	}
}
