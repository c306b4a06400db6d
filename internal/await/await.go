// Package await is the bounded wait of Runnel's process-level tests: a
// condition is checked until it holds or its time is up, and then the test
// fails with the condition's last answer. Every wait is bounded; none
// hides a flaky result behind a retry, since what is awaited is a state
// the system must reach (a leader elected, a span exported), not a second
// chance for an operation that failed.
package await

import (
	"testing"
	"time"
)

// Interval is how often Until checks its condition.
const Interval = 100 * time.Millisecond

// Until calls f every Interval until it returns nil, and fails t with
// what and f's last error once timeout has passed.
func Until(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(Interval)
	}
}
