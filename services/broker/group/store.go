package group

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/replica"
)

// Topic is the internal topic that holds committed offsets and group
// metadata.
const Topic = "__consumer_offsets"

// Store is where the coordinator keeps its records: the partitions of
// __consumer_offsets that this broker leads.
type Store interface {
	// Append writes records to a partition as one batch and returns once
	// they are committed (acks=all), with the offset of the first record.
	// Errors are Kafka errors (*kerr.Error) the coordinator can hand to
	// clients: NOT_COORDINATOR when the partition is not led here,
	// COORDINATOR_NOT_AVAILABLE when it cannot be written now.
	Append(ctx context.Context, partition int32, records []replica.KeyValue) (int64, error)
	// Load calls fn with every record of a partition, oldest first, up to
	// the high watermark. Key and value are valid only during the call.
	Load(ctx context.Context, partition int32, fn func(key, value []byte) error) error
}

// ReplicaStore is the Store over the partitions this broker hosts.
type ReplicaStore struct {
	Replicas *replica.Manager
	// Now stamps the records; nil means time.Now.
	Now func() time.Time
	// CommitTimeout bounds the wait for the ISR to have a write
	// (offsets.commit.timeout.ms); zero means 5 s.
	CommitTimeout time.Duration
}

var _ Store = (*ReplicaStore)(nil)

func (s *ReplicaStore) partition(p int32) (*replica.Partition, error) {
	rp := s.Replicas.Partition(Topic, p)
	if rp == nil || !rp.IsLeader() {
		return nil, kerr.NotCoordinator
	}
	return rp, nil
}

// Append writes the records as one uncompressed batch.
func (s *ReplicaStore) Append(ctx context.Context, partition int32, records []replica.KeyValue) (int64, error) {
	rp, err := s.partition(partition)
	if err != nil {
		return -1, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := now().UnixMilli()
	batch := replica.BuildBatch(ts, records)
	info := replica.BatchInfo{Records: int32(len(records)), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		LastDelta: int32(len(records) - 1), MaxTimestamp: ts}
	res, err := rp.Append(ctx, batch, info, -1, ts)
	if err == nil && !rp.Replicated(res.LastOffset) {
		timeout := s.CommitTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err = rp.WaitReplicated(wctx, res.LastOffset, res.LeaderEpoch)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return -1, fmt.Errorf("%w: %v", kerr.RequestTimedOut, err)
		}
	}
	if err != nil {
		// Kafka's mapping of a failed write of the group coordinator.
		switch {
		case errors.Is(err, replica.ErrNotLeader), errors.Is(err, storage.ErrClosed):
			return -1, fmt.Errorf("%w: %v", kerr.NotCoordinator, err)
		case errors.Is(err, storage.ErrBatchTooLarge):
			return -1, fmt.Errorf("%w: %v", kerr.InvalidCommitOffsetSize, err)
		default:
			return -1, fmt.Errorf("%w: %v", kerr.CoordinatorNotAvailable, err)
		}
	}
	return res.BaseOffset, nil
}

// Load reads the partition from its log start offset to its log end
// offset, as Kafka's group coordinator loads: a new leader's high
// watermark may still lag records every ISR member has.
func (s *ReplicaStore) Load(ctx context.Context, partition int32, fn func(key, value []byte) error) error {
	rp, err := s.partition(partition)
	if err != nil {
		return err
	}
	offset := rp.LogStartOffset()
	for offset < rp.LogEndOffset() {
		r, err := rp.Read(ctx, offset, 1<<20, replica.ToLogEnd)
		if err != nil {
			return fmt.Errorf("group: load %s-%d at %d: %w", Topic, partition, offset, err)
		}
		if len(r.Batches) == 0 {
			break
		}
		it := storage.Batches(r.Batches, false)
		for it.Next() {
			err := replica.EachRecord(it.Batch(), func(rec replica.Record) error {
				if rec.Offset < offset {
					return nil
				}
				return fn(rec.Key, rec.Value)
			})
			if err != nil {
				return fmt.Errorf("group: load %s-%d: %w", Topic, partition, err)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("group: load %s-%d: %w", Topic, partition, err)
		}
		offset = r.NextOffset
	}
	return nil
}
