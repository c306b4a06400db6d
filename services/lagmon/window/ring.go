// Package window keeps lagmon's sliding windows, with Burrow's storage
// semantics: for every consumer-group partition the last `intervals` offset
// commits (each with the lag measured when it was stored), and for every
// topic partition the last `intervals` log-end offsets.
//
// The rules that shape a commit window are Burrow's:
//
//   - commits are ordered by their position in the commit stream (the offset
//     of the record in __consumer_offsets, or the arrival order of an event),
//     not by arrival; a late commit is inserted where it belongs, and one that
//     is older than a full window is dropped;
//   - a commit that arrives less than min-distance after the previous one
//     replaces it (keeping the previous timestamp), so a consumer committing
//     very often still fills the window at the min-distance pace;
//   - the lag of a commit is measured against the newest log-end offset when
//     the commit is appended; an inserted (back-filled) commit has no lag;
//   - a commit is dropped when its topic partition has no log-end offset yet;
//   - a group whose last commit is older than expire-group is forgotten.
package window

import (
	"encoding/json"
	"strconv"
)

// Commit is one stored offset commit of a group partition.
type Commit struct {
	// Offset is the committed offset (the next record the group will read).
	Offset int64
	// Order places the commit in the commit stream; later commits have
	// larger orders.
	Order int64
	// Timestamp is the commit time in Unix milliseconds.
	Timestamp int64
	// Lag is the log-end offset minus Offset when the commit was stored;
	// meaningful only when HasLag is set.
	Lag uint64
	// HasLag is false for commits inserted out of order, whose lag was never
	// measured (Burrow reports them as "lag": null).
	HasLag bool
}

// MarshalJSON writes Burrow's ConsumerOffset shape:
// {"offset":N,"timestamp":N,"lag":N|null}.
func (c Commit) MarshalJSON() ([]byte, error) {
	return c.AppendJSON(make([]byte, 0, 64)), nil
}

// AppendJSON appends the JSON form of c to dst without reflection; the API
// writes many of these.
func (c Commit) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"offset":`...)
	dst = strconv.AppendInt(dst, c.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, c.Timestamp, 10)
	dst = append(dst, `,"lag":`...)
	if c.HasLag {
		dst = strconv.AppendUint(dst, c.Lag, 10)
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, '}')
}

// UnmarshalJSON reads the shape MarshalJSON writes.
func (c *Commit) UnmarshalJSON(b []byte) error {
	var v struct {
		Offset    int64   `json:"offset"`
		Timestamp int64   `json:"timestamp"`
		Lag       *uint64 `json:"lag"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Commit{Offset: v.Offset, Timestamp: v.Timestamp}
	if v.Lag != nil {
		c.Lag, c.HasLag = *v.Lag, true
	}
	return nil
}

// Ring is the commit window of one group partition: at most Size commits,
// sorted by Order, oldest first. The zero value is unusable; use NewRing.
type Ring struct {
	size    int
	entries []Commit
}

// NewRing returns an empty window holding at most size commits (at least 1).
func NewRing(size int) *Ring {
	size = max(size, 1)
	return &Ring{size: size, entries: make([]Commit, 0, size)}
}

// Size is the number of slots: Burrow's `intervals`.
func (r *Ring) Size() int { return r.size }

// Len is the number of stored commits.
func (r *Ring) Len() int { return len(r.entries) }

// Entries returns the stored commits, oldest first. The slice is shared:
// callers copy it before releasing the store's lock.
func (r *Ring) Entries() []Commit { return r.entries }

// Last returns the newest commit.
func (r *Ring) Last() (Commit, bool) {
	if len(r.entries) == 0 {
		return Commit{}, false
	}
	return r.entries[len(r.entries)-1], true
}

// Add stores c following Burrow's rules and reports whether c became the
// newest commit (an append, as opposed to a back-filled insert or a drop).
// logEnd is the newest log-end offset of the partition, used to measure the
// lag of an appended commit; minDistance is in milliseconds.
func (r *Ring) Add(c Commit, logEnd int64, minDistance int64) (appended bool) {
	n := len(r.entries)
	pos := n
	if n > 0 {
		if n == r.size && r.entries[0].Order >= c.Order {
			return false // older than everything in a full window
		}
		if r.entries[n-1].Order >= c.Order {
			// Back-fill: find the first stored commit not older than c.
			pos = 0
			for pos < n && r.entries[pos].Order < c.Order {
				pos++
			}
			if r.entries[pos].Order == c.Order {
				return false // already stored
			}
		}
	}
	appended = pos == n
	c.Lag, c.HasLag = 0, false
	if appended {
		c.HasLag = true
		if logEnd > c.Offset {
			// The log-end offset is polled, so a commit may be ahead of the
			// last one seen: that counts as no lag.
			c.Lag = uint64(logEnd - c.Offset)
		}
	}
	// Commits closer than min-distance to the previous one replace it, with
	// the previous timestamp, so that frequent committers still move the
	// window forward at the min-distance pace.
	if pos > 0 {
		prev := &r.entries[pos-1]
		if prev.Order < c.Order && c.Timestamp-prev.Timestamp < minDistance {
			c.Timestamp = prev.Timestamp
			*prev = c
			return appended
		}
	}
	if n == r.size {
		// Full: the oldest commit leaves to make room.
		copy(r.entries[0:], r.entries[1:pos])
		r.entries[pos-1] = c
		return appended
	}
	r.entries = append(r.entries, Commit{})
	copy(r.entries[pos+1:], r.entries[pos:n])
	r.entries[pos] = c
	return appended
}

// LogEnd is one polled log-end offset of a topic partition.
type LogEnd struct {
	Offset    int64 // the offset the next produced record will get
	Timestamp int64 // Unix milliseconds when it was observed
}

// LogEndRing holds the last Size log-end offsets of a topic partition.
type LogEndRing struct {
	entries []LogEnd // circular
	next    int
	full    bool
}

// NewLogEndRing returns an empty ring of size slots (at least 1).
func NewLogEndRing(size int) *LogEndRing {
	return &LogEndRing{entries: make([]LogEnd, max(size, 1))}
}

// Add records a new log-end offset, forgetting the oldest when full.
func (r *LogEndRing) Add(e LogEnd) {
	r.entries[r.next] = e
	r.next++
	if r.next == len(r.entries) {
		r.next, r.full = 0, true
	}
}

// Latest returns the newest log-end offset.
func (r *LogEndRing) Latest() (LogEnd, bool) {
	if !r.full && r.next == 0 {
		return LogEnd{}, false
	}
	i := r.next - 1
	if i < 0 {
		i = len(r.entries) - 1
	}
	return r.entries[i], true
}

// AppendTo appends the stored log-end offsets, oldest first, to dst.
func (r *LogEndRing) AppendTo(dst []LogEnd) []LogEnd {
	if r.full {
		dst = append(dst, r.entries[r.next:]...)
	}
	return append(dst, r.entries[:r.next]...)
}
