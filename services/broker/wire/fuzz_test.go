package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzParseRequest feeds arbitrary frames to the request decoder: it must
// never panic, and whatever it accepts must re-encode to a request the
// decoder accepts again.
func FuzzParseRequest(f *testing.F) {
	topic := "t"
	seeds := []kmsg.Request{
		func() kmsg.Request { r := kmsg.NewPtrApiVersionsRequest(); r.Version = 3; return r }(),
		func() kmsg.Request { r := kmsg.NewPtrApiVersionsRequest(); r.Version = 0; return r }(),
		func() kmsg.Request {
			r := kmsg.NewPtrMetadataRequest()
			r.Version = 9
			r.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
			return r
		}(),
		func() kmsg.Request {
			r := kmsg.NewPtrProduceRequest()
			r.Version = 9
			r.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: []byte{1, 2}}}}}
			return r
		}(),
		func() kmsg.Request {
			r := kmsg.NewPtrFetchRequest()
			r.Version = 11
			r.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{FetchOffset: 5}}}}
			return r
		}(),
	}
	id := "fuzz"
	for _, s := range seeds {
		f.Add(encode(s, 1, &id))
		f.Add(encode(s, 2, nil))
	}
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 7, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, req, err := ParseRequest(frame, all)
		if err != nil {
			return
		}
		again := encode(req, h.CorrelationID, nil)
		h2, req2, err := ParseRequest(again, all)
		if err != nil {
			t.Fatalf("re-encoded %s v%d does not parse: %v", kmsg.NameForKey(h.Key), h.Version, err)
		}
		if h2.Key != h.Key || h2.Version != h.Version || !bytes.Equal(req2.AppendTo(nil), req.AppendTo(nil)) {
			t.Fatal("round trip changed the request")
		}
	})
}

// FuzzReadFrame checks the framing against arbitrary streams and limits.
func FuzzReadFrame(f *testing.F) {
	f.Add(binary.BigEndian.AppendUint32(nil, 10), int32(100))
	f.Add(append(binary.BigEndian.AppendUint32(nil, 12), make([]byte, 12)...), int32(12))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, int32(1<<20))
	f.Fuzz(func(t *testing.T, stream []byte, max int32) {
		got, err := ReadFrame(bytes.NewReader(stream), nil, max)
		if err != nil {
			return
		}
		if int32(len(got)) > max || len(got) < minHeaderSize || !bytes.Equal(got, stream[4:4+len(got)]) {
			t.Fatalf("accepted a %d-byte frame with limit %d", len(got), max)
		}
	})
}
