package difftest

import (
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// A scenario is written once and run against each server. It works under
// its own top-level node, so scenarios share a server without seeing each
// other, and it must not depend on timing except through waitGone and
// sleep.
type scenario struct {
	name string
	run  func(r *recorder)
}

var scenarios = []scenario{
	{"crud", crud},
	{"bad_arguments", badArguments},
	{"invalid_acl", invalidACL},
	{"sequential", sequential},
	{"ephemeral", ephemeralCleanup},
	{"container", containers},
	{"ttl", ttlNodes},
	{"multi", multiOps},
	{"multi_read", multiRead},
	{"acl", acls},
	{"watch_oneshot", oneShotWatches},
	{"watch_persistent", persistentWatches},
	{"counts_and_ephemerals", countsAndEphemerals},
	{"raw_requests", rawRequests},
}

// crud: create, get, exists, set, delete and getChildren with versions,
// and the errors each can return.
func crud(r *recorder) {
	a, b := r.open(), r.open()
	a.create("/crud", "root", persistent)
	a.create("/crud/a", "one", persistent)
	a.get("/crud/a")
	a.exists("/crud/a")
	a.exists("/crud/missing")
	a.set("/crud/a", "two", 0)
	a.set("/crud/a", "three", 0)
	a.set("/crud/a", "three", -1)
	b.get("/crud/a")
	a.create("/crud/a", "again", persistent)
	a.create("/crud/missing/child", "", persistent)
	a.create("/crud/a/b", "", persistent)
	a.create("/crud/a/c", "c", persistent)
	a.children("/crud/a")
	a.get("/crud/a")
	a.delete("/crud/a", -1)
	a.delete("/crud/a/b", 5)
	a.delete("/crud/a/b", 0)
	a.delete("/crud/a/b", -1)
	a.set("/crud/a/b", "x", -1)
	a.get("/crud/a/b")
	a.children("/crud/a/b")
	a.create("/crud/empty", "", persistent)
	a.get("/crud/empty")
	a.set("/crud/empty", "", -1)
	a.get("/crud/empty")
	a.set("/crud/a/c", "c2", 0)
	a.delete("/crud/a/c", 0)
	a.delete("/crud/a/c", 1)
	a.children("/crud/a")
	a.delete("/crud/a", 2)
	a.children("/crud")
	a.get("/crud")
	a.sync("/crud")
	a.sync("/crud/missing")
}

// badArguments: paths a server must refuse, sent raw because go-zookeeper
// refuses them before sending; and the system nodes under /zookeeper.
//
// Only writes are compared here. Runnel deliberately answers a read of an
// invalid path with BadArguments, where ZooKeeper 3.8 does no validation and
// answers NoNode (or reads "" as the root); server tests pin that.
func badArguments(r *recorder) {
	a := r.openRaw()
	a.create("/bad", "", persistent)
	for _, p := range []string{"noslash", "/bad/", "/bad//x", "/bad/./x", "/bad/../x", "/bad/x\x00y", "/bad/\x01x"} {
		a.create(p, "", persistent)
		a.set(p, "", -1)
		a.delete(p, -1)
	}
	a.create("", "", persistent)
	a.set("", "", -1)
	a.delete("", -1)
	a.create("/bad/", "", persistentSeq)
	a.children("/bad")
	a.create("/", "", persistent)
	a.delete("/", -1)
	a.children("/zookeeper")
	a.exists("/zookeeper")
	a.get("/zookeeper/quota")
	a.create("/zookeeper", "", persistent)
	a.delete("/zookeeper", -1)
	a.set("/zookeeper", "x", -1)
	a.create("/bad/flags", "", 7)
	a.create("/bad/flags", "", -1)
	a.create("/bad/ttl-by-create", "", persistentTTL)
	a.get("/bad")
	a.rawOp(999, "/bad")
}

// invalidACL: ACL lists a server must refuse with InvalidACL, and an
// ephemeral node refusing children.
func invalidACL(r *recorder) {
	a := r.openRaw()
	a.create("/iacl", "", persistent)
	a.createACL("/iacl/empty", "", persistent, []zk.ACL{})
	a.createACL("/iacl/auth-unauthenticated", "", persistent, zk.AuthACL(zk.PermAll))
	a.createACL("/iacl/digest-no-colon", "", persistent, []zk.ACL{{Perms: zk.PermAll, Scheme: "digest", ID: "bob"}})
	a.createACL("/iacl/bad-ip", "", persistent, []zk.ACL{{Perms: zk.PermAll, Scheme: "ip", ID: "300.1.1.1"}})
	a.createACL("/iacl/bad-cidr", "", persistent, []zk.ACL{{Perms: zk.PermAll, Scheme: "ip", ID: "127.0.0.1/99"}})
	a.createACL("/iacl/unknown-scheme", "", persistent, []zk.ACL{{Perms: zk.PermAll, Scheme: "nope", ID: "x"}})
	a.createACL("/iacl/world-other", "", persistent, []zk.ACL{{Perms: zk.PermAll, Scheme: "world", ID: "someone"}})
	a.createACL("/iacl/no-perms", "", persistent, []zk.ACL{{Perms: 0, Scheme: "world", ID: "anyone"}})
	a.get("/iacl/no-perms")
	a.getACL("/iacl/no-perms")
	a.children("/iacl")
	a.setACL("/iacl", -1)
	a.setACL("/iacl", -1, zk.ACL{Perms: zk.PermAll, Scheme: "nope", ID: "x"})
	a.getACL("/iacl")
	a.create("/iacl/e", "", ephemeral)
	a.create("/iacl/e/child", "", persistent)
	a.create("/iacl/e/child", "", ephemeralSeq)
	a.createContainer("/iacl/e/c", "")
	a.get("/iacl/e")
}

// sequential: 10-digit suffixes taken from the parent's cversion, which
// every child creation and deletion advances.
func sequential(r *recorder) {
	a, b := r.open(), r.open()
	a.create("/seq", "", persistent)
	a.create("/seq/n-", "", persistentSeq)
	a.create("/seq/n-", "", persistentSeq)
	a.create("/seq/plain", "", persistent)
	a.create("/seq/n-", "", persistentSeq)
	a.delete("/seq/n-0000000000", -1)
	a.create("/seq/e-", "", ephemeralSeq)
	a.create("/seq/", "", persistentSeq)
	a.get("/seq")
	b.create("/seq/e-", "", ephemeralSeq)
	b.close()
	a.get("/seq")
	a.create("/seq/n-0000000010", "", persistent)
	a.create("/seq/n-", "", persistentSeq)
	a.create("/seq/n-", "", persistentSeq)
	a.create("/seq/n-", "", persistentSeq)
	a.children("/seq")
	a.create("/seq/x", "", persistent)
	a.create("/seq/x/", "", persistentSeq)
	a.create("/seq/x/", "", ephemeralSeq)
	a.children("/seq/x")
}

// ephemeralCleanup: nodes owned by a session vanish when it closes, with
// the watch events that deletion causes.
func ephemeralCleanup(r *recorder) {
	a, b := r.open(), r.open()
	a.create("/eph", "", persistent)
	b.create("/eph/x", "data", ephemeral)
	b.create("/eph/s-", "", ephemeralSeq)
	b.get("/eph/x")
	a.get("/eph/x")
	a.existsW("/eph/x")
	a.childrenW("/eph")
	b.set("/eph/x", "changed", -1)
	a.getW("/eph/x")
	b.close()
	a.exists("/eph/x")
	a.children("/eph")
	a.get("/eph")
	c := r.open()
	c.create("/eph/y", "", ephemeral)
	c.delete("/eph/y", -1)
	c.create("/eph/z", "", ephemeral)
	c.close()
	a.children("/eph")
	a.get("/eph")
}

// containers: removed by the server once their last child goes, never
// while they have never had one.
func containers(r *recorder) {
	a := r.open()
	h := r.openHeld()
	raw := r.openRaw()
	a.create("/cont", "", persistent)
	a.createContainer("/cont/c", "data")
	a.get("/cont/c")
	raw.createContainer("/cont/unused", "")
	a.create("/cont/c/x", "", persistent)
	a.create("/cont/c/y", "", persistent)
	h.existsW("/cont/c")
	h.childrenW("/cont")
	a.delete("/cont/c/x", -1)
	r.sleep(time.Second)
	a.exists("/cont/c")
	a.delete("/cont/c/y", -1)
	r.waitGone("/cont/c")
	a.exists("/cont/c")
	a.children("/cont")
	b := r.open()
	a.createContainer("/cont/d", "")
	a.createContainer("/cont/d/inner", "")
	b.create("/cont/d/inner/e", "", ephemeral)
	b.close()
	r.waitGone("/cont/d")
	a.exists("/cont/unused")
	a.children("/cont")
}

// ttlNodes: createTTL, the TTL encoded in ephemeralOwner, refusal of bad
// TTLs, and removal after the TTL when the node has no children.
func ttlNodes(r *recorder) {
	a := r.open()
	h := r.openHeld()
	raw := r.openRaw()
	a.create("/ttl", "", persistent)
	a.createTTL("/ttl/t", "x", persistentTTL, 1500*time.Millisecond)
	h.existsW("/ttl/t")
	a.get("/ttl/t")
	raw.createTTL("/ttl/long", "", persistentTTL, time.Hour)
	raw.createTTL("/ttl/s-", "", persistentSTTL, time.Hour)
	raw.createTTL("/ttl/zero", "", persistentTTL, 0)
	raw.createTTL("/ttl/negative", "", persistentTTL, -time.Second)
	raw.createTTL("/ttl/huge", "", persistentTTL, time.Duration(1<<41)*time.Millisecond)
	raw.createTTL("/ttl/not-ttl-flag", "", persistent, time.Hour)
	raw.createTTL("/ttl/ephemeral", "", ephemeral, time.Hour)
	h.childrenW("/ttl")
	r.waitGone("/ttl/t")
	a.children("/ttl")
	// One multi, so the node never exists without its child.
	raw.multi(mCreateTTL("/ttl/p", "", 300*time.Millisecond), mCreate("/ttl/p/c", "", persistent))
	r.sleep(time.Second)
	a.exists("/ttl/p")
	a.delete("/ttl/p/c", -1)
	r.waitGone("/ttl/p")
	a.children("/ttl")
}

// multiOps: atomic success, rollback with per-operation errors, check, and
// the watch events of a multi.
func multiOps(r *recorder) {
	a, w := r.open(), r.open()
	raw := r.openRaw()
	a.create("/multi", "", persistent)
	a.multi(mCreate("/multi/a", "1", persistent), mCreate("/multi/b", "2", persistent),
		mSet("/multi/a", "1b", 0), mCheck("/multi/b", 0), mDelete("/multi/b", 0))
	a.get("/multi/a")
	a.exists("/multi/b")
	a.get("/multi")
	a.multi(mCreate("/multi/c", "", persistent), mCheck("/multi/a", 5), mSet("/multi/a", "x", -1))
	a.exists("/multi/c")
	a.get("/multi/a")
	raw.multi(mCreate("/multi/c", "", persistent), mCheck("/multi/a", 5), mSet("/multi/a", "x", -1))
	raw.multi(mSet("/multi/a", "y", -1), mDelete("/multi/missing", -1), mCreate("/multi/a", "", persistent))
	raw.multi(mCreate("/multi/a", "", persistent))
	raw.multi()
	raw.multi(mCreate2("/multi/c2", "v", persistent), mCreateTTL("/multi/t", "", time.Hour),
		mCreate("/multi/s-", "", persistentSeq), mCreate("/multi/s-", "", persistentSeq), mCheck("/multi/c2", 0))
	raw.multi(mCreate("/multi/e", "", ephemeral), mCreate("/multi/e/child", "", persistent))
	raw.multi(mGet("/multi/a"))
	a.multi(mCreate("/multi/d", "", persistent), mDelete("/multi/d", 0))
	a.exists("/multi/d")
	w.existsW("/multi/p1")
	w.existsW("/multi/p2")
	w.childrenW("/multi")
	a.multi(mCreate("/multi/p2", "", persistent), mCreate("/multi/p1", "", persistent), mSet("/multi/p2", "v", 0))
	w.getW("/multi/p1")
	a.multi(mCheck("/multi/p1", 0), mDelete("/multi/p1", 0), mCreate("/multi/p1", "again", persistent))
	a.get("/multi/p1")
	a.children("/multi")
	a.get("/multi")
}

// multiRead: opcode 22 mixes results and per-operation errors and never
// fails as a whole.
func multiRead(r *recorder) {
	a := r.openRaw()
	a.create("/mread", "root", persistent)
	a.create("/mread/a", "A", persistent)
	a.create("/mread/b", "", persistent)
	a.multiRead(mGet("/mread/a"), mChildren("/mread"), mGet("/mread/missing"), mChildren("/mread/missing"),
		mGet("/mread"))
	a.multiRead()
	a.multiRead(mSet("/mread/a", "x", -1))
	a.createACL("/mread/secret", "s", persistent, []zk.ACL{{Perms: zk.PermAll, Scheme: "digest", ID: digestID("eve", "pw")}})
	a.multiRead(mGet("/mread/secret"), mChildren("/mread/secret"), mGet("/mread/a"))
}

// acls: world, digest, auth and ip schemes, NoAuth for every permission,
// getACL/setACL with aversion, and whoAmI.
func acls(r *recorder) {
	a, b := r.open(), r.open()
	raw := r.openRaw()
	bob := zk.ACL{Perms: zk.PermAll, Scheme: "digest", ID: digestID("bob", "secret")}
	a.create("/acl", "", persistent)
	a.create("/acl/d", "secret", persistent, bob)
	a.getACL("/acl/d")
	b.get("/acl/d")
	b.set("/acl/d", "x", -1)
	b.children("/acl/d")
	b.create("/acl/d/c", "", persistent)
	b.setACL("/acl/d", -1, openACL...)
	b.exists("/acl/d")
	b.addAuth("digest", "bob:wrong")
	b.get("/acl/d")
	b.addAuth("digest", "bob:secret")
	b.get("/acl/d")
	b.set("/acl/d", "x", 0)
	b.create("/acl/d/c", "", persistent)
	b.children("/acl/d")
	b.setACL("/acl/d", 0, bob, zk.ACL{Perms: zk.PermRead, Scheme: "world", ID: "anyone"})
	b.setACL("/acl/d", 0, openACL...)
	b.getACL("/acl/d")
	a.get("/acl/d")
	a.set("/acl/d", "y", -1)
	a.delete("/acl/d/c", -1)
	b.delete("/acl/d/c", -1)
	a.delete("/acl/d", -1)

	// One identity only: with several, ZooKeeper expands the auth
	// scheme in hash-set order.
	c := r.open()
	c.addAuth("digest", "dave:pw")
	c.create("/acl/auth", "", persistent, zk.AuthACL(zk.PermAll)...)
	c.getACL("/acl/auth")
	c.create("/acl/auth/mixed", "", persistent, zk.ACL{Perms: zk.PermRead, Scheme: "world", ID: "anyone"},
		zk.ACL{Perms: zk.PermAll, Scheme: "auth", ID: ""})
	c.getACL("/acl/auth/mixed")
	a.get("/acl/auth")
	a.get("/acl/auth/mixed")
	a.create("/acl/auth2", "", persistent, zk.AuthACL(zk.PermAll)...)

	a.create("/acl/ip", "", persistent, zk.ACL{Perms: zk.PermAll, Scheme: "ip", ID: "127.0.0.1"})
	a.get("/acl/ip")
	a.create("/acl/ip10", "", persistent, zk.ACL{Perms: zk.PermAll, Scheme: "ip", ID: "10.0.0.0/8"})
	a.get("/acl/ip10")
	a.create("/acl/ipnet", "", persistent, zk.ACL{Perms: zk.PermRead, Scheme: "ip", ID: "127.0.0.0/8"})
	a.get("/acl/ipnet")
	a.set("/acl/ipnet", "", -1)

	world := func(perms int32) zk.ACL { return zk.ACL{Perms: perms, Scheme: "world", ID: "anyone"} }
	a.create("/acl/nocreate", "", persistent, world(zk.PermAll&^zk.PermCreate))
	a.create("/acl/nocreate/x", "", persistent)
	a.create("/acl/nodelete", "", persistent, world(zk.PermAll&^zk.PermDelete))
	a.create("/acl/nodelete/x", "", persistent)
	a.delete("/acl/nodelete/x", -1)
	a.create("/acl/noadmin", "", persistent, world(zk.PermAll&^zk.PermAdmin))
	a.setACL("/acl/noadmin", -1, openACL...)
	a.getACL("/acl/noadmin")
	a.create("/acl/noread", "r", persistent, world(zk.PermAll&^zk.PermRead))
	a.get("/acl/noread")
	a.children("/acl/noread")
	a.getACL("/acl/noread")
	a.exists("/acl/noread")
	a.create("/acl/nowrite", "", persistent, world(zk.PermAll&^zk.PermWrite))
	a.set("/acl/nowrite", "x", -1)
	a.create("/acl/nothing", "", persistent, world(0))
	a.getACL("/acl/nothing")
	a.setACL("/acl/nothing", -1, openACL...)

	raw.whoAmI()
	raw.addAuth("digest", "carol:pw")
	raw.whoAmI()
	raw.addAuth("nope", "x")
}

// oneShotWatches: exists, data and child watches fire once, by
// ZooKeeper's rules for each event type.
func oneShotWatches(r *recorder) {
	a, w, v := r.open(), r.open(), r.open()
	a.create("/watch", "", persistent)
	w.existsW("/watch/n")
	a.create("/watch/n", "1", persistent)
	w.getW("/watch/n")
	a.set("/watch/n", "2", -1)
	a.set("/watch/n", "3", -1)
	w.childrenW("/watch")
	a.create("/watch/m", "", persistent)
	a.delete("/watch/m", -1)
	w.existsW("/watch/n")
	w.getW("/watch/n")
	w.childrenW("/watch/n")
	w.childrenW("/watch")
	v.getW("/watch/n")
	a.delete("/watch/n", -1)
	a.getW("/watch")
	a.set("/watch", "self", -1)
	w.getW("/watch/none")
	w.childrenW("/watch/none")
	a.create("/watch/none", "", persistent)
	w.existsW("/watch/gone")
	a.create("/watch/gone", "", persistent)
	a.delete("/watch/gone", -1)
	w.existsW("/watch/none")
	a.set("/watch/none", "", -1)
	w.childrenW("/watch/none")
	a.create("/watch/none/kid", "", persistent)
	a.set("/watch/none/kid", "", -1)
	w.existsW("/watch/none/kid")
	w.getW("/watch/none")
	a.multi(mDelete("/watch/none/kid", -1), mDelete("/watch/none", -1))
	w.exists("/watch/none")
}

// persistentWatches: addWatch (opcode 106) in both modes, which
// go-zookeeper v1.0.4 cannot send, and removeWatches/checkWatches.
func persistentWatches(r *recorder) {
	a := r.open()
	p := r.openRaw()
	a.create("/pw", "", persistent)
	p.addWatch("/pw/node", jute.AddWatchPersistent)
	a.create("/pw/node", "1", persistent)
	a.set("/pw/node", "2", -1)
	a.set("/pw/node", "3", -1)
	a.create("/pw/node/c", "", persistent)
	a.set("/pw/node/c", "x", -1)
	a.delete("/pw/node/c", -1)
	a.delete("/pw/node", -1)
	a.create("/pw/node", "", persistent)
	p.checkWatches("/pw/node", jute.WatcherTypeAny)
	p.checkWatches("/pw/other", jute.WatcherTypeAny)
	p.removeWatches("/pw/node", jute.WatcherTypeAny)
	a.set("/pw/node", "after", -1)
	p.removeWatches("/pw/node", jute.WatcherTypeAny)

	p.addWatch("/pw/r", jute.AddWatchPersistentRecursive)
	a.create("/pw/r", "", persistent)
	a.create("/pw/r/a", "", persistent)
	a.create("/pw/r/a/b", "", persistent)
	a.set("/pw/r/a/b", "x", -1)
	p.getW("/pw/r/a")
	a.set("/pw/r/a", "y", -1)
	a.multi(mDelete("/pw/r/a/b", -1), mDelete("/pw/r/a", -1))
	a.create("/pw/rx", "", persistent)
	a.set("/pw/r", "z", -1)

	p.getW("/pw/node")
	p.childrenW("/pw")
	p.removeWatches("/pw/node", jute.WatcherTypeChildren)
	p.removeWatches("/pw/node", jute.WatcherTypeData)
	a.set("/pw/node", "again", -1)
	p.removeWatches("/pw", jute.WatcherTypeChildren)
	a.create("/pw/new", "", persistent)
}

// countsAndEphemerals: getAllChildrenNumber (104) and getEphemerals (103).
func countsAndEphemerals(r *recorder) {
	g, o := r.openRaw(), r.openRaw()
	g.create("/count", "", persistent)
	g.create("/count/a", "", persistent)
	g.create("/count/a/b", "", persistent)
	g.create("/count/a/b/c", "", persistent)
	g.create("/count/d", "", persistent)
	g.getAllChildrenNumber("/count")
	g.getAllChildrenNumber("/count/a")
	g.getAllChildrenNumber("/count/d")
	g.getAllChildrenNumber("/count/missing")
	g.create("/count/e1", "", ephemeral)
	g.create("/count/a/e2", "", ephemeral)
	g.create("/count/es-", "", ephemeralSeq)
	o.create("/count/other", "", ephemeral)
	g.getEphemerals("/")
	g.getEphemerals("/count/a")
	g.getEphemerals("/count/e")
	g.getEphemerals("/nothing")
	o.getEphemerals("/")
	g.getAllChildrenNumber("/count")
	o.close()
	g.getAllChildrenNumber("/count")
}

// rawRequests: requests that only a raw client makes: create2, the old
// getChildren, sync's answer, exists of a missing node, null data.
func rawRequests(r *recorder) {
	a, w := r.openRaw(), r.openRaw()
	a.create2("/raw", "r", persistent)
	a.create2("/raw/e", "", ephemeral)
	a.create2("/raw/s-", "", persistentSeq)
	a.create2("/raw/s-", "", ephemeralSeq)
	a.create2("/raw", "", persistent)
	a.getChildren("/raw", false)
	w.getChildren("/raw", true)
	a.create("/raw/new", "", persistent)
	a.exists("/raw/missing")
	w.existsW("/raw/missing")
	a.create("/raw/missing", "", persistent)
	a.sync("/raw")
	a.sync("/raw/none")
	a.createNull("/raw/null")
	a.get("/raw/null")
	a.children("/raw")
}

// digestID is what ZooKeeper's DigestAuthenticationProvider stores for
// user:password: user:base64(sha1("user:password")).
func digestID(user, password string) string {
	return zk.DigestACL(zk.PermAll, user, password)[0].ID
}
