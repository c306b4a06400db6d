package await

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	Until(t, 10*time.Second, "three calls", func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("%d calls", calls)
	}
}

// fatalRecorder keeps what Fatalf said and ends the goroutine as
// testing.T's Fatalf does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestUntilFailsWithTheLastAnswer(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		Until(rec, 300*time.Millisecond, "a leader", func() error { return errors.New("no leader yet") })
	}()
	<-done
	if !strings.Contains(rec.msg, "a leader: not after 300ms: no leader yet") {
		t.Fatalf("Fatalf said %q", rec.msg)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("gave up after %v", time.Since(start))
	}
}
