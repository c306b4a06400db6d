package dashboard

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

func TestSamplerHistory(t *testing.T) {
	now := time.UnixMilli(5_000_000)
	store := window.New(window.Config{Intervals: 3, Now: func() time.Time { return now }}, "local")
	s := NewSampler(store, evaluate.Config{}, time.Second, 3, func() time.Time { return now })
	for i := int64(1); i <= 5; i++ {
		now = now.Add(time.Second)
		store.AddLogEnd("local", "orders", 0, 1, i*100, now.UnixMilli())
		store.AddCommit("local", "g", "orders", 0, i*50, i, now.UnixMilli())
		if i == 4 {
			// A second topic appears: older samples are padded.
			store.AddLogEnd("local", "audit", 0, 1, 10, now.UnixMilli())
			store.AddCommit("local", "g", "audit", 0, 4, i, now.UnixMilli())
		}
		s.Sample()
	}
	h, ok := s.History("local", "g")
	if !ok {
		t.Fatal("no history")
	}
	if len(h.Samples) != 3 {
		t.Fatalf("%d samples kept, want 3", len(h.Samples))
	}
	if len(h.Partitions) != 2 || h.Partitions[0] != "orders/0" || h.Partitions[1] != "audit/0" {
		t.Fatalf("partitions %v", h.Partitions)
	}
	first, last := h.Samples[0], h.Samples[2]
	if first.T >= last.T || first.Lags[0] != 150 || last.Lags[0] != 250 || last.Lags[1] != 6 || len(first.Lags) != 2 {
		t.Fatalf("samples %+v", h.Samples)
	}
	if last.Total != 256 {
		t.Fatalf("total %d", last.Total)
	}
	sums := s.Summaries()
	if len(sums) != 1 || sums[0].Group != "g" || sums[0].PartitionCount != 2 {
		t.Fatalf("summaries %+v", sums)
	}
	if _, ok := s.History("local", "nope"); ok {
		t.Fatal("history of an unknown group")
	}
	// A deleted group leaves the history at the next sample.
	_ = store.DeleteGroup("local", "g")
	s.Sample()
	if _, ok := s.History("local", "g"); ok {
		t.Fatal("deleted group kept")
	}
}

func TestHandler(t *testing.T) {
	now := time.UnixMilli(5_000_000)
	store := window.New(window.Config{Now: func() time.Time { return now }}, "local")
	store.AddLogEnd("local", "orders", 0, 1, 100, now.UnixMilli())
	store.AddCommit("local", "g", "orders", 0, 40, 1, now.UnixMilli())
	s := NewSampler(store, evaluate.Config{}, time.Second, 10, func() time.Time { return now })
	s.Sample()
	h := Handler(s)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	if code, body := get("/"); code != 200 || !strings.Contains(body, `<svg id="chart"`) || !strings.Contains(body, "app.js") {
		t.Fatalf("index %d", code)
	}
	if code, body := get("/app.js"); code != 200 || !strings.Contains(body, "drawChart") {
		t.Fatalf("app.js %d", code)
	}
	code, body := get("/api/groups")
	var sums []Summary
	if err := json.Unmarshal([]byte(body), &sums); code != 200 || err != nil || len(sums) != 1 || sums[0].TotalLag != 60 {
		t.Fatalf("groups %d %s", code, body)
	}
	code, body = get("/api/history?cluster=local&group=g")
	var hist History
	if err := json.Unmarshal([]byte(body), &hist); code != 200 || err != nil || len(hist.Samples) != 1 || hist.Samples[0].Lags[0] != 60 {
		t.Fatalf("history %d %s", code, body)
	}
	if code, _ = get("/api/history?cluster=local&group=nope"); code != 404 {
		t.Fatalf("unknown group history %d", code)
	}
}
