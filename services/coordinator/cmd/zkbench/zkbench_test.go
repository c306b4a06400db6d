package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/coordinator/internal/zktest"
)

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p50, p99 := percentiles(d)
	if p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Fatalf("p50 %v p99 %v, want 50ms 99ms", p50, p99)
	}
	if p50, p99 := percentiles([]time.Duration{7}); p50 != 7 || p99 != 7 {
		t.Fatalf("one sample: %v %v", p50, p99)
	}
	if p50, p99 := percentiles(nil); p50 != 0 || p99 != 0 {
		t.Fatalf("no samples: %v %v", p50, p99)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, false},
		{[]string{"--target", "127.0.0.1:1"}, true},
		{[]string{"--compare"}, true},
		{[]string{"--ensemble", "3"}, true},
		{[]string{"--ensemble", "1"}, false},
		{[]string{"--target", "a:1", "--compare"}, false},
		{[]string{"--target", "a:1", "--ops", "0"}, false},
		{[]string{"--target", "a:1", "--root", "relative"}, false},
		{[]string{"--target", "a:1", "--root", "/"}, false},
	} {
		o, err := parseFlags(tc.args, &bytes.Buffer{})
		if (err == nil) != tc.ok {
			t.Errorf("%v: err %v, want ok=%v", tc.args, err, tc.ok)
		}
		if err == nil && tc.args[0] == "--ensemble" && !o.compare {
			t.Errorf("%v does not imply --compare", tc.args)
		}
	}
	t.Setenv("RUNNEL_SESSIONS", "7")
	o, err := parseFlags([]string{"--target", "a:1"}, &bytes.Buffer{})
	if err != nil || o.cfg.Sessions != 7 {
		t.Fatalf("RUNNEL_SESSIONS=7: sessions %d, %v", o.cfg.Sessions, err)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--bogus"}, &bytes.Buffer{}, &stderr); code != 2 {
		t.Fatalf("unknown flag: exit %d, want 2 (%s)", code, stderr.String())
	}
}

// rowRE matches a result row of the single-target table.
var rowRE = regexp.MustCompile(`(?m)^\| (create|get|set|delete) \| (\d+) \| (\d+) \| [\d.]+ ms \| [\d.]+ ms \| (\d+) \|$`)

func TestTargetAgainstZooKeeper(t *testing.T) {
	srv := zktest.ZooKeeper(t)
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"--target", srv.Addr(), "--sessions", "4", "--ops", "300", "--root", "/bench"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	rows := rowRE.FindAllStringSubmatch(out.String(), -1)
	if len(rows) != 4 {
		t.Fatalf("want 4 phase rows:\n%s", out.String())
	}
	for i, r := range rows {
		if r[1] != phaseNames[i] || r[2] != "300" || r[4] != "0" {
			t.Errorf("row %q: want phase %s with 300 ops and no errors", r[0], phaseNames[i])
		}
	}
	// Every node was deleted, and so was the root.
	conn := zktest.Connect(t, srv.Addr())
	if ok, _, err := conn.Exists("/bench"); err != nil || ok {
		t.Fatalf("/bench left behind: %v %v", ok, err)
	}
}

func TestPhaseTimeBound(t *testing.T) {
	srv := zktest.ZooKeeper(t)
	ctx := context.Background()
	const many = 1 << 20 // far more than 200ms allow
	res, err := Run(ctx, []string{srv.Addr()}, Config{Sessions: 2, Ops: many, PhaseTimeout: 200 * time.Millisecond,
		Size: 10, Root: "/bound"})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Ops == 0 || res[0].Ops >= many {
		t.Fatalf("create phase did %d ops", res[0].Ops)
	}
	// Later phases work on the nodes the create phase made, and delete
	// removes exactly those.
	if res[3].Ops+res[3].Errors > res[0].Ops {
		t.Fatalf("delete touched %d nodes, create made %d", res[3].Ops+res[3].Errors, res[0].Ops)
	}
	// What the bounded delete phase left was cleaned up.
	conn := zktest.Connect(t, srv.Addr())
	if ok, _, err := conn.Exists("/bound"); err != nil || ok {
		t.Fatalf("/bound left behind: %v %v", ok, err)
	}
}

func TestCompare(t *testing.T) {
	zktest.RequireZooKeeper(t)
	bin := zktest.CoordinatorBinary(t)
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"--compare", "--coordinator-bin", bin, "--sessions", "4", "--ops", "200"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	rows := regexp.MustCompile(`(?m)^\| (create|get|set|delete) \|.*\| (\d+\.\d\dx|n/a) \|$`).FindAllString(out.String(), -1)
	if len(rows) != 4 {
		t.Fatalf("want 4 comparison rows:\n%s\nstderr:\n%s", out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "Runnel/ZooKeeper") {
		t.Fatalf("no ratio column:\n%s", out.String())
	}
}
