package replica

import (
	"context"
)

// EnforceRetention applies each led partition's retention.ms and
// retention.bytes, and rolls active segments older than segment.ms. It
// deletes whole segments only, oldest first, never the active one, by
// advancing the log start offset to the first kept segment's base offset.
// Partitions whose cleanup.policy lacks "delete" are left alone.
func (m *Manager) EnforceRetention(ctx context.Context) {
	now := m.now()
	for _, p := range m.Partitions() {
		if ctx.Err() != nil {
			return
		}
		before := p.Log().StartOffset()
		if err := p.enforceRetention(ctx, now.UnixMilli()); err != nil {
			m.log.Warn("retention failed", "partition", p.id.String(), "err", err)
		} else if after := p.Log().StartOffset(); after != before {
			m.log.Info("retention deleted old segments", "partition", p.id.String(), "log_start_offset", after)
		}
	}
}

func (p *Partition) enforceRetention(ctx context.Context, nowMs int64) error {
	if !p.IsLeader() || p.deleted.Load() {
		return nil
	}
	cfg := p.Config()
	segs := p.Log().Segments()
	if n := len(segs); n > 0 && cfg.SegmentMs > 0 {
		if a := segs[n-1]; a.Active && a.SizeBytes > 0 && nowMs-a.Created.UnixMilli() >= cfg.SegmentMs {
			if err := p.Log().Roll(ctx); err != nil {
				return err
			}
			segs = p.Log().Segments()
		}
	}
	if !cfg.Delete() || len(segs) < 2 {
		return nil
	}
	var total int64
	for _, s := range segs {
		total += s.SizeBytes
	}
	// Segments are deleted from the oldest while a rule says so; the
	// active (last) segment always stays.
	cut := 0
	for cut < len(segs)-1 {
		s := segs[cut]
		expired := false
		if cfg.RetentionMs >= 0 {
			ts := s.MaxTimestamp
			if ts < 0 {
				ts = s.LastModified.UnixMilli()
			}
			expired = nowMs-ts > cfg.RetentionMs
		}
		oversize := cfg.RetentionBytes >= 0 && total-s.SizeBytes >= cfg.RetentionBytes
		if !expired && !oversize {
			break
		}
		total -= s.SizeBytes
		cut++
	}
	if cut == 0 {
		return nil
	}
	next := segs[cut].BaseOffset
	if next <= p.Log().StartOffset() {
		return nil
	}
	// Never past the high watermark: uncommitted records are not expired.
	next = min(next, p.HighWatermark())
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.Log().DeleteBefore(ctx, next); err != nil {
		return err
	}
	p.trimEpochs()
	return nil
}
