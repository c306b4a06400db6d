package evaluate

import (
	"time"

	"github.com/runnel-io/runnel/services/lagmon/window"
)

// Config holds the evaluator's settings.
type Config struct {
	// MinimumComplete: a partition whose window is less complete than this
	// fraction (0-1) is reported OK, not judged. Burrow's minimum-complete;
	// default 0.
	MinimumComplete float32
	// AllowedLag is a lagmon extension: a lag at or below it counts as zero
	// in every rule. Default 0, which is Burrow's behaviour.
	AllowedLag uint64
}

// PartitionStatus is Burrow's partition status, plus lag_seconds and
// catchup_seconds.
type PartitionStatus struct {
	Topic      string         `json:"topic"`
	Partition  int32          `json:"partition"`
	Owner      string         `json:"owner"`
	ClientID   string         `json:"client_id"`
	Status     Status         `json:"status"`
	Start      *window.Commit `json:"start"`
	End        *window.Commit `json:"end"`
	CurrentLag uint64         `json:"current_lag"`
	Complete   float32        `json:"complete"`
	// LagSeconds is how far behind the consumer is in time: now minus when
	// the log end passed the committed offset. Null when unknown.
	LagSeconds *float64 `json:"lag_seconds"`
	// CatchUpSeconds estimates when the consumer reaches the log end at the
	// current consume and produce rates. Null when it is not catching up.
	CatchUpSeconds *float64 `json:"catchup_seconds"`
}

// GroupStatus is Burrow's consumer group status.
type GroupStatus struct {
	Cluster         string             `json:"cluster"`
	Group           string             `json:"group"`
	Status          Status             `json:"status"`
	Complete        float32            `json:"complete"`
	Partitions      []*PartitionStatus `json:"partitions"`
	TotalPartitions int                `json:"partition_count"`
	Maxlag          *PartitionStatus   `json:"maxlag"`
	TotalLag        uint64             `json:"totallag"`
}

// NotFoundStatus is what Burrow answers for an unknown group.
func NotFoundStatus(cluster, group string) *GroupStatus {
	return &GroupStatus{Cluster: cluster, Group: group, Status: NotFound, Complete: 1, Partitions: []*PartitionStatus{}}
}

// Group evaluates every partition of a group snapshot. With showAll false
// only partitions worse than OK are listed (Burrow's /status); with showAll
// true all are (Burrow's /lag).
func Group(snap window.GroupSnapshot, now time.Time, cfg Config, showAll bool) *GroupStatus {
	gs := &GroupStatus{Cluster: snap.Cluster, Group: snap.Group, Status: OK, TotalPartitions: len(snap.Partitions)}
	all := make([]PartitionStatus, len(snap.Partitions))
	gs.Partitions = make([]*PartitionStatus, 0, len(snap.Partitions))
	complete := 0
	for i := range snap.Partitions {
		ps := &all[i]
		*ps = Partition(&snap.Partitions[i], now, cfg)
		gs.TotalLag += ps.CurrentLag
		if ps.Status > gs.Status {
			gs.Status = min(ps.Status, Err)
		}
		if gs.Maxlag == nil || ps.CurrentLag > gs.Maxlag.CurrentLag {
			gs.Maxlag = ps
		}
		if ps.Complete == 1 {
			complete++
		}
		if showAll || ps.Status > OK {
			gs.Partitions = append(gs.Partitions, ps)
		}
	}
	if gs.TotalPartitions > 0 {
		gs.Complete = float32(complete) / float32(gs.TotalPartitions)
	}
	return gs
}

// Partition evaluates one partition.
func Partition(p *window.PartitionSnapshot, now time.Time, cfg Config) PartitionStatus {
	ps := PartitionStatus{
		Topic: p.Topic, Partition: p.Partition, Owner: p.Owner, ClientID: p.ClientID,
		Status: OK, CurrentLag: p.CurrentLag,
	}
	if !p.HasWindow || len(p.Commits) == 0 {
		return ps
	}
	commits := p.Commits
	ps.Complete = 1
	if size := max(p.Intervals, len(commits)); len(commits) < size {
		ps.Complete = float32(len(commits)) / float32(size)
	}
	first, last := commits[0], commits[len(commits)-1]
	ps.Start, ps.End = &first, &last
	if ps.Complete >= cfg.MinimumComplete {
		ps.Status = partitionStatus(commits, p.LogEnds, p.CurrentLag, now.UnixMilli(), cfg.AllowedLag)
	}
	ps.LagSeconds = lagSeconds(last.Offset, p.CurrentLag, p.LogEnds, now.UnixMilli())
	ps.CatchUpSeconds = catchUpSeconds(commits, p.LogEnds, p.CurrentLag)
	return ps
}

// partitionStatus applies Burrow's rules in Burrow's order. now is in Unix
// milliseconds.
func partitionStatus(commits []window.Commit, logEnds []window.LogEnd, currentLag uint64, now int64, allowed uint64) Status {
	if currentLag <= allowed {
		return OK
	}
	// A stopped consumer is an error even if it was caught up at some point
	// of an old window, unless the recent log-end offsets show it was.
	if offsetsStopped(commits, now) && !recentLagZero(commits, logEnds, allowed) {
		return Stop
	}
	if !lagAlwaysNonZero(commits, allowed) {
		return OK
	}
	switch {
	case offsetsRewind(commits):
		return Rewind
	case offsetsStalled(commits):
		return Stall
	case lagNotDecreasing(commits):
		return Warn
	}
	return OK
}

// lagAlwaysNonZero is rule 1: if the lag was zero anywhere in the window,
// the window is OK. Commits without a measured lag are skipped.
func lagAlwaysNonZero(commits []window.Commit, allowed uint64) bool {
	for _, c := range commits {
		if c.HasLag && c.Lag <= allowed {
			return false
		}
	}
	return true
}

// offsetsRewind is rule 2: a committed offset smaller than the one before.
func offsetsRewind(commits []window.Commit) bool {
	for i := 1; i < len(commits); i++ {
		if commits[i].Offset < commits[i-1].Offset {
			return true
		}
	}
	return false
}

// offsetsStopped is rule 3: the time since the newest commit is greater
// than the time the window spans.
func offsetsStopped(commits []window.Commit, now int64) bool {
	first, last := commits[0].Timestamp, commits[len(commits)-1].Timestamp
	return now-last > last-first
}

// offsetsStalled is rule 4: every commit in the window has the same offset
// (rule 1 already established that there is lag).
func offsetsStalled(commits []window.Commit) bool {
	for i := 1; i < len(commits); i++ {
		if commits[i].Offset != commits[i-1].Offset {
			return false
		}
	}
	return true
}

// lagNotDecreasing is rule 5: the measured lag never went down from one
// commit to the next (commits without a lag are skipped).
func lagNotDecreasing(commits []window.Commit) bool {
	var prev *window.Commit
	for i := range commits {
		c := &commits[i]
		if !c.HasLag {
			continue
		}
		if prev != nil && c.Lag < prev.Lag {
			return false
		}
		prev = c
	}
	return true
}

// recentLagZero reports whether any recent log-end offset was at or below
// the newest committed offset: the consumer was caught up within the
// log-end window, so it is not (yet) called stopped.
func recentLagZero(commits []window.Commit, logEnds []window.LogEnd, allowed uint64) bool {
	last := commits[len(commits)-1].Offset
	for _, le := range logEnds {
		if le.Offset <= last || uint64(le.Offset-last) <= allowed {
			return true
		}
	}
	return false
}

// lagSeconds estimates how long ago the log end passed the committed offset,
// interpolating between polled log-end offsets and extrapolating at the
// produce rate before the oldest one. now is Unix ms.
func lagSeconds(committed int64, currentLag uint64, logEnds []window.LogEnd, now int64) *float64 {
	if currentLag == 0 {
		z := 0.0
		return &z
	}
	if len(logEnds) == 0 {
		return nil
	}
	i := 0
	for i < len(logEnds) && logEnds[i].Offset <= committed {
		i++
	}
	var at float64 // Unix ms when the log end reached the committed offset
	switch {
	case i == len(logEnds):
		// The committed offset is at or past every polled log end.
		z := 0.0
		return &z
	case i > 0:
		prev, next := logEnds[i-1], logEnds[i]
		frac := float64(committed-prev.Offset) / float64(next.Offset-prev.Offset)
		at = float64(prev.Timestamp) + frac*float64(next.Timestamp-prev.Timestamp)
	default:
		first, last := logEnds[0], logEnds[len(logEnds)-1]
		at = float64(first.Timestamp)
		if span := last.Timestamp - first.Timestamp; span > 0 && last.Offset > first.Offset {
			perMs := float64(last.Offset-first.Offset) / float64(span)
			at -= float64(first.Offset-committed) / perMs
		}
	}
	s := max((float64(now)-at)/1000, 0)
	return &s
}

// catchUpSeconds estimates when the consumer reaches the log end: the lag
// divided by how much faster it consumes than producers produce. Nil when it
// is not gaining.
func catchUpSeconds(commits []window.Commit, logEnds []window.LogEnd, currentLag uint64) *float64 {
	if currentLag == 0 {
		z := 0.0
		return &z
	}
	consume := rate(commits[0].Offset, commits[0].Timestamp, commits[len(commits)-1].Offset, commits[len(commits)-1].Timestamp)
	var produce float64
	if n := len(logEnds); n > 1 {
		produce = rate(logEnds[0].Offset, logEnds[0].Timestamp, logEnds[n-1].Offset, logEnds[n-1].Timestamp)
	}
	if consume <= produce {
		return nil
	}
	s := float64(currentLag) / (consume - produce)
	return &s
}

// rate is offsets per second between two observations (0 if no time passed).
func rate(o1, t1, o2, t2 int64) float64 {
	if t2 <= t1 {
		return 0
	}
	return float64(o2-o1) / (float64(t2-t1) / 1000)
}
