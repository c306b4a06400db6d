// Package evaluate judges consumer groups with Burrow's rules.
//
// A partition's status comes from its commit window (see package window) and
// its current lag, checked in Burrow's order:
//
//  1. current lag zero (at most allowed-lag): OK, nothing else is checked;
//  2. STOP: the time since the newest commit exceeds the span of the window,
//     unless a recent log-end offset shows the consumer was caught up;
//  3. if the lag was zero anywhere in the window: OK;
//  4. REWIND: a committed offset went backwards;
//  5. STALL: the committed offset never moved;
//  6. WARN: the lag never decreased;
//  7. otherwise OK.
//
// A partition whose window is less complete than minimum-complete is OK. The
// group's status is the worst of its partitions, with STOP, STALL and REWIND
// reported as ERR. Beyond Burrow, every partition also carries its lag in
// seconds and an estimate of when it will catch up.
package evaluate

import (
	"fmt"
	"strings"
)

// Status is Burrow's status constant; the numbers are Burrow's too (they are
// the value of the burrow_kafka_consumer_status metric).
type Status int

// The statuses, from least to most severe.
const (
	// NotFound: the group does not exist (never a partition status).
	NotFound Status = iota
	// OK: the partition or group is fine.
	OK
	// Warn: the consumer is moving but falling behind.
	Warn
	// Err: a group with a STOP, STALL or REWIND partition (never a
	// partition status).
	Err
	// Stop: the consumer stopped committing while there is lag.
	Stop
	// Stall: the consumer commits, but the offset does not move, with lag.
	Stall
	// Rewind: the committed offset went backwards.
	Rewind
)

var statusNames = [...]string{"NOTFOUND", "OK", "WARN", "ERR", "STOP", "STALL", "REWIND"}

// String returns Burrow's name of the status.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "UNKNOWN"
}

// MarshalText writes the status as Burrow's name (JSON uses it).
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status name (case-insensitive, "WARNING" and
// "ERROR" accepted) or Burrow's number.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseStatus reads a status name or number.
func ParseStatus(text string) (Status, error) {
	t := strings.ToUpper(strings.TrimSpace(text))
	switch t {
	case "WARNING":
		return Warn, nil
	case "ERROR":
		return Err, nil
	}
	for i, name := range statusNames {
		if t == name || t == fmt.Sprint(i) {
			return Status(i), nil
		}
	}
	return NotFound, fmt.Errorf("unknown status %q: use one of %s", text, strings.Join(statusNames[:], ", "))
}
