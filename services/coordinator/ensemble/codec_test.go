package ensemble

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

func encodeFrames(t testing.TB, write func(fw *frameWriter) error) []byte {
	t.Helper()
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	fw := frameWriter{w: bw}
	if err := write(&fw); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestForwardFramesRoundTrip(t *testing.T) {
	envs := [][]byte{appendEnvelope(nil, 1<<48|5, []byte("txn-a")), appendEnvelope(nil, 1<<48|6, nil)}
	ids := []int64{-1, 0x0100000000000001}
	acks := []ack{{origin: 1<<48 | 5, index: 77, code: ackOK}, {origin: 1<<48 | 6, code: ackNotLeader}}
	raw := encodeFrames(t, func(fw *frameWriter) error {
		return errors.Join(fw.hello(3), fw.batch(envs), fw.live(ids), fw.acks(acks))
	})
	r := bytes.NewReader(raw)

	typ, body, _, err := readFrame(r, nil)
	if err != nil || typ != frameHello {
		t.Fatalf("frame 1: type %d, %v; want hello", typ, err)
	}
	if id, err := parseHello(body); err != nil || id != 3 {
		t.Fatalf("hello = %d, %v; want 3", id, err)
	}

	typ, body, _, err = readFrame(r, nil)
	if err != nil || typ != frameBatch {
		t.Fatalf("frame 2: type %d, %v; want batch", typ, err)
	}
	got, err := parseBatch(body, nil)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], envs[0]) || !bytes.Equal(got[1], envs[1]) {
		t.Fatalf("batch = %q, %v; want %q", got, err, envs)
	}
	origin, txn, err := parseEnvelope(got[0])
	if err != nil || origin != 1<<48|5 || string(txn) != "txn-a" {
		t.Fatalf("envelope = %x %q %v", origin, txn, err)
	}

	typ, body, _, err = readFrame(r, nil)
	if err != nil || typ != frameLive {
		t.Fatalf("frame 3: type %d, %v; want live", typ, err)
	}
	if gotIDs, err := parseLive(body); err != nil || !slices.Equal(gotIDs, ids) {
		t.Fatalf("live = %v, %v; want %v", gotIDs, err, ids)
	}

	typ, body, _, err = readFrame(r, nil)
	if err != nil || typ != frameAcks {
		t.Fatalf("frame 4: type %d, %v; want acks", typ, err)
	}
	if gotAcks, err := parseAcks(body, nil); err != nil || !slices.Equal(gotAcks, acks) {
		t.Fatalf("acks = %v, %v; want %v", gotAcks, err, acks)
	}
	if _, _, _, err := readFrame(r, nil); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestForwardFramesRejectDamage(t *testing.T) {
	// A count that promises more elements than the frame holds must fail
	// before anything is allocated for them.
	if _, err := parseLive([]byte{0xff, 0xff, 0xff, 0xff}); !errors.Is(err, ErrBadFrame) {
		t.Errorf("parseLive(huge count) = %v, want ErrBadFrame", err)
	}
	if _, err := parseAcks([]byte{0, 0, 0, 1, 1, 2}, nil); !errors.Is(err, ErrBadFrame) {
		t.Errorf("parseAcks(short) = %v, want ErrBadFrame", err)
	}
	if _, err := parseBatch([]byte{0, 0, 0, 1, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0}, nil); !errors.Is(err, ErrBadFrame) {
		t.Errorf("parseBatch(envelope shorter than its header) = %v, want ErrBadFrame", err)
	}
	if _, err := parseHello([]byte{forwardVersion + 1, 0, 1}); !errors.Is(err, ErrBadFrame) {
		t.Errorf("parseHello(wrong version) = %v, want ErrBadFrame", err)
	}
	if _, _, err := parseEnvelope([]byte{envelopeFormat + 1, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrBadFrame) {
		t.Errorf("parseEnvelope(unknown format) = %v, want ErrBadFrame", err)
	}
	for _, hdr := range [][]byte{{0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}} {
		if _, _, _, err := readFrame(bytes.NewReader(hdr), nil); !errors.Is(err, ErrBadFrame) {
			t.Errorf("readFrame(length %x) = %v, want ErrBadFrame", hdr, err)
		}
	}
}

// FuzzForwardFrame feeds arbitrary bytes to the leader's and the
// follower's frame decoders. Nothing may panic, and whatever decodes must
// re-encode to the same frame.
func FuzzForwardFrame(f *testing.F) {
	f.Add(encodeFrames(f, func(fw *frameWriter) error { return fw.hello(1) }))
	f.Add(encodeFrames(f, func(fw *frameWriter) error {
		return fw.batch([][]byte{appendEnvelope(nil, 2<<48|1, []byte{1, 2, 3}), appendEnvelope(nil, 2<<48|2, nil)})
	}))
	f.Add(encodeFrames(f, func(fw *frameWriter) error { return fw.live([]int64{1, 2, 3}) }))
	f.Add(encodeFrames(f, func(fw *frameWriter) error { return fw.acks([]ack{{1, 2, ackOK}, {3, 0, ackFailed}}) }))
	f.Add([]byte{0, 0, 0, 5, frameBatch, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		typ, body, _, err := readFrame(bytes.NewReader(raw), nil)
		if err != nil {
			return
		}
		var again []byte
		switch typ {
		case frameHello:
			id, err := parseHello(body)
			if err != nil {
				return
			}
			again = encodeFrames(t, func(fw *frameWriter) error { return fw.hello(id) })
		case frameBatch:
			envs, err := parseBatch(body, nil)
			if err != nil {
				return
			}
			for _, e := range envs {
				if _, _, err := parseEnvelope(e); err != nil {
					t.Fatalf("parseBatch accepted a bad envelope %x: %v", e, err)
				}
			}
			again = encodeFrames(t, func(fw *frameWriter) error { return fw.batch(envs) })
		case frameLive:
			ids, err := parseLive(body)
			if err != nil {
				return
			}
			again = encodeFrames(t, func(fw *frameWriter) error { return fw.live(ids) })
		case frameAcks:
			acks, err := parseAcks(body, nil)
			if err != nil {
				return
			}
			again = encodeFrames(t, func(fw *frameWriter) error { return fw.acks(acks) })
		default:
			return
		}
		n := 4 + len(body) + 1
		if !bytes.Equal(again, raw[:n]) {
			t.Fatalf("re-encoding changed the frame:\n in  %x\n out %x", raw[:n], again)
		}
	})
}
