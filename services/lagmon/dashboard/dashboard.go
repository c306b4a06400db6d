// Package dashboard serves lagmon's web page: every cluster's groups with
// colour-coded statuses, and a chart of lag over time for a group and each
// of its partitions. The page, its script and its style are embedded in the
// binary (no CDN, no npm); the chart is SVG drawn by the page's own script.
//
// The lag history comes from a Sampler that evaluates every group on an
// interval and keeps the last N samples per group.
//
// Besides the page, the handler serves two JSON endpoints for it:
//
//	GET api/groups                          every group's status summary
//	GET api/history?cluster=C&group=G       the group's samples
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

//go:embed static
var static embed.FS

// Sample is one point of a group's history.
type Sample struct {
	// T is the sample time in Unix ms.
	T      int64           `json:"t"`
	Status evaluate.Status `json:"status"`
	Total  uint64          `json:"total"`
	// Lags are the partitions' lags, in the order of History.Partitions.
	Lags []uint64 `json:"lags"`
}

// History is what the page charts.
type History struct {
	Cluster    string   `json:"cluster"`
	Group      string   `json:"group"`
	Partitions []string `json:"partitions"` // "topic/partition"
	Samples    []Sample `json:"samples"`
}

type groupHistory struct {
	partitions []string
	index      map[string]int
	samples    []Sample // ring once full
	next       int
	full       bool
}

type key struct{ cluster, group string }

// Summary is one line of the group list.
type Summary struct {
	Cluster        string          `json:"cluster"`
	Group          string          `json:"group"`
	Status         evaluate.Status `json:"status"`
	TotalLag       uint64          `json:"totallag"`
	Complete       float32         `json:"complete"`
	PartitionCount int             `json:"partition_count"`
	MaxLagSeconds  *float64        `json:"maxlag_seconds"`
}

// Sampler keeps the recent lag history of every group.
type Sampler struct {
	store    *window.Store
	eval     evaluate.Config
	interval time.Duration
	points   int
	now      func() time.Time

	mu      sync.RWMutex
	history map[key]*groupHistory
	latest  []Summary
}

// NewSampler samples every interval and keeps points samples per group.
func NewSampler(store *window.Store, eval evaluate.Config, interval time.Duration, points int, now func() time.Time) *Sampler {
	if now == nil {
		now = time.Now
	}
	return &Sampler{store: store, eval: eval, interval: interval, points: max(points, 2), now: now, history: map[key]*groupHistory{}}
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Sample()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample evaluates every group once and appends to its history.
func (s *Sampler) Sample() {
	now := s.now()
	live := map[key]bool{}
	var summaries []Summary
	type result struct {
		k  key
		st *evaluate.GroupStatus
	}
	var results []result
	for _, c := range s.store.Clusters() {
		groups, _ := s.store.Groups(c)
		for _, g := range groups {
			snap, err := s.store.Group(c, g)
			if err != nil {
				continue
			}
			st := evaluate.Group(snap, now, s.eval, true)
			results = append(results, result{key{c, g}, st})
			sum := Summary{Cluster: c, Group: g, Status: st.Status, TotalLag: st.TotalLag, Complete: st.Complete, PartitionCount: st.TotalPartitions}
			if st.Maxlag != nil {
				sum.MaxLagSeconds = st.Maxlag.LagSeconds
			}
			summaries = append(summaries, sum)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range results {
		live[r.k] = true
		h := s.history[r.k]
		if h == nil {
			h = &groupHistory{index: map[string]int{}, samples: make([]Sample, 0, s.points)}
			s.history[r.k] = h
		}
		sm := Sample{T: now.UnixMilli(), Status: r.st.Status, Total: r.st.TotalLag, Lags: make([]uint64, len(h.partitions))}
		for _, p := range r.st.Partitions {
			name := p.Topic + "/" + strconv.Itoa(int(p.Partition))
			i, ok := h.index[name]
			if !ok {
				i = len(h.partitions)
				h.index[name] = i
				h.partitions = append(h.partitions, name)
				sm.Lags = append(sm.Lags, 0)
			}
			sm.Lags[i] = p.CurrentLag
		}
		if len(h.samples) < s.points {
			h.samples = append(h.samples, sm)
			continue
		}
		h.samples[h.next] = sm
		h.next = (h.next + 1) % s.points
		h.full = true
	}
	for k := range s.history {
		if !live[k] {
			delete(s.history, k)
		}
	}
	s.latest = summaries
}

// Summaries returns the group list of the last sample.
func (s *Sampler) Summaries() []Summary {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.latest)
}

// History returns a group's samples, oldest first.
func (s *Sampler) History(cluster, group string) (History, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.history[key{cluster, group}]
	if h == nil {
		return History{}, false
	}
	out := History{Cluster: cluster, Group: group, Partitions: slices.Clone(h.partitions)}
	ordered := h.samples
	if h.full {
		ordered = append(slices.Clone(h.samples[h.next:]), h.samples[:h.next]...)
	}
	for _, sm := range ordered {
		// Older samples predate partitions that appeared later: pad them.
		lags := make([]uint64, len(h.partitions))
		copy(lags, sm.Lags)
		sm.Lags = lags
		out.Samples = append(out.Samples, sm)
	}
	return out, true
}

// Handler serves the page and its endpoints; mount it under /dashboard/
// with the prefix stripped.
func Handler(s *Sampler) http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(static, "static")
	mux.Handle("GET /", http.FileServerFS(files))
	mux.HandleFunc("GET /api/groups", func(w http.ResponseWriter, _ *http.Request) {
		list := s.Summaries()
		if list == nil {
			list = []Summary{}
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("GET /api/history", func(w http.ResponseWriter, r *http.Request) {
		h, ok := s.History(r.URL.Query().Get("cluster"), r.URL.Query().Get("group"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": true, "message": "cluster or consumer not found"})
			return
		}
		writeJSON(w, http.StatusOK, h)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
