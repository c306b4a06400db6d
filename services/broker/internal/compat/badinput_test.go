package compat

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// rawConn is a hand-driven Kafka connection.
type rawConn struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c}
}

// send writes a request with header v1 (or v2 when flexible).
func (r *rawConn) send(corr int32, req kmsg.Request) {
	r.t.Helper()
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	r.write(b)
}

func (r *rawConn) write(frame []byte) {
	r.t.Helper()
	out := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
	if _, err := r.c.Write(append(out, frame...)); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one response frame and returns its correlation id and the
// rest (for flexible responses other than ApiVersions, the header's tag
// byte is still in front).
func (r *rawConn) recv() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.c, b); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:], nil
}

// expectClosed checks that the broker closed the connection.
func (r *rawConn) expectClosed(what string) {
	r.t.Helper()
	_, _, err := r.recv()
	if err == nil {
		r.t.Fatalf("%s: the broker answered instead of closing the connection", what)
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		r.t.Fatalf("%s: %v, want the connection closed", what, err)
	}
}

// TestBadInput sends malformed frames, oversize requests, unknown keys and
// versions, corrupt batches and invalid topic names. Each gets the
// protocol's answer (an error code, or a closed connection where the
// protocol has no error to send), and a well-behaved client keeps working
// throughout.
func TestBadInput(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{"socket.request.max.bytes=1048576"}})
	ctx := brokertest.Context(t, time.Minute)
	good := c.client(t, kgo.DefaultProduceTopic("good"), kgo.AllowAutoTopicCreation())
	stillWorks := func(step string) {
		t.Helper()
		if err := good.ProduceSync(ctx, &kgo.Record{Value: []byte(step)}).FirstErr(); err != nil {
			t.Fatalf("after %s, a good client fails: %v", step, err)
		}
	}
	stillWorks("start")

	t.Run("frame too small for a header", func(t *testing.T) {
		r := dialRaw(t, c.broker.Addr)
		r.write([]byte{0, 18, 0})
		r.expectClosed("3-byte frame")
		stillWorks("short frame")
	})
	t.Run("oversize frame", func(t *testing.T) {
		r := dialRaw(t, c.broker.Addr)
		_, _ = r.c.Write(binary.BigEndian.AppendUint32(nil, 2<<20)) // 2 MiB announced, 1 MiB allowed
		r.expectClosed("oversize frame")
		stillWorks("oversize frame")
	})
	t.Run("negative size", func(t *testing.T) {
		r := dialRaw(t, c.broker.Addr)
		_, _ = r.c.Write([]byte{0xff, 0xff, 0xff, 0xf0})
		r.expectClosed("negative size")
	})
	t.Run("garbage body", func(t *testing.T) {
		r := dialRaw(t, c.broker.Addr)
		frame := []byte{0, 3, 0, 1, 0, 0, 0, 9, 0, 0} // Metadata v1, no client id
		frame = append(frame, 0x7f, 0xff, 0xff, 0xff) // a topic array of 2^31-1
		r.write(frame)
		r.expectClosed("garbage Metadata body")
		stillWorks("garbage body")
	})
	t.Run("unknown API key", func(t *testing.T) {
		r := dialRaw(t, c.broker.Addr)
		r.write([]byte{0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff}) // key 999
		r.expectClosed("key 999")
		r = dialRaw(t, c.broker.Addr)
		r.send(1, &kmsg.DescribeACLsRequest{Version: 0}) // known to Kafka, not served here
		r.expectClosed("DescribeACLs")
		stillWorks("unknown key")
	})
	t.Run("unsupported version", func(t *testing.T) {
		// ApiVersions at an unknown version: answered at v0 with
		// UNSUPPORTED_VERSION and the ranges.
		r := dialRaw(t, c.broker.Addr)
		r.write([]byte{0, 18, 0, 99, 0, 0, 0, 7, 0xff, 0xff})
		corr, body, err := r.recv()
		if err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		if corr != 7 || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("corr %d error %d, %d keys", corr, resp.ErrorCode, len(resp.ApiKeys))
		}
		// Produce v2 (message sets) is not served: the connection closes.
		r = dialRaw(t, c.broker.Addr)
		r.send(1, &kmsg.ProduceRequest{Version: 2, Acks: 1, TimeoutMillis: 1000})
		r.expectClosed("Produce v2")
		stillWorks("unsupported version")
	})
	t.Run("wrong CRC", func(t *testing.T) {
		if code := produceRaw(t, c.broker.Addr, "crc-topic", validBatch(t)); code != 0 {
			t.Fatalf("a valid hand-made batch: error %d", code)
		}
		batch := validBatch(t)
		batch[len(batch)-1] ^= 0xff // a flipped bit in the last record
		code := produceRaw(t, c.broker.Addr, "crc-topic", batch)
		if code != kerr.CorruptMessage.Code {
			t.Fatalf("bad CRC: error %d, want CORRUPT_MESSAGE", code)
		}
		stillWorks("wrong CRC")
	})
	t.Run("truncated batch", func(t *testing.T) {
		batch := validBatch(t)
		if code := produceRaw(t, c.broker.Addr, "crc-topic", batch[:len(batch)-3]); code != kerr.CorruptMessage.Code {
			t.Fatalf("truncated batch: error %d, want CORRUPT_MESSAGE", code)
		}
	})
	t.Run("bad magic", func(t *testing.T) {
		batch := validBatch(t)
		batch[16] = 1
		if code := produceRaw(t, c.broker.Addr, "crc-topic", batch); code != kerr.UnsupportedForMessageFormat.Code {
			t.Fatalf("magic 1: error %d", code)
		}
	})
	t.Run("invalid acks", func(t *testing.T) {
		r := dialRaw(t, c.broker.Addr)
		req := produceReq("crc-topic", validBatch(t))
		req.Acks = 2
		r.send(3, req)
		resp := readProduce(t, r, req.Version)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRequiredAcks.Code {
			t.Fatalf("acks=2: error %d", code)
		}
	})
	t.Run("invalid topic names", func(t *testing.T) {
		adm := kmsg.NewPtrCreateTopicsRequest()
		for _, name := range []string{"", ".", "..", "has space", "slash/topic", strings.Repeat("x", 250)} {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
			adm.Topics = append(adm.Topics, rt)
		}
		resp, err := adm.RequestWith(ctx, good)
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range resp.Topics {
			if rt.ErrorCode != kerr.InvalidTopicException.Code {
				t.Errorf("CreateTopics %q: error %d, want INVALID_TOPIC_EXCEPTION", rt.Topic, rt.ErrorCode)
			}
		}
		meta := kmsg.NewPtrMetadataRequest()
		bad := "bad/name"
		meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &bad}}
		meta.AllowAutoTopicCreation = true
		mresp, err := meta.RequestWith(ctx, good)
		if err != nil {
			t.Fatal(err)
		}
		if mresp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
			t.Fatalf("Metadata %q: error %d", bad, mresp.Topics[0].ErrorCode)
		}
		if code := produceRaw(t, c.broker.Addr, "bad name", validBatch(t)); code != kerr.InvalidTopicException.Code {
			t.Fatalf("produce to an invalid name: error %d", code)
		}
		// '.' and '_' collide.
		ok := kmsg.NewPtrCreateTopicsRequest()
		for _, name := range []string{"metrics.a", "metrics_a"} {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
			ok.Topics = []kmsg.CreateTopicsRequestTopic{rt}
			resp, err := ok.RequestWith(ctx, good)
			if err != nil {
				t.Fatal(err)
			}
			want := int16(0)
			if name == "metrics_a" {
				want = kerr.InvalidTopicException.Code
			}
			if resp.Topics[0].ErrorCode != want {
				t.Fatalf("create %s: error %d, want %d", name, resp.Topics[0].ErrorCode, want)
			}
		}
		stillWorks("invalid names")
	})
	t.Run("pipelined ApiVersions v0 and Metadata v0", func(t *testing.T) {
		// kafka-python's first exchange: both requests written before
		// either answer is read.
		r := dialRaw(t, c.broker.Addr)
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version = 0
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 0
		r.send(1, av)
		r.send(2, md)
		corr, body, err := r.recv()
		if err != nil || corr != 1 {
			t.Fatalf("first answer: corr %d, %v", corr, err)
		}
		avr := kmsg.NewPtrApiVersionsResponse()
		avr.SetVersion(0)
		if err := avr.ReadFrom(body); err != nil || avr.ErrorCode != 0 {
			t.Fatalf("ApiVersions v0: %v %d", err, avr.ErrorCode)
		}
		corr, body, err = r.recv()
		if err != nil || corr != 2 {
			t.Fatalf("second answer: corr %d, %v", corr, err)
		}
		mdr := kmsg.NewPtrMetadataResponse()
		mdr.SetVersion(0)
		if err := mdr.ReadFrom(body); err != nil || len(mdr.Brokers) != 1 {
			t.Fatalf("Metadata v0: %v, %d brokers", err, len(mdr.Brokers))
		}
	})
	t.Run("acks=0 gets no response", func(t *testing.T) {
		r := dialRaw(t, c.broker.Addr)
		req := produceReq("acks0", validBatch(t))
		req.Acks = 0
		r.send(10, req)
		r.send(11, kmsg.NewPtrApiVersionsRequest())
		corr, _, err := r.recv()
		if err != nil {
			t.Fatal(err)
		}
		if corr != 11 {
			t.Fatalf("first response has correlation id %d; the acks=0 produce must not be answered", corr)
		}
	})
}

// validBatch returns a one-record uncompressed v2 batch made by franz-go's
// own encoder (kmsg.RecordBatch) with a correct CRC.
func validBatch(t *testing.T) []byte {
	t.Helper()
	rec := []byte{0, 0, 0, 1, 10, 'h', 'e', 'l', 'l', 'o', 0} // attrs, ts delta, offset delta, null key, value, no headers
	var recs []byte
	recs = binary.AppendVarint(recs, int64(len(rec)))
	recs = append(recs, rec...)
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: 0, FirstTimestamp: time.Now().UnixMilli(),
		MaxTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: recs,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	crc := crc32c(b[21:])
	binary.BigEndian.PutUint32(b[17:], crc)
	return b
}

func produceReq(topic string, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = 1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func readProduce(t *testing.T, r *rawConn, version int16) *kmsg.ProduceResponse {
	t.Helper()
	_, body, err := r.recv()
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return resp
}

// produceRaw sends one Produce v7 and returns the partition's error code.
func produceRaw(t *testing.T, addr, topic string, batch []byte) int16 {
	t.Helper()
	r := dialRaw(t, addr)
	req := produceReq(topic, batch)
	r.send(5, req)
	return readProduce(t, r, req.Version).Topics[0].Partitions[0].ErrorCode
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
