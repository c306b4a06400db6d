package replica

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

// CleanerCheckpointFile lists, for each compacted partition, the offset
// up to which the log cleaner has cleaned it (Kafka's
// cleaner-offset-checkpoint, in the data directory): records above it are
// the "dirty" part the next cleaning looks at.
const CleanerCheckpointFile = "cleaner-offset-checkpoint"

// mapEntryBytes is what one key of the cleaner's offset map costs beyond
// the key itself, counted against log.cleaner.dedupe.buffer.size.
const mapEntryBytes = 48

// CleanStats describes one cleaning of one partition.
type CleanStats struct {
	Partition               storage.PartitionID
	FirstDirty, CleanedTo   int64 // the dirty range cleaned was [FirstDirty, CleanedTo)
	Segments                int
	BytesBefore, BytesAfter int64
	Took                    time.Duration
}

// CleanLogs runs the log cleaner once over the partitions this broker
// leads whose cleanup.policy includes compact, as Kafka's LogCleaner does:
//
//   - Only sealed segments below the high watermark are cleaned, and not
//     those with records newer than min.compaction.lag.ms; the active
//     segment never is.
//   - A log is cleaned when its dirty part (above the cleaner checkpoint)
//     is at least min.cleanable.dirty.ratio of the cleanable bytes, or
//     when a dirty record is older than max.compaction.lag.ms.
//   - The dirty part's keys go into an offset map (at most
//     log.cleaner.dedupe.buffer.size); then every cleanable segment keeps,
//     for each key, only the record at the map's latest offset, at its
//     original offset (records of keys the map does not know stay: they
//     were the latest at the last cleaning).
//   - Tombstones (null values) stay while readers may still need to see
//     them: they go from segments already cleaned once and last modified
//     more than delete.retention.ms ago.
//   - Records without a key go, as in Kafka.
//
// Segments are rewritten one at a time through storage.Compactor, so
// produce and fetch carry on throughout. Logs whose storage cannot compact
// are left alone. It returns what it cleaned.
func (m *Manager) CleanLogs(ctx context.Context) []CleanStats {
	m.cleanMu.Lock()
	defer m.cleanMu.Unlock()
	if m.cleaned == nil {
		m.cleaned = map[storage.PartitionID]int64{}
		if data, err := os.ReadFile(filepath.Join(m.dataDir, CleanerCheckpointFile)); err == nil {
			if offs, err := ParseOffsets(data); err == nil {
				m.cleaned = offs
			} else {
				m.log.Warn("ignoring the cleaner checkpoint", "err", err)
			}
		}
	}
	parts := m.Partitions()
	sort.Slice(parts, func(i, j int) bool { return parts[i].id.String() < parts[j].id.String() })
	var out []CleanStats
	changed := false
	hosted := map[storage.PartitionID]bool{}
	for _, p := range parts {
		hosted[p.id] = true
		if ctx.Err() != nil {
			break
		}
		st, err := m.clean(ctx, p)
		if st != nil {
			out = append(out, *st)
			m.cleaned[p.id] = st.CleanedTo
			changed = true
			m.log.Info("cleaned log", "partition", p.id.String(), "dirty_from", st.FirstDirty, "to", st.CleanedTo,
				"segments", st.Segments, "bytes_before", st.BytesBefore, "bytes_after", st.BytesAfter, "took", st.Took.Round(time.Millisecond))
		}
		switch {
		case err == nil:
		case errors.Is(err, storage.ErrSegmentChanged), errors.Is(err, storage.ErrClosed), ctx.Err() != nil:
			m.log.Debug("log cleaning interrupted", "partition", p.id.String(), "err", err)
		default:
			m.log.Warn("log cleaning failed", "partition", p.id.String(), "err", err)
		}
	}
	for id := range m.cleaned {
		if !hosted[id] {
			delete(m.cleaned, id)
			changed = true
		}
	}
	if changed {
		if err := writeFileAtomic(filepath.Join(m.dataDir, CleanerCheckpointFile), FormatOffsets(m.cleaned)); err != nil {
			m.log.Warn("writing the cleaner checkpoint failed", "err", err)
		}
	}
	return out
}

// clean cleans one partition if it is due. Called with m.cleanMu held.
func (m *Manager) clean(ctx context.Context, p *Partition) (*CleanStats, error) {
	cfg := p.Config()
	if !cfg.Compact() || !p.IsLeader() || p.deleted.Load() {
		return nil, nil
	}
	l := p.Log()
	comp, ok := l.(storage.Compactor)
	if !ok {
		if !m.noCompactor[p.id] {
			// Warn once per broker, not once per partition of every
			// compacted topic.
			lvl := slog.LevelWarn
			if len(m.noCompactor) > 0 {
				lvl = slog.LevelDebug
			}
			m.noCompactor[p.id] = true
			m.log.Log(ctx, lvl, "the partition's storage cannot compact: compacted topics on it stay uncompacted", "partition", p.id.String())
		}
		return nil, nil
	}
	started := time.Now()
	now := m.now().UnixMilli()
	segs := l.Segments()
	hw := p.HighWatermark()
	n := 0
	for n < len(segs)-1 {
		s := segs[n]
		if s.NextOffset > hw || cfg.MinCompactionLagMs > 0 && s.MaxTimestamp >= 0 && now-s.MaxTimestamp < cfg.MinCompactionLagMs {
			break
		}
		n++
	}
	if n == 0 {
		return nil, nil
	}
	cleanable := segs[:n]
	firstDirty := max(m.cleaned[p.id], l.StartOffset())
	end := cleanable[n-1].NextOffset
	if firstDirty >= end {
		return nil, nil
	}
	var dirty, total int64
	forced := false
	for _, s := range cleanable {
		total += s.SizeBytes
		if s.NextOffset > firstDirty {
			dirty += s.SizeBytes
			if cfg.MaxCompactionLagMs > 0 && cfg.MaxCompactionLagMs < math.MaxInt64 && s.MaxTimestamp >= 0 && now-s.MaxTimestamp > cfg.MaxCompactionLagMs {
				forced = true
			}
		}
	}
	if total == 0 || float64(dirty)/float64(total) < cfg.MinCleanableDirtyRatio && !forced {
		return nil, nil
	}

	// The offset map: the latest offset of each key in the dirty part,
	// whole segments at a time, as many as the buffer holds.
	latest := map[string]int64{}
	var used int64
	for i, s := range cleanable {
		if s.NextOffset <= firstDirty {
			continue
		}
		err := m.scan(ctx, l, max(s.BaseOffset, firstDirty), s.NextOffset, func(r Record) {
			if r.Key == nil {
				return
			}
			if _, ok := latest[string(r.Key)]; !ok {
				used += int64(len(r.Key)) + mapEntryBytes
			}
			latest[string(r.Key)] = r.Offset
		})
		if err != nil {
			return nil, err
		}
		if used > m.broker.CleanerDedupeBufferSize && i < n-1 {
			end = s.NextOffset
			break
		}
	}

	st := &CleanStats{Partition: p.id, FirstDirty: firstDirty, CleanedTo: end}
	horizon := now - cfg.DeleteRetentionMs
	for _, s := range cleanable {
		if s.BaseOffset >= end {
			break
		}
		dropTombstones := s.NextOffset <= firstDirty && s.LastModified.UnixMilli() < horizon
		res, err := comp.Compact(ctx, s.BaseOffset, func(batch []byte) ([]byte, error) {
			return filterBatch(batch, func(r Record) bool {
				if r.Key == nil {
					return false
				}
				if off, ok := latest[string(r.Key)]; ok && r.Offset < off {
					return false
				}
				return r.Value != nil || !dropTombstones
			})
		})
		if err != nil {
			return nil, fmt.Errorf("replica: clean %s segment %d: %w", p.id, s.BaseOffset, err)
		}
		st.Segments++
		st.BytesBefore += res.BytesBefore
		st.BytesAfter += res.BytesAfter
	}
	st.Took = time.Since(started)
	return st, nil
}

// scan calls fn with every record of l in [from, to).
func (m *Manager) scan(ctx context.Context, l storage.Log, from, to int64, fn func(Record)) error {
	for from < to {
		r, err := l.Read(ctx, from, 1<<20, to)
		if err != nil {
			return fmt.Errorf("replica: cleaner read at %d: %w", from, err)
		}
		if len(r.Batches) == 0 {
			return nil
		}
		it := storage.Batches(r.Batches, false)
		for it.Next() {
			err := EachRecord(it.Batch(), func(rec Record) error {
				if rec.Offset >= from && rec.Offset < to {
					fn(rec)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
		from = r.NextOffset
	}
	return nil
}

// filterBatch returns batch with only the records keep accepts: the batch
// itself when all stay, nil when none does, otherwise a new batch with the
// same base offset, offset range, codec and producer fields, holding the
// kept records byte for byte (recompressed with the batch's codec), its
// max timestamp that of the kept records, and a new CRC, as Kafka's
// cleaner writes a retained batch. Control batches stay as they are.
func filterBatch(batch []byte, keep func(Record) bool) ([]byte, error) {
	h, err := storage.ParseBatchHeader(batch)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	if h.Attributes&storage.AttrControl != 0 {
		return batch, nil
	}
	view, err := uncompressedView(batch)
	if err != nil {
		return nil, err
	}
	var kept [][]byte
	n := 0
	maxTs := int64(-1)
	err = walkRecords(&h, view[storage.BatchHeaderSize:], func(r Record) error {
		n++
		if keep(r) {
			kept = append(kept, r.raw)
			maxTs = max(maxTs, r.Timestamp)
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case len(kept) == n:
		return batch, nil
	case len(kept) == 0:
		return nil, nil
	}
	recs := bytes.Join(kept, nil)
	if h.Compression() != 0 {
		if recs, err = compress(h.Compression(), recs); err != nil {
			return nil, err
		}
	}
	out := make([]byte, storage.BatchHeaderSize, storage.BatchHeaderSize+len(recs))
	copy(out, batch[:storage.BatchHeaderSize])
	out = append(out, recs...)
	binary.BigEndian.PutUint32(out[8:], uint32(storage.BatchHeaderSize-storage.BatchLogOverhead+len(recs)))
	binary.BigEndian.PutUint32(out[57:], uint32(len(kept)))
	if !h.LogAppendTime() {
		binary.BigEndian.PutUint64(out[35:], uint64(maxTs))
	}
	if err := storage.UpdateCRC(out); err != nil {
		return nil, err
	}
	return out, nil
}
