package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/runnel-io/runnel/sdk/plugin"
)

// TestErrorsCrossTheBoundary checks that every sentinel a backend reports
// is matched the same way on the host, with the backend's message intact.
func TestErrorsCrossTheBoundary(t *testing.T) {
	for _, s := range sentinels {
		orig := fmt.Errorf("file: append t-0 at 12: %w", s.err)
		st := toStatus(orig)
		if code := status.Code(st); code != s.grpc {
			t.Errorf("%v: gRPC code %v, want %v", s.err, code, s.grpc)
		}
		got := fromStatus(context.Background(), "append", st)
		if !errors.Is(got, s.err) {
			t.Errorf("%v: host error %v does not match it", s.err, got)
		}
		if got.Error() != orig.Error() {
			t.Errorf("%v: message %q, want %q", s.err, got.Error(), orig.Error())
		}
		// The most precise sentinel survives, and so does what it wraps.
		if errors.Is(s.err, ErrInvalidBatch) && !errors.Is(got, ErrInvalidBatch) {
			t.Errorf("%v lost ErrInvalidBatch", s.err)
		}
	}
}

func TestErrorsWithoutSentinel(t *testing.T) {
	st := toStatus(errors.New("disk on fire"))
	if code := status.Code(st); code != codes.Aborted {
		t.Fatalf("code %v: a plain error must not look like a broken connection", code)
	}
	got := fromStatus(context.Background(), "flush", st)
	if got == nil || errors.Is(got, ErrClosed) || errors.Is(got, ErrCorrupt) {
		t.Fatalf("plain error became %v", got)
	}
}

func TestContextErrorsCrossTheBoundary(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		err  error
		code codes.Code
	}{{context.Canceled, codes.Canceled}, {context.DeadlineExceeded, codes.DeadlineExceeded}} {
		st := toStatus(fmt.Errorf("read: %w", c.err))
		if status.Code(st) != c.code {
			t.Fatalf("%v: code %v", c.err, status.Code(st))
		}
		// The caller's context ended too: its error.
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		if c.err == context.DeadlineExceeded {
			cctx, cancel = context.WithDeadline(context.Background(), time.Now())
			defer cancel()
		}
		if got := fromStatus(cctx, "read", st); !errors.Is(got, c.err) {
			t.Fatalf("%v: host error %v", c.err, got)
		}
		// It did not: the connection was cut under the call.
		if got := fromStatus(context.Background(), "read", st); !errors.Is(got, ErrUnavailable) {
			t.Fatalf("%v with a live context: host error %v", c.err, got)
		}
	}
	// A call cut short by the host's own context reports that context's error.
	if got := fromStatus(ctx, "read", status.Error(codes.Canceled, "context canceled")); !errors.Is(got, context.Canceled) {
		t.Fatalf("host cancellation: %v", got)
	}
}

func TestProcessFailuresAreRetriable(t *testing.T) {
	crash := &plugin.CrashError{Kind: plugin.KindStorage, Name: "file", Err: status.Error(codes.Unavailable, "connection reset")}
	broken := []error{status.Error(codes.Internal, "stream terminated by RST_STREAM"), status.Error(codes.Unknown, "EOF")}
	hung := fmt.Errorf("%w: no answer: %w", plugin.ErrHung, status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	for _, err := range append(broken, crash, hung, fmt.Errorf("x: %w", plugin.ErrStart), status.Error(codes.Unavailable, "gone")) {
		got := fromStatus(context.Background(), "append", err)
		if !errors.Is(got, ErrUnavailable) || !errors.Is(got, ErrClosed) {
			t.Errorf("%v became %v, want ErrUnavailable (and so ErrClosed)", err, got)
		}
	}
	if got := fromStatus(context.Background(), "append", fmt.Errorf("x: %w", plugin.ErrClosed)); !errors.Is(got, ErrClosed) {
		t.Errorf("a closed supervisor gave %v", got)
	}
}
