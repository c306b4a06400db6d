package znode

import (
	"math"
	"testing"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// EphemeralType.java: a TTL owner is 0xff in the top byte, two zero feature
// bytes, and the TTL in the low five bytes; a container owner is
// Long.MIN_VALUE.
func TestOwnerEncoding(t *testing.T) {
	u := func(v uint64) int64 { return int64(v) }
	cases := []struct {
		owner int64
		typ   ephemeralType
		ttl   int64
	}{
		{0, ephVoid, 0},
		{5, ephNormal, 0},
		{u(0x0100000000000005), ephNormal, 0},
		{ContainerOwner, ephContainer, 0},
		{u(0x8000000000000000), ephContainer, 0},
		{u(0xff00000000000001), ephTTL, 1},
		{u(0xff000000000003e8), ephTTL, 1000},
		{u(0xff0000ffffffffff), ephTTL, MaxTTL},
		{u(0xff000fffffffffff), ephNormal, 0}, // feature bits 0x000f
		{u(0xff01000000000005), ephNormal, 0}, // unknown extended feature
	}
	for _, c := range cases {
		if got := ownerType(c.owner); got != c.typ {
			t.Errorf("ownerType(%#x) = %d, want %d", uint64(c.owner), got, c.typ)
		}
		if c.typ == ephTTL && ownerTTL(c.owner) != c.ttl {
			t.Errorf("ownerTTL(%#x) = %d, want %d", uint64(c.owner), ownerTTL(c.owner), c.ttl)
		}
		want := int64(0)
		if c.typ == ephNormal {
			want = c.owner
		}
		if clientOwner(c.owner) != want {
			t.Errorf("clientOwner(%#x) = %#x", uint64(c.owner), clientOwner(c.owner))
		}
	}
	if MaxTTL != 0xffffffffff {
		t.Errorf("MaxTTL = %#x", MaxTTL)
	}
	if ttlOwner(1) != u(0xff00000000000001) || ttlOwner(MaxTTL) != u(0xff0000ffffffffff) {
		t.Errorf("ttlOwner(1) = %#x, ttlOwner(MaxTTL) = %#x", uint64(ttlOwner(1)), uint64(ttlOwner(MaxTTL)))
	}
}

// The stored owner of nodes created through Apply.
func TestStoredOwners(t *testing.T) {
	db := New()
	db.Apply(&Txn{Zxid: 1, Op: jute.OpCreateSession, SessionID: 0x1234})
	apply := func(zxid int64, op int32, req jute.Record) {
		t.Helper()
		if r := db.Apply(&Txn{Zxid: zxid, Time: 5, SessionID: 0x1234, Op: op, Req: req}); r.Err != jute.ErrOK {
			t.Fatalf("%s: %v", jute.OpName(op), r.Err)
		}
	}
	apply(2, jute.OpCreateTTL, &jute.CreateTTLRequest{Path: "/t", ACL: jute.OpenACLUnsafe, Flags: jute.FlagPersistentWithTTL, TTL: 1000})
	apply(3, jute.OpCreateContainer, &jute.CreateRequest{Path: "/c", ACL: jute.OpenACLUnsafe, Flags: jute.FlagContainer})
	apply(4, jute.OpCreate, &jute.CreateRequest{Path: "/e", ACL: jute.OpenACLUnsafe, Flags: jute.FlagEphemeral})
	apply(5, jute.OpCreate, &jute.CreateRequest{Path: "/p", ACL: jute.OpenACLUnsafe})
	want := map[string]uint64{"/t": 0xff000000000003e8, "/c": 0x8000000000000000, "/e": 0x1234, "/p": 0}
	for p, w := range want {
		if got := uint64(db.nodes[p].st.owner); got != w {
			t.Errorf("%s: owner %#x, want %#x", p, got, w)
		}
	}
}

func TestAppendSequence(t *testing.T) {
	for v, want := range map[int32]string{
		0: "0000000000", 42: "0000000042", 1234567890: "1234567890",
		math.MaxInt32: "2147483647", -1: "-000000001", -42: "-000000042",
		math.MinInt32: "-2147483648",
	} {
		if got := string(appendSequence(nil, v)); got != want {
			t.Errorf("appendSequence(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestUTF16Len(t *testing.T) {
	for s, want := range map[string]int64{"": 0, "/a": 2, "/\u00e9": 2, "/\u4e16": 2, "/\U0001F600": 3} {
		if got := utf16Len(s); got != want {
			t.Errorf("utf16Len(%q) = %d, want %d", s, got, want)
		}
	}
}

// IPAuthenticationProvider.matches and isValid.
func TestIPMatches(t *testing.T) {
	cases := []struct {
		remote, expr string
		want         bool
	}{
		{"10.0.0.7", "10.0.0.7", true},
		{"10.0.0.7", "10.0.0.8", false},
		{"10.0.0.7", "10.0.0.0/8", true},
		{"11.0.0.7", "10.0.0.0/8", false},
		{"10.1.2.3", "10.1.0.0/16", true},
		{"10.1.2.3", "10.1.2.0/23", true},
		{"10.1.4.3", "10.1.2.0/23", false},
		{"1.2.3.4", "0.0.0.0/0", true},
		{"1.2.3.4", "9.9.9.9/0", true},
		{"10.0.0.7", "010.000.000.007", true},
		{"10.0.0.7", "10.0.0.7/33", false},
		{"10.0.0.7", "10.0.0.7/-1", false},
		{"10.0.0.7", "10.0.0", false},
		{"10.0.0.7", "10.0.0.7.1", false},
		{"10.0.0.7", "10.0.0.256", false},
		{"10.0.0.7", "a.b.c.d", false},
		{"fd12::1", "fd00::/8", true},
		{"fe12::1", "fd00::/8", false},
		{"::1", "::1", true},
		{"::1", "::1/129", false},
		{"10.0.0.7", "::ffff:10.0.0.7", false},
		{"bogus", "10.0.0.0/8", false},
	}
	for _, c := range cases {
		if got := ipMatches(c.remote, c.expr); got != c.want {
			t.Errorf("ipMatches(%q, %q) = %v", c.remote, c.expr, got)
		}
	}
}

// DigestAuthenticationProvider.isValid follows Java's String.split(":").
func TestValidDigestID(t *testing.T) {
	for id, want := range map[string]bool{
		"u:h": true, ":h": true, "u:h:": true, "u:": false, "u": false, "": false,
		"u::": false, "a:b:c": false, "::h": false,
	} {
		if got := validDigestID(id); got != want {
			t.Errorf("validDigestID(%q) = %v", id, got)
		}
	}
}

func TestCheckACL(t *testing.T) {
	alice := jute.Id{Scheme: "digest", ID: DigestID("alice", "pw")}
	acl := []jute.ACL{
		{Perms: jute.PermRead, ID: jute.WorldAnyone},
		{Perms: jute.PermAll, ID: alice},
		{Perms: jute.PermWrite, ID: jute.Id{Scheme: "ip", ID: "10.0.0.0/8"}},
	}
	cases := []struct {
		perm int32
		auth []jute.Id
		want bool
	}{
		{jute.PermRead, nil, true},
		{jute.PermWrite, nil, false},
		{jute.PermWrite, []jute.Id{{Scheme: "ip", ID: "10.2.3.4"}}, true},
		{jute.PermWrite, []jute.Id{{Scheme: "ip", ID: "11.2.3.4"}}, false},
		{jute.PermAdmin, []jute.Id{alice}, true},
		{jute.PermAdmin, []jute.Id{{Scheme: "digest", ID: "alice:wrong"}}, false},
		{jute.PermAdmin, []jute.Id{{Scheme: "super"}}, true},
		// A digest id under another scheme does not match.
		{jute.PermAdmin, []jute.Id{{Scheme: "sasl", ID: alice.ID}}, false},
	}
	for _, c := range cases {
		if got := checkACL(acl, c.perm, c.auth); got != c.want {
			t.Errorf("checkACL(perm %d, %v) = %v", c.perm, c.auth, got)
		}
	}
	if !checkACL(nil, jute.PermAdmin, nil) {
		t.Error("an empty ACL must grant everything")
	}
}

func TestMaskDigests(t *testing.T) {
	acl := []jute.ACL{{Perms: 1, ID: jute.Id{Scheme: "digest", ID: "bob:hash=="}}, {Perms: 1, ID: jute.WorldAnyone}}
	got := maskDigests(acl)
	if got[0].ID.ID != "bob:x" || got[1] != acl[1] || acl[0].ID.ID != "bob:hash==" {
		t.Errorf("maskDigests = %v (input %v)", got, acl)
	}
}
