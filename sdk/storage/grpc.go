package storage

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage/storagev1"
)

// grpcServer is the plugin side of the protocol: it serves one Backend and
// keeps the open logs by handle. Handles are never reused within a process,
// so a stale handle (after CloseLog or Delete) always answers ErrClosed.
type grpcServer struct {
	storagev1.UnimplementedStorageServer
	backend Backend
	info    plugin.Description

	mu     sync.RWMutex
	logs   map[uint64]serverLog
	next   uint64
	closed bool
}

type serverLog struct {
	log Log
	id  PartitionID
}

func newGRPCServer(b Backend, info plugin.Description) *grpcServer {
	return &grpcServer{backend: b, info: info, logs: map[uint64]serverLog{}}
}

func (s *grpcServer) log(h uint64) (Log, error) {
	s.mu.RLock()
	l, ok := s.logs[h]
	s.mu.RUnlock()
	if !ok {
		return nil, toStatus(fmt.Errorf("log handle %d: %w", h, ErrClosed))
	}
	return l.log, nil
}

func (s *grpcServer) Describe(context.Context, *storagev1.DescribeRequest) (*storagev1.DescribeResponse, error) {
	d := s.info
	r := &storagev1.DescribeResponse{Name: d.Name, Version: d.Version, Capabilities: d.Capabilities, Summary: d.Summary}
	for _, p := range d.Protocols {
		r.Protocols = append(r.Protocols, int32(p))
	}
	return r, nil
}

func (s *grpcServer) Open(ctx context.Context, req *storagev1.OpenRequest) (*storagev1.OpenResponse, error) {
	id := PartitionID{Topic: req.GetPartition().GetTopic(), Partition: req.GetPartition().GetPartition()}
	l, err := s.backend.Open(ctx, id, configFromProto(req.GetConfig()))
	if err != nil {
		return nil, toStatus(err)
	}
	s.mu.Lock()
	s.next++
	h := s.next
	s.logs[h] = serverLog{log: l, id: id}
	s.mu.Unlock()
	return &storagev1.OpenResponse{Log: h, StartOffset: l.StartOffset(), EndOffset: l.EndOffset()}, nil
}

func (s *grpcServer) Delete(ctx context.Context, req *storagev1.DeleteRequest) (*storagev1.DeleteResponse, error) {
	id := PartitionID{Topic: req.GetPartition().GetTopic(), Partition: req.GetPartition().GetPartition()}
	if err := s.backend.Delete(ctx, id); err != nil {
		return nil, toStatus(err)
	}
	// The backend closed the partition's open log; forget its handle.
	s.mu.Lock()
	for h, l := range s.logs {
		if l.id == id {
			delete(s.logs, h)
		}
	}
	s.mu.Unlock()
	return &storagev1.DeleteResponse{}, nil
}

func (s *grpcServer) Shutdown(context.Context, *storagev1.ShutdownRequest) (*storagev1.ShutdownResponse, error) {
	if err := s.close(); err != nil {
		return nil, toStatus(err)
	}
	return &storagev1.ShutdownResponse{}, nil
}

// close closes the backend once: on Shutdown, or when the process is asked
// to stop without one.
func (s *grpcServer) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.logs = map[uint64]serverLog{}
	return s.backend.Close()
}

func (s *grpcServer) Append(ctx context.Context, req *storagev1.AppendRequest) (*storagev1.AppendResponse, error) {
	l, err := s.log(req.GetLog())
	if err != nil {
		return nil, err
	}
	info, err := l.Append(ctx, req.GetBatches())
	if err != nil {
		return nil, toStatus(err)
	}
	return &storagev1.AppendResponse{
		FirstOffset: info.FirstOffset, LastOffset: info.LastOffset, MaxTimestamp: info.MaxTimestamp,
		OffsetOfMaxTimestamp: info.OffsetOfMaxTimestamp, LogStartOffset: info.LogStartOffset,
		Batches: info.Batches, Records: info.Records, Bytes: info.Bytes,
		StartOffset: l.StartOffset(), EndOffset: l.EndOffset(),
	}, nil
}

func (s *grpcServer) Read(ctx context.Context, req *storagev1.ReadRequest) (*storagev1.ReadResponse, error) {
	l, err := s.log(req.GetLog())
	if err != nil {
		return nil, err
	}
	r, err := l.Read(ctx, req.GetOffset(), req.GetMaxBytes(), req.GetMaxOffset())
	if err != nil {
		return nil, toStatus(err)
	}
	return &storagev1.ReadResponse{Batches: r.Batches, NextOffset: r.NextOffset, StartOffset: r.StartOffset, EndOffset: r.EndOffset}, nil
}

func (s *grpcServer) OffsetForTimestamp(ctx context.Context, req *storagev1.OffsetForTimestampRequest) (*storagev1.OffsetForTimestampResponse, error) {
	l, err := s.log(req.GetLog())
	if err != nil {
		return nil, err
	}
	off, ts, err := l.OffsetForTimestamp(ctx, req.GetTimestamp())
	if err != nil {
		return nil, toStatus(err)
	}
	return &storagev1.OffsetForTimestampResponse{Offset: off, Timestamp: ts, StartOffset: l.StartOffset(), EndOffset: l.EndOffset()}, nil
}

// logCall runs a log method that answers only with an error and the log's
// offsets afterwards.
func (s *grpcServer) logCall(h uint64, fn func(Log) error) (*storagev1.LogResponse, error) {
	l, err := s.log(h)
	if err != nil {
		return nil, err
	}
	if err := fn(l); err != nil {
		return nil, toStatus(err)
	}
	return &storagev1.LogResponse{StartOffset: l.StartOffset(), EndOffset: l.EndOffset()}, nil
}

func (s *grpcServer) Truncate(ctx context.Context, req *storagev1.OffsetRequest) (*storagev1.LogResponse, error) {
	return s.logCall(req.GetLog(), func(l Log) error { return l.Truncate(ctx, req.GetOffset()) })
}

func (s *grpcServer) DeleteBefore(ctx context.Context, req *storagev1.OffsetRequest) (*storagev1.LogResponse, error) {
	return s.logCall(req.GetLog(), func(l Log) error { return l.DeleteBefore(ctx, req.GetOffset()) })
}

func (s *grpcServer) Roll(ctx context.Context, req *storagev1.LogRequest) (*storagev1.LogResponse, error) {
	return s.logCall(req.GetLog(), func(l Log) error { return l.Roll(ctx) })
}

func (s *grpcServer) Flush(ctx context.Context, req *storagev1.LogRequest) (*storagev1.LogResponse, error) {
	return s.logCall(req.GetLog(), func(l Log) error { return l.Flush(ctx) })
}

func (s *grpcServer) CloseLog(ctx context.Context, req *storagev1.LogRequest) (*storagev1.LogResponse, error) {
	s.mu.Lock()
	l, ok := s.logs[req.GetLog()]
	delete(s.logs, req.GetLog())
	s.mu.Unlock()
	if !ok {
		return nil, toStatus(fmt.Errorf("log handle %d: %w", req.GetLog(), ErrClosed))
	}
	if err := l.log.Close(); err != nil {
		return nil, toStatus(err)
	}
	return &storagev1.LogResponse{StartOffset: l.log.StartOffset(), EndOffset: l.log.EndOffset()}, nil
}

func (s *grpcServer) Segments(_ context.Context, req *storagev1.LogRequest) (*storagev1.SegmentsResponse, error) {
	l, err := s.log(req.GetLog())
	if err != nil {
		return nil, err
	}
	segs := l.Segments()
	out := &storagev1.SegmentsResponse{Segments: make([]*storagev1.SegmentInfo, len(segs)), StartOffset: l.StartOffset(), EndOffset: l.EndOffset()}
	for i, sg := range segs {
		out.Segments[i] = &storagev1.SegmentInfo{
			BaseOffset: sg.BaseOffset, NextOffset: sg.NextOffset, SizeBytes: sg.SizeBytes, MaxTimestamp: sg.MaxTimestamp,
			CreatedUnixNano: unixNano(sg.Created), LastModifiedUnixNano: unixNano(sg.LastModified), Active: sg.Active,
		}
	}
	return out, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func configToProto(c Config) *storagev1.Config {
	return &storagev1.Config{
		Dir: c.Dir, SegmentBytes: c.SegmentBytes, SegmentMs: c.SegmentMs, IndexIntervalBytes: c.IndexIntervalBytes,
		MaxIndexBytes: c.MaxIndexBytes, FileDeleteDelayMs: c.FileDeleteDelayMs, FlushMessages: c.FlushMessages,
	}
}

func configFromProto(c *storagev1.Config) Config {
	return Config{
		Dir: c.GetDir(), SegmentBytes: c.GetSegmentBytes(), SegmentMs: c.GetSegmentMs(), IndexIntervalBytes: c.GetIndexIntervalBytes(),
		MaxIndexBytes: c.GetMaxIndexBytes(), FileDeleteDelayMs: c.GetFileDeleteDelayMs(), FlushMessages: c.GetFlushMessages(),
	}
}

// client is the host side of one connection to a plugin process: the
// protocol's calls, one method each, with errors turned back into the
// package's sentinels. A new client is made for every start of the
// process, which is how a log notices that its handle belongs to a process
// that is gone.
type client struct {
	c storagev1.StorageClient
}

func (c *client) describe(ctx context.Context) (plugin.Description, error) {
	r, err := c.c.Describe(ctx, &storagev1.DescribeRequest{})
	if err != nil {
		return plugin.Description{}, fromStatus(ctx, "describe", err)
	}
	d := plugin.Description{Name: r.GetName(), Kind: plugin.KindStorage, Version: r.GetVersion(), Capabilities: r.GetCapabilities(), Summary: r.GetSummary()}
	for _, p := range r.GetProtocols() {
		d.Protocols = append(d.Protocols, int(p))
	}
	return d, nil
}

func partitionToProto(p PartitionID) *storagev1.PartitionID {
	return &storagev1.PartitionID{Topic: p.Topic, Partition: p.Partition}
}

// open opens a partition and returns its handle and offsets.
func (c *client) open(ctx context.Context, p PartitionID, cfg Config) (uint64, offsets, error) {
	r, err := c.c.Open(ctx, &storagev1.OpenRequest{Partition: partitionToProto(p), Config: configToProto(cfg)})
	if err != nil {
		return 0, offsets{}, err
	}
	return r.GetLog(), offsets{r.GetStartOffset(), r.GetEndOffset()}, nil
}

func (c *client) delete(ctx context.Context, p PartitionID) error {
	_, err := c.c.Delete(ctx, &storagev1.DeleteRequest{Partition: partitionToProto(p)})
	return err
}

func (c *client) shutdown(ctx context.Context) error {
	_, err := c.c.Shutdown(ctx, &storagev1.ShutdownRequest{})
	return err
}

// offsets are a log's start and end offsets as a call saw them.
type offsets struct{ start, end int64 }

func (c *client) append(ctx context.Context, h uint64, batches []byte) (AppendInfo, offsets, error) {
	r, err := c.c.Append(ctx, &storagev1.AppendRequest{Log: h, Batches: batches})
	if err != nil {
		return AppendInfo{}, offsets{}, err
	}
	return AppendInfo{
		FirstOffset: r.GetFirstOffset(), LastOffset: r.GetLastOffset(), MaxTimestamp: r.GetMaxTimestamp(),
		OffsetOfMaxTimestamp: r.GetOffsetOfMaxTimestamp(), LogStartOffset: r.GetLogStartOffset(),
		Batches: r.GetBatches(), Records: r.GetRecords(), Bytes: r.GetBytes(),
	}, offsets{r.GetStartOffset(), r.GetEndOffset()}, nil
}

func (c *client) read(ctx context.Context, h uint64, offset int64, maxBytes int32, maxOffset int64) (ReadResult, error) {
	r, err := c.c.Read(ctx, &storagev1.ReadRequest{Log: h, Offset: offset, MaxBytes: maxBytes, MaxOffset: maxOffset})
	if err != nil {
		return ReadResult{NextOffset: offset}, err
	}
	return ReadResult{Batches: r.GetBatches(), NextOffset: r.GetNextOffset(), StartOffset: r.GetStartOffset(), EndOffset: r.GetEndOffset()}, nil
}

func (c *client) offsetForTimestamp(ctx context.Context, h uint64, ts int64) (int64, int64, error) {
	r, err := c.c.OffsetForTimestamp(ctx, &storagev1.OffsetForTimestampRequest{Log: h, Timestamp: ts})
	if err != nil {
		return -1, -1, err
	}
	return r.GetOffset(), r.GetTimestamp(), nil
}

func (c *client) truncate(ctx context.Context, h uint64, offset int64) (offsets, error) {
	r, err := c.c.Truncate(ctx, &storagev1.OffsetRequest{Log: h, Offset: offset})
	return logOffsets(r), err
}

func (c *client) deleteBefore(ctx context.Context, h uint64, offset int64) (offsets, error) {
	r, err := c.c.DeleteBefore(ctx, &storagev1.OffsetRequest{Log: h, Offset: offset})
	return logOffsets(r), err
}

func (c *client) roll(ctx context.Context, h uint64) (offsets, error) {
	r, err := c.c.Roll(ctx, &storagev1.LogRequest{Log: h})
	return logOffsets(r), err
}

func (c *client) flush(ctx context.Context, h uint64) error {
	_, err := c.c.Flush(ctx, &storagev1.LogRequest{Log: h})
	return err
}

func (c *client) closeLog(ctx context.Context, h uint64) error {
	_, err := c.c.CloseLog(ctx, &storagev1.LogRequest{Log: h})
	return err
}

func (c *client) segments(ctx context.Context, h uint64) ([]SegmentInfo, error) {
	r, err := c.c.Segments(ctx, &storagev1.LogRequest{Log: h})
	if err != nil {
		return nil, err
	}
	out := make([]SegmentInfo, len(r.GetSegments()))
	for i, sg := range r.GetSegments() {
		out[i] = SegmentInfo{
			BaseOffset: sg.GetBaseOffset(), NextOffset: sg.GetNextOffset(), SizeBytes: sg.GetSizeBytes(), MaxTimestamp: sg.GetMaxTimestamp(),
			Created: fromUnixNano(sg.GetCreatedUnixNano()), LastModified: fromUnixNano(sg.GetLastModifiedUnixNano()), Active: sg.GetActive(),
		}
	}
	return out, nil
}

func logOffsets(r *storagev1.LogResponse) offsets {
	return offsets{r.GetStartOffset(), r.GetEndOffset()}
}
