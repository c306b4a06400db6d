package znode

import (
	"crypto/sha1"
	"encoding/base64"
	"net/netip"
	"strconv"
	"strings"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// ACL schemes this package understands. "auth" only exists in requests: it
// expands to the caller's identities when a node is created or its ACL set.
const (
	schemeWorld  = "world"
	schemeAuth   = "auth"
	schemeDigest = "digest"
	schemeIP     = "ip"
	schemeSuper  = "super"
)

// DigestID returns the identity ZooKeeper's DigestAuthenticationProvider
// derives from a user name and password: "user:" followed by the base64 of
// the SHA-1 of "user:password". The server adds it to a connection after an
// auth packet with scheme "digest" and payload "user:password", and ACLs with
// scheme "digest" name it.
func DigestID(user, password string) string {
	sum := sha1.Sum([]byte(user + ":" + password))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

// fixupACL validates the ACL of a create or setACL request and expands the
// "auth" scheme into the caller's authenticated identities, like
// PrepRequestProcessor.fixupACL. ok is false for an empty list, an unknown
// scheme, a malformed id, or an "auth" entry from a caller with no
// authenticated identity (ZooKeeper answers InvalidACL to all of them).
func fixupACL(acl []jute.ACL, auth []jute.Id) (out []jute.ACL, ok bool) {
	if len(acl) == 0 {
		return nil, false
	}
	out = make([]jute.ACL, 0, len(acl))
	for i, a := range acl {
		if containsACL(acl[:i], a) { // ZOOKEEPER-1877: drop exact duplicates
			continue
		}
		switch a.ID.Scheme {
		case schemeWorld:
			if a.ID.ID != "anyone" {
				return nil, false
			}
			out = append(out, a)
		case schemeAuth:
			found := false
			for _, id := range auth {
				if authenticatedScheme(id.Scheme) {
					found = true
					out = append(out, jute.ACL{Perms: a.Perms, ID: id})
				}
			}
			if !found {
				return nil, false
			}
		case schemeDigest:
			if !validDigestID(a.ID.ID) {
				return nil, false
			}
			out = append(out, a)
		case schemeIP:
			if _, _, ok := parseIPExpr(a.ID.ID); !ok {
				return nil, false
			}
			out = append(out, a)
		default:
			return nil, false
		}
	}
	return out, true
}

func containsACL(list []jute.ACL, a jute.ACL) bool {
	for _, b := range list {
		if b == a {
			return true
		}
	}
	return false
}

// authenticatedScheme reports whether an identity of the connection stands
// for an authenticated user an "auth" ACL may expand to. The "ip" identity
// every connection carries does not (IPAuthenticationProvider's
// isAuthenticated is false), and neither "world" nor "super" has a provider.
func authenticatedScheme(scheme string) bool {
	switch scheme {
	case schemeIP, schemeWorld, schemeSuper, "":
		return false
	}
	return true
}

// validDigestID is DigestAuthenticationProvider.isValid: Java's
// id.split(":") must yield exactly two parts, trailing empty parts removed.
func validDigestID(id string) bool {
	parts := strings.Split(id, ":")
	for len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return len(parts) == 2
}

// checkACL reports whether the identities in auth grant perm on a node with
// the given ACL, like ZooKeeperServer.checkACL: an empty ACL grants
// everything, a "super" identity bypasses every check, and otherwise one
// entry with the permission bit must match world:anyone, an equal digest id,
// or the connection's address for an ip entry.
func checkACL(acl []jute.ACL, perm int32, auth []jute.Id) bool {
	if len(acl) == 0 {
		return true
	}
	for i := range auth {
		if auth[i].Scheme == schemeSuper {
			return true
		}
	}
	for i := range acl {
		a := &acl[i]
		if a.Perms&perm == 0 {
			continue
		}
		switch a.ID.Scheme {
		case schemeWorld:
			if a.ID.ID == "anyone" {
				return true
			}
		case schemeDigest:
			for j := range auth {
				if auth[j].Scheme == schemeDigest && auth[j].ID == a.ID.ID {
					return true
				}
			}
		case schemeIP:
			for j := range auth {
				if auth[j].Scheme == schemeIP && ipMatches(auth[j].ID, a.ID.ID) {
					return true
				}
			}
		}
	}
	return false
}

// maskDigests hides the hash part of digest ids ("user:x"), which is what
// getACL returns to a caller lacking ADMIN on the node.
func maskDigests(acl []jute.ACL) []jute.ACL {
	out := make([]jute.ACL, len(acl))
	copy(out, acl)
	for i := range out {
		if out[i].ID.Scheme == schemeDigest {
			if j := strings.IndexByte(out[i].ID.ID, ':'); j >= 0 {
				out[i].ID.ID = out[i].ID.ID[:j] + ":x"
			}
		}
	}
	return out
}

// parseIPExpr parses an ip ACL id: an address, optionally followed by
// "/bits". IPv4 is parsed like ZooKeeper (four decimal parts, leading zeros
// allowed); IPv6 uses the standard textual form without a zone.
func parseIPExpr(expr string) (addr netip.Addr, bits int, ok bool) {
	host, suffix, hasBits := strings.Cut(expr, "/")
	addr, ok = parseIP(host)
	if !ok {
		return addr, 0, false
	}
	bits = addr.BitLen()
	if hasBits {
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 0 || n > addr.BitLen() {
			return addr, 0, false
		}
		bits = n
	}
	return addr, bits, true
}

func parseIP(s string) (netip.Addr, bool) {
	if strings.IndexByte(s, ':') >= 0 {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a, true
	}
	var b [4]byte
	for i := 0; i < 4; i++ {
		part := s
		if i < 3 {
			j := strings.IndexByte(s, '.')
			if j < 0 {
				return netip.Addr{}, false
			}
			part, s = s[:j], s[j+1:]
		} else if strings.IndexByte(s, '.') >= 0 {
			return netip.Addr{}, false
		}
		if part == "" {
			return netip.Addr{}, false
		}
		v := 0
		for k := 0; k < len(part); k++ {
			if part[k] < '0' || part[k] > '9' {
				return netip.Addr{}, false
			}
			if v = v*10 + int(part[k]-'0'); v > 255 {
				return netip.Addr{}, false
			}
		}
		b[i] = byte(v)
	}
	return netip.AddrFrom4(b), true
}

// ipMatches is IPAuthenticationProvider.matches: remote (the connection's
// address) lies in the network the ACL id names. An IPv4 id never matches an
// IPv6 address or the other way round.
func ipMatches(remote, expr string) bool {
	network, bits, ok := parseIPExpr(expr)
	if !ok {
		return false
	}
	addr, ok := parseIP(remote)
	if !ok || addr.BitLen() != network.BitLen() {
		return false
	}
	p1, err1 := network.Prefix(bits)
	p2, err2 := addr.Prefix(bits)
	return err1 == nil && err2 == nil && p1 == p2
}
