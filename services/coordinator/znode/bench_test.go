package znode_test

import (
	"strconv"
	"testing"

	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// BenchmarkApplyCreate creates 100-byte znodes under one parent, the load of
// DESIGN.md's ZooKeeper anchor.
func BenchmarkApplyCreate(b *testing.B) {
	db := znode.New()
	db.Apply(&znode.Txn{Zxid: 1, Op: jute.OpCreate, Req: &jute.CreateRequest{Path: "/bench", ACL: jute.OpenACLUnsafe}})
	data := make([]byte, 100)
	paths := make([]string, b.N)
	for i := range paths {
		paths[i] = "/bench/n" + strconv.Itoa(i)
	}
	auth := []jute.Id{{Scheme: "ip", ID: "127.0.0.1"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := db.Apply(&znode.Txn{Zxid: int64(i + 2), Time: int64(i), SessionID: 1, Op: jute.OpCreate, Auth: auth,
			Req: &jute.CreateRequest{Path: paths[i], Data: data, ACL: jute.OpenACLUnsafe}})
		if r.Err != jute.ErrOK {
			b.Fatal(r.Err)
		}
	}
}

// BenchmarkApplySetData rewrites one watched-free node.
func BenchmarkApplySetData(b *testing.B) {
	db := znode.New()
	db.Apply(&znode.Txn{Zxid: 1, Op: jute.OpCreate, Req: &jute.CreateRequest{Path: "/n", ACL: jute.OpenACLUnsafe}})
	data := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := db.Apply(&znode.Txn{Zxid: int64(i + 2), Op: jute.OpSetData, Req: &jute.SetDataRequest{Path: "/n", Data: data, Version: -1}})
		if r.Err != jute.ErrOK {
			b.Fatal(r.Err)
		}
	}
}

// BenchmarkReadGetData reads 100-byte znodes from a tree of 10,000.
func BenchmarkReadGetData(b *testing.B) {
	db := znode.New()
	db.Apply(&znode.Txn{Zxid: 1, Op: jute.OpCreate, Req: &jute.CreateRequest{Path: "/bench", ACL: jute.OpenACLUnsafe}})
	const n = 10000
	reqs := make([]*jute.PathWatchRequest, n)
	data := make([]byte, 100)
	for i := range reqs {
		p := "/bench/n" + strconv.Itoa(i)
		db.Apply(&znode.Txn{Zxid: int64(i + 2), Op: jute.OpCreate, Req: &jute.CreateRequest{Path: p, Data: data, ACL: jute.OpenACLUnsafe}})
		reqs[i] = &jute.PathWatchRequest{Path: p}
	}
	auth := []jute.Id{{Scheme: "ip", ID: "127.0.0.1"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, code := db.Read(1, auth, jute.OpGetData, reqs[i%n], nil); code != jute.ErrOK {
			b.Fatal(code)
		}
	}
}

// BenchmarkWatchedSetData: a data watch registered and fired per write.
func BenchmarkWatchedSetData(b *testing.B) {
	db := znode.New()
	db.Apply(&znode.Txn{Zxid: 1, Op: jute.OpCreate, Req: &jute.CreateRequest{Path: "/n", ACL: jute.OpenACLUnsafe}})
	w := &countWatcher{}
	get := &jute.PathWatchRequest{Path: "/n", Watch: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db.Read(1, nil, jute.OpGetData, get, w)
		db.Apply(&znode.Txn{Zxid: int64(i + 2), Op: jute.OpSetData, Req: &jute.SetDataRequest{Path: "/n", Version: -1}})
	}
	if w.n != b.N {
		b.Fatalf("%d notifications for %d writes", w.n, b.N)
	}
}
