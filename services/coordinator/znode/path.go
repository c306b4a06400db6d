package znode

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// ValidatePath checks a znode path the way ZooKeeper's PathUtils.validatePath
// does and returns an error wrapping jute.ErrBadArguments when it is invalid.
// With sequential set, the path may end in "/" because the server appends
// the sequence number to it.
//
// ZooKeeper judges characters as UTF-16 code units, so every character
// outside the Basic Multilingual Plane (encoded as a surrogate pair) is
// rejected along with the control, surrogate, private-use and U+FFF0..U+FFFF
// ranges; so is invalid UTF-8, which Java decodes to U+FFFD.
func ValidatePath(path string, sequential bool) error {
	if sequential {
		path += "1"
	}
	if reason := pathProblem(path); reason != "" {
		return fmt.Errorf("%w: invalid path %q: %s", jute.ErrBadArguments, path, reason)
	}
	return nil
}

// validPath is ValidatePath(path, false) == nil without building an error.
func validPath(path string) bool { return pathProblem(path) == "" }

// pathProblem returns why path is invalid, or "" when it is valid.
func pathProblem(path string) string {
	switch {
	case path == "":
		return "empty path"
	case path[0] != '/':
		return "path must start with /"
	case len(path) == 1:
		return ""
	case path[len(path)-1] == '/':
		return "path must not end with /"
	}
	last := byte('/')
	for i := 1; i < len(path); {
		c := path[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0:
				return "null character at " + strconv.Itoa(i)
			case c == '/' && last == '/':
				return "empty node name at " + strconv.Itoa(i)
			case c == '.' && last == '/' && (i+1 == len(path) || path[i+1] == '/'):
				return "relative path at " + strconv.Itoa(i)
			case c == '.' && last == '.' && path[i-2] == '/' && (i+1 == len(path) || path[i+1] == '/'):
				return "relative path at " + strconv.Itoa(i)
			case c < 0x20 || c == 0x7f:
				return "invalid character at " + strconv.Itoa(i)
			}
			last = c
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(path[i:])
		if disallowedRune(r) {
			return "invalid character at " + strconv.Itoa(i)
		}
		last = 0 // neither '/' nor '.'
		i += size
	}
	return ""
}

// disallowedRune reports the non-ASCII characters PathUtils rejects.
func disallowedRune(r rune) bool {
	return r <= 0x9f || // C1 controls (0x80..0x9f)
		(r >= 0xd800 && r <= 0xf8ff) ||
		(r >= 0xfff0 && r <= 0xffff) || // includes U+FFFD, what bad UTF-8 decodes to
		r > 0xffff // a surrogate pair in UTF-16
}

// splitPath returns the parent path and the last component of a path that
// contains a '/'. The parent of "/a" is "", ZooKeeper's alias of the root.
func splitPath(path string) (parent, name string) {
	i := strings.LastIndexByte(path, '/')
	return path[:i], path[i+1:]
}

// isSpecialPath reports the nodes ZooKeeper never lets a client delete.
func isSpecialPath(path string) bool {
	switch path {
	case "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config":
		return true
	}
	return false
}

// appendSequence appends Java's %010d rendering of v.
func appendSequence(dst []byte, v int32) []byte {
	n := int64(v)
	width := 10
	if n < 0 {
		dst = append(dst, '-')
		n = -n
		width = 9
	}
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], n, 10)
	for i := len(d); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// utf16Len is Java's String.length(), which ZooKeeper's data size
// accounting uses.
func utf16Len(s string) int64 {
	n := int64(0)
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r > 0xffff {
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n
}
