package evaluate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/window"
)

// c builds a commit with a measured lag; lag < 0 means "not measured".
func c(offset, order, ts int64, lag int64) window.Commit {
	cm := window.Commit{Offset: offset, Order: order, Timestamp: ts}
	if lag >= 0 {
		cm.Lag, cm.HasLag = uint64(lag), true
	}
	return cm
}

func logEnds(offs ...int64) []window.LogEnd {
	out := make([]window.LogEnd, len(offs))
	for i, o := range offs {
		out[i] = window.LogEnd{Offset: o, Timestamp: int64(i)}
	}
	return out
}

// ruleCase is one offset history with the expected answer of every rule and
// the resulting status. Cases 0-11 use the inputs and expected outputs of
// Burrow's own evaluator tests (core/internal/evaluator/caching_test.go), so
// lagmon's rules give Burrow's answers on Burrow's histories; the rest cover
// what those do not (WARN, allowed-lag).
type ruleCase struct {
	name       string
	commits    []window.Commit
	logEnds    []window.LogEnd
	currentLag uint64
	nowSeconds int64
	allowed    uint64
	lagNonZero bool
	rewind     bool
	stopped    bool
	stalled    bool
	notDecr    bool
	recentZero bool
	status     Status
}

// burrowCase9Commits is a consumer committing every second, always caught up.
func burrowCase9Commits() []window.Commit {
	ts := []int64{1512224618356, 1512224619362, 1512224620366, 1512224621367, 1512224622370,
		1512224623373, 1512224624378, 1512224625379, 1512224626383, 1512224627383,
		1512224628383, 1512224629388, 1512224630391, 1512224631394, 1512224632397}
	out := make([]window.Commit, len(ts))
	for i, t := range ts {
		out[i] = c(792748079+int64(i), int64(i+1), t, 0)
	}
	return out
}

var linear = []window.Commit{c(1000, 1, 100000, 0), c(2000, 2, 200000, 50), c(3000, 3, 300000, 100), c(4000, 4, 400000, 150), c(5000, 5, 500000, 200)}
var linearNonZero = []window.Commit{c(1000, 1, 100000, 50), c(2000, 2, 200000, 100), c(3000, 3, 300000, 150), c(4000, 4, 400000, 200), c(5000, 5, 500000, 250)}

var ruleCases = []ruleCase{
	{name: "burrow 0: zero lag somewhere is OK", commits: linear, logEnds: logEnds(5200), currentLag: 200, nowSeconds: 600,
		notDecr: true, status: OK},
	{name: "burrow 1: idle exactly as long as the window is not STOP", commits: linear, logEnds: logEnds(5200), currentLag: 200, nowSeconds: 900,
		notDecr: true, status: OK},
	{name: "burrow 2: idle longer than the window is STOP despite zero lag at the start", commits: linear, logEnds: logEnds(5200), currentLag: 200, nowSeconds: 1000,
		stopped: true, notDecr: true, status: Stop},
	{name: "burrow 3: STOP with lag always non-zero", commits: linearNonZero, logEnds: logEnds(5250), currentLag: 250, nowSeconds: 1000,
		lagNonZero: true, stopped: true, notDecr: true, status: Stop},
	{name: "burrow 4: same offset but zero lag once is OK", commits: []window.Commit{c(1000, 1, 100000, 0), c(1000, 2, 200000, 50), c(1000, 3, 300000, 100), c(1000, 4, 400000, 150), c(1000, 5, 500000, 200)},
		logEnds: logEnds(1200), currentLag: 200, nowSeconds: 600, stalled: true, notDecr: true, status: OK},
	{name: "burrow 5: same offset with growing lag is STALL", commits: []window.Commit{c(1000, 1, 100000, 100), c(1000, 2, 200000, 150), c(1000, 3, 300000, 200), c(1000, 4, 400000, 250), c(1000, 5, 500000, 300)},
		logEnds: logEnds(1300), currentLag: 300, nowSeconds: 600, lagNonZero: true, stalled: true, notDecr: true, status: Stall},
	{name: "burrow 6: same offset with constant lag is STALL", commits: []window.Commit{c(1000, 1, 100000, 100), c(1000, 2, 200000, 100), c(1000, 3, 300000, 100), c(1000, 4, 400000, 100), c(1000, 5, 500000, 100)},
		logEnds: logEnds(1100), currentLag: 100, nowSeconds: 600, lagNonZero: true, stalled: true, notDecr: true, status: Stall},
	{name: "burrow 7: offsets going backwards is REWIND", commits: []window.Commit{c(1000, 1, 100000, 100), c(2000, 2, 200000, 150), c(3000, 3, 300000, 200), c(2000, 4, 400000, 1250), c(4000, 5, 500000, 300)},
		logEnds: logEnds(4300), currentLag: 300, nowSeconds: 600, lagNonZero: true, rewind: true, status: Rewind},
	{name: "burrow 8: current lag zero is OK even if stopped", commits: linearNonZero, logEnds: logEnds(5250), currentLag: 0, nowSeconds: 1000,
		lagNonZero: true, stopped: true, notDecr: true, status: OK},
	{name: "burrow 9: stopped with new data is STOP although the window was caught up", commits: burrowCase9Commits(),
		logEnds: logEnds(792749024, 792749000, 792748800, 792748600, 792748500), currentLag: 931, nowSeconds: 1512224650,
		stopped: true, notDecr: true, status: Stop},
	{name: "burrow 10: caught up within the log-end window is not STOP", commits: burrowCase9Commits(),
		logEnds: logEnds(792748094, 792748093, 792748093, 792748093), currentLag: 1, nowSeconds: 1512224650,
		stopped: true, notDecr: true, recentZero: true, status: OK},
	{name: "burrow 11: commits without a lag are ignored", commits: []window.Commit{c(1000, 10, 100000, 0), c(1500, 15, 150000, -1), c(2000, 20, 200000, 50), c(2500, 25, 250000, -1), c(3000, 30, 300000, 100), c(3500, 35, 350000, -1), c(4000, 40, 400000, 150), c(4500, 45, 450000, -1), c(5000, 50, 500000, 200), c(5500, 55, 550000, -1)},
		logEnds: logEnds(5700), currentLag: 200, nowSeconds: 600, notDecr: true, status: OK},
	{name: "moving but lag never decreasing is WARN", commits: linearNonZero, logEnds: logEnds(5250), currentLag: 250, nowSeconds: 600,
		lagNonZero: true, notDecr: true, status: Warn},
	{name: "lag decreasing somewhere is OK", commits: []window.Commit{c(1000, 1, 100000, 300), c(2000, 2, 200000, 200), c(3000, 3, 300000, 250)}, logEnds: logEnds(3250), currentLag: 250, nowSeconds: 350,
		lagNonZero: true, status: OK},
	{name: "allowed-lag turns small lags into zero", commits: linearNonZero, logEnds: logEnds(5250), currentLag: 250, nowSeconds: 600, allowed: 50,
		notDecr: true, status: OK},
	{name: "allowed-lag: current lag within it is OK", commits: linearNonZero, logEnds: logEnds(5250), currentLag: 250, nowSeconds: 1000, allowed: 300,
		stopped: true, notDecr: true, recentZero: true, status: OK},
}

func TestRules(t *testing.T) {
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.nowSeconds * 1000
			check := func(rule string, got, want bool) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", rule, got, want)
				}
			}
			check("lagAlwaysNonZero", lagAlwaysNonZero(tc.commits, tc.allowed), tc.lagNonZero)
			check("offsetsRewind", offsetsRewind(tc.commits), tc.rewind)
			check("offsetsStopped", offsetsStopped(tc.commits, now), tc.stopped)
			check("offsetsStalled", offsetsStalled(tc.commits), tc.stalled)
			check("lagNotDecreasing", lagNotDecreasing(tc.commits), tc.notDecr)
			check("recentLagZero", recentLagZero(tc.commits, tc.logEnds, tc.allowed), tc.recentZero)
			if got := partitionStatus(tc.commits, tc.logEnds, tc.currentLag, now, tc.allowed); got != tc.status {
				t.Errorf("status %v, want %v", got, tc.status)
			}
		})
	}
}

func snapshot(parts ...window.PartitionSnapshot) window.GroupSnapshot {
	return window.GroupSnapshot{Cluster: "local", Group: "g", Partitions: parts}
}

func TestGroup(t *testing.T) {
	now := time.Unix(600, 0)
	stall := window.PartitionSnapshot{Topic: "a", Partition: 0, HasWindow: true, Intervals: 5, CurrentLag: 300, LogEnds: logEnds(1300),
		Commits: []window.Commit{c(1000, 1, 100000, 100), c(1000, 2, 200000, 150), c(1000, 3, 300000, 200), c(1000, 4, 400000, 250), c(1000, 5, 500000, 300)}}
	warn := window.PartitionSnapshot{Topic: "a", Partition: 1, HasWindow: true, Intervals: 5, CurrentLag: 250, LogEnds: logEnds(5250), Commits: linearNonZero}
	ok := window.PartitionSnapshot{Topic: "b", Partition: 0, HasWindow: true, Intervals: 10, CurrentLag: 0, LogEnds: logEnds(5000), Commits: linear}
	never := window.PartitionSnapshot{Topic: "b", Partition: 1, Intervals: 10}

	gs := Group(snapshot(stall, warn, ok, never), now, Config{}, false)
	if gs.Status != Err {
		t.Fatalf("group status %v: STALL must show as ERR", gs.Status)
	}
	if gs.TotalPartitions != 4 || gs.TotalLag != 550 || len(gs.Partitions) != 2 {
		t.Fatalf("group %+v", gs)
	}
	if gs.Partitions[0].Status != Stall || gs.Partitions[1].Status != Warn {
		t.Fatalf("partitions %v %v", gs.Partitions[0].Status, gs.Partitions[1].Status)
	}
	if gs.Maxlag == nil || gs.Maxlag.Topic != "a" || gs.Maxlag.Partition != 0 {
		t.Fatalf("maxlag %+v", gs.Maxlag)
	}
	// Two windows full, one half full, one never committed.
	if gs.Complete != 0.5 {
		t.Fatalf("complete %v, want 0.5", gs.Complete)
	}
	all := Group(snapshot(warn, ok, never), now, Config{}, true)
	if all.Status != Warn || len(all.Partitions) != 3 {
		t.Fatalf("show all: %v %d", all.Status, len(all.Partitions))
	}
	if all.Partitions[1].Complete != 0.5 || all.Partitions[2].Complete != 0 || all.Partitions[2].Start != nil {
		t.Fatalf("completeness %v %v", all.Partitions[1].Complete, all.Partitions[2].Complete)
	}
	// minimum-complete: a half-full window is not judged.
	halfWarn := warn
	halfWarn.Intervals = 10
	if g := Group(snapshot(halfWarn), now, Config{MinimumComplete: 0.8}, true); g.Status != OK {
		t.Fatalf("incomplete partition judged: %v", g.Status)
	}
	if g := Group(snapshot(), now, Config{}, true); g.Status != OK || g.Complete != 0 || g.Maxlag != nil {
		t.Fatalf("empty group %+v", g)
	}
}

func TestGroupJSONShape(t *testing.T) {
	warn := window.PartitionSnapshot{Topic: "a", Partition: 1, HasWindow: true, Intervals: 5, CurrentLag: 250, LogEnds: logEnds(5250), Commits: linearNonZero, Owner: "/127.0.0.1", ClientID: "c1"}
	b, err := json.Marshal(Group(snapshot(warn), time.Unix(600, 0), Config{}, true))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cluster", "group", "status", "complete", "partitions", "partition_count", "maxlag", "totallag"} {
		if _, ok := m[k]; !ok {
			t.Errorf("group status lacks %q: %s", k, b)
		}
	}
	if m["status"] != "WARN" {
		t.Errorf("status %v", m["status"])
	}
	p := m["partitions"].([]any)[0].(map[string]any)
	for _, k := range []string{"topic", "partition", "owner", "client_id", "status", "start", "end", "current_lag", "complete"} {
		if _, ok := p[k]; !ok {
			t.Errorf("partition status lacks %q", k)
		}
	}
	if !strings.Contains(string(b), `"start":{"offset":1000,"timestamp":100000,"lag":50}`) {
		t.Errorf("start offset shape: %s", b)
	}
}

func TestLagSecondsAndCatchUp(t *testing.T) {
	// The log end moved 100 offsets per second; the consumer committed 1500
	// while the log end was at 2000 (one second ago at t=10s).
	les := []window.LogEnd{{Offset: 1000, Timestamp: 9000}, {Offset: 1100, Timestamp: 10000}, {Offset: 1200, Timestamp: 11000}}
	s := lagSeconds(1050, 150, les, 11000)
	if s == nil || *s != 1.5 {
		t.Fatalf("interpolated lag seconds %v, want 1.5", s)
	}
	s = lagSeconds(900, 300, les, 11000)
	if s == nil || *s != 3 {
		t.Fatalf("extrapolated lag seconds %v, want 3", s)
	}
	if s = lagSeconds(1200, 0, les, 11000); s == nil || *s != 0 {
		t.Fatalf("no lag: %v", s)
	}
	// The consumer gains 100 offsets/s over a producer at 100/s.
	commits := []window.Commit{c(0, 1, 9000, 1000), c(400, 2, 11000, 800)}
	if s = catchUpSeconds(commits, les, 800); s == nil || *s != 8 {
		t.Fatalf("catch-up %v, want 8", s)
	}
	slow := []window.Commit{c(0, 1, 9000, 1000), c(100, 2, 11000, 1100)}
	if s = catchUpSeconds(slow, les, 1100); s != nil {
		t.Fatalf("a slower consumer never catches up, got %v", *s)
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]Status{"warn": Warn, "WARNING": Warn, "2": Warn, "ERR": Err, "error": Err, "stop": Stop, "6": Rewind} {
		if got, err := ParseStatus(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseStatus("bad"); err == nil {
		t.Error("bad status accepted")
	}
	if Status(42).String() != "UNKNOWN" {
		t.Error("out of range status name")
	}
}

// BenchmarkGroup evaluates a 10-partition group with full windows of 10;
// b.N groups, so partitions/s is 10 × groups/s.
func BenchmarkGroup(b *testing.B) {
	parts := make([]window.PartitionSnapshot, 10)
	for p := range parts {
		commits := make([]window.Commit, 10)
		les := make([]window.LogEnd, 10)
		for i := range commits {
			ts := int64(i) * 60_000
			commits[i] = c(1000+int64(i)*100, int64(i), ts, 100+int64(i)*20)
			les[i] = window.LogEnd{Offset: 1100 + int64(i)*120, Timestamp: ts}
		}
		parts[p] = window.PartitionSnapshot{Topic: "t", Partition: int32(p), HasWindow: true, Intervals: 10, Commits: commits, LogEnds: les, CurrentLag: 280}
	}
	snap := snapshot(parts...)
	now := time.UnixMilli(10 * 60_000)
	b.ReportAllocs()
	for b.Loop() {
		Group(snap, now, Config{}, true)
	}
	b.ReportMetric(float64(b.N*len(parts))/b.Elapsed().Seconds(), "partitions/s")
}
