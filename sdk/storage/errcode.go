package storage

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage/storagev1"
)

// ErrUnavailable means a storage plugin process was not there to answer:
// it died during the call, it hung and was killed, it is being restarted
// after a crash, or it could not be started. It wraps ErrClosed, so the broker answers
// NOT_LEADER_OR_FOLLOWER (6), which clients retry after refreshing their
// metadata; by then the host has restarted the plugin and reopened the
// partition. An Append that fails this way may or may not have been stored
// (the plugin may have died after writing); it was not acknowledged, so a
// client's retry can at worst duplicate it, as with any Kafka retry.
var ErrUnavailable = fmt.Errorf("%w: storage plugin unavailable", ErrClosed)

// sentinels maps the wire error codes to the package's sentinel errors.
// Specific batch errors come before ErrInvalidBatch, which they wrap, so
// that toCode finds the most precise one.
var sentinels = []struct {
	code storagev1.ErrorCode
	err  error
	grpc codes.Code
}{
	{storagev1.ErrorCode_ERROR_CODE_SHORT_BATCH, ErrShortBatch, codes.InvalidArgument},
	{storagev1.ErrorCode_ERROR_CODE_BATCH_MAGIC, ErrBatchMagic, codes.InvalidArgument},
	{storagev1.ErrorCode_ERROR_CODE_BATCH_LENGTH, ErrBatchLength, codes.InvalidArgument},
	{storagev1.ErrorCode_ERROR_CODE_BATCH_CRC, ErrBatchCRC, codes.InvalidArgument},
	{storagev1.ErrorCode_ERROR_CODE_RECORDS, ErrRecords, codes.InvalidArgument},
	{storagev1.ErrorCode_ERROR_CODE_INVALID_BATCH, ErrInvalidBatch, codes.InvalidArgument},
	{storagev1.ErrorCode_ERROR_CODE_OFFSET_OUT_OF_RANGE, ErrOffsetOutOfRange, codes.OutOfRange},
	{storagev1.ErrorCode_ERROR_CODE_NOT_CONTIGUOUS, ErrNotContiguous, codes.FailedPrecondition},
	{storagev1.ErrorCode_ERROR_CODE_BATCH_TOO_LARGE, ErrBatchTooLarge, codes.InvalidArgument},
	{storagev1.ErrorCode_ERROR_CODE_CORRUPT, ErrCorrupt, codes.DataLoss},
	{storagev1.ErrorCode_ERROR_CODE_CLOSED, ErrClosed, codes.FailedPrecondition},
	{storagev1.ErrorCode_ERROR_CODE_ALREADY_OPEN, ErrAlreadyOpen, codes.AlreadyExists},
	{storagev1.ErrorCode_ERROR_CODE_INVALID_PARTITION, ErrInvalidPartition, codes.InvalidArgument},
	{storagev1.ErrorCode_ERROR_CODE_INVALID_CONFIG, ErrInvalidConfig, codes.InvalidArgument},
}

// toStatus is the plugin side: it turns a backend's error into a gRPC
// status naming its sentinel. Errors without a sentinel get code Aborted
// rather than Unknown or Internal, which hosts read as a broken connection.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			st, derr := status.New(s.grpc, err.Error()).WithDetails(&storagev1.Error{Code: s.code})
			if derr != nil {
				return status.Error(s.grpc, err.Error())
			}
			return st.Err()
		}
	}
	return status.Error(codes.Aborted, err.Error())
}

// remoteError is a plugin's error rebuilt on the host: the plugin's own
// message, matching the sentinel it named.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// fromStatus is the host side: it turns the error of a call into one the
// broker can map, matching the package's sentinels as the backend's own
// error did, ErrUnavailable when the process was not there, and the
// context's error when the call's context ended.
func fromStatus(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("storage plugin: %s: %w", op, err)
	}
	switch {
	case errors.Is(err, plugin.ErrCrashed), errors.Is(err, plugin.ErrStart), errors.Is(err, plugin.ErrHung):
		return fmt.Errorf("storage plugin: %s: %w: %w", op, ErrUnavailable, err)
	case errors.Is(err, plugin.ErrClosed):
		return fmt.Errorf("storage plugin: %s: %w: %w", op, ErrClosed, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("storage plugin: %s: %w", op, err)
	}
	for _, d := range st.Details() {
		if e, ok := d.(*storagev1.Error); ok {
			for _, s := range sentinels {
				if s.code == e.Code {
					return &remoteError{msg: st.Message(), sentinel: s.err}
				}
			}
		}
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded:
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("storage plugin: %s: %s: %w", op, st.Message(), cerr)
		}
		// The call ended while its context lives on: the plugin's side of
		// it was cut, which only a broken connection does.
		return fmt.Errorf("storage plugin: %s: %w: %s", op, ErrUnavailable, st.Message())
	case codes.Unavailable, codes.Internal, codes.Unknown:
		// gRPC's own codes for a connection that failed (a plugin's answer
		// carries a detail, or code Aborted): the process is dying or gone,
		// and the supervisor had not seen it exit yet.
		return fmt.Errorf("storage plugin: %s: %w: %s", op, ErrUnavailable, st.Message())
	}
	return fmt.Errorf("storage plugin: %s: %s", op, st.Message())
}
