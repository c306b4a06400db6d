package znode_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// FuzzTxnUnmarshal: decoding never panics, and whatever decodes encodes to
// bytes that decode to the same Txn.
func FuzzTxnUnmarshal(f *testing.F) {
	for _, txn := range sampleTxns() {
		b, err := txn.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 2, 2, 0, 0x1c, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var txn znode.Txn
		if err := txn.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := txn.MarshalBinary()
		if err != nil {
			t.Fatalf("a decoded Txn does not encode: %v", err)
		}
		var back znode.Txn
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded Txn does not decode: %v", err)
		}
		if !reflect.DeepEqual(&txn, &back) {
			t.Fatalf("unstable roundtrip:\n%#v\n%#v", &txn, &back)
		}
		// Applying a decoded Txn must not panic either.
		db := znode.New()
		db.Apply(&znode.Txn{Zxid: 1, Op: jute.OpCreateSession, SessionID: txn.SessionID})
		db.Apply(&txn)
		if err := znode.CheckInvariants(db); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzReadSnapshot: loading never panics, a rejected input leaves the DB
// alone, and an accepted one yields a consistent tree that writes back the
// same bytes. The checksum would stop almost every mutation at the door, so
// each input is tried as is and with a valid checksum appended.
func FuzzReadSnapshot(f *testing.F) {
	var buf bytes.Buffer
	if err := buildTree(f).WriteSnapshot(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:len(buf.Bytes())-4])
	buf.Reset()
	if err := znode.New().WriteSnapshot(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes()[:len(buf.Bytes())-4])
	f.Add(craftSnapshot([]snapNode{{"/", 0}, {"/a", 0}, {"/a/b", -1}}, 1, []int64{1, 2}))
	f.Add([]byte("RZNS\x01"))
	f.Add([]byte{})
	table := crc32.MakeTable(crc32.Castagnoli)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, binary.BigEndian.AppendUint32(bytes.Clone(b), crc32.Checksum(b, table))} {
			db := znode.New()
			if err := db.ReadSnapshot(bytes.NewReader(in)); err != nil {
				if db.LastZxid() != 0 || db.Stats().Nodes != 5 {
					t.Fatal("a rejected snapshot changed the DB")
				}
				continue
			}
			if err := znode.CheckInvariants(db); err != nil {
				t.Fatalf("accepted snapshot breaks invariants: %v", err)
			}
			var out bytes.Buffer
			if err := db.WriteSnapshot(&out); err != nil {
				t.Fatal(err)
			}
			again := znode.New()
			if err := again.ReadSnapshot(bytes.NewReader(out.Bytes())); err != nil {
				t.Fatalf("a written snapshot does not load: %v", err)
			}
			var out2 bytes.Buffer
			if err := again.WriteSnapshot(&out2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), out2.Bytes()) {
				t.Fatal("snapshot does not round-trip")
			}
		}
	})
}
