package storage_test

import (
	"math"
	"testing"
	"time"

	"github.com/runnel-io/runnel/sdk/storage"
)

func TestShouldRoll(t *testing.T) {
	created := time.Unix(1000, 0)
	now := created
	cfg := storage.Config{SegmentBytes: 1000, SegmentMs: 500, Now: func() time.Time { return now }}.WithDefaults()
	seg := storage.RollState{BaseOffset: 100, Size: 900, FirstTimestamp: 5000, Created: created}
	cases := []struct {
		name                 string
		empty                bool
		size, maxTs, lastOff int64
		noTimestamps         bool
		clock                time.Duration
		want                 bool
	}{
		{"fits", false, 100, 5000, 200, false, 0, false},
		{"one byte too many", false, 101, 5000, 200, false, 0, true},
		{"empty never rolls", true, 5000, 1 << 40, math.MaxInt64 - 1, false, 0, false},
		{"timestamp at segment.ms", false, 10, 5500, 200, false, 0, false},
		{"timestamp past segment.ms", false, 10, 5501, 200, false, 0, true},
		{"relative offset overflow", false, 10, 5000, 100 + math.MaxInt32 + 1, false, 0, true},
		{"relative offset at the limit", false, 10, 5000, 100 + math.MaxInt32, false, 0, false},
		{"no timestamps, young", false, 10, -1, 200, true, 500 * time.Millisecond, false},
		{"no timestamps, old", false, 10, -1, 200, true, 501 * time.Millisecond, true},
	}
	for _, c := range cases {
		st := seg
		st.Empty = c.empty
		if c.noTimestamps {
			st.FirstTimestamp = -1
		}
		now = created.Add(c.clock)
		if got := storage.ShouldRoll(cfg, st, c.size, c.maxTs, c.lastOff); got != c.want {
			t.Errorf("%s: ShouldRoll = %v, want %v", c.name, got, c.want)
		}
	}
}
