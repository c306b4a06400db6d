package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// describeRows returns the offset rows of `groups describe`, split on
// whitespace, sorted.
func describeRows(out string) [][]string {
	var rows [][]string
	in := false
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(l, "CURRENT-OFFSET"):
			in = true
		case in && strings.TrimSpace(l) == "":
			in = false
		case in:
			rows = append(rows, strings.Fields(l))
		}
	}
	sort.Slice(rows, func(i, j int) bool { return strings.Join(rows[i], " ") < strings.Join(rows[j], " ") })
	return rows
}

// TestGroupsAgainstDev runs `runnel groups` against the real broker of
// `runnel dev`: offsets a group consumer committed, a live member and its
// assignment, every reset-offsets mode with and without --execute, and
// delete.
func TestGroupsAgainstDev(t *testing.T) {
	d := startDev(t, filepath.Join(t.TempDir(), "runnel-data"), nil)
	b := d.bootstrapF
	runnel(t, "", "topics", "create", b, "--topic", "jobs", "--partitions", "2").ok(t, "create")
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "%d\n", i)
	}
	runnel(t, in.String(), "produce", b, "--topic", "jobs", "--partition", "0").ok(t, "produce p0")
	runnel(t, "a\nb\n", "produce", b, "--topic", "jobs", "--partition", "1").ok(t, "produce p1")

	// A group consumer commits what it printed, and only that.
	r := runnel(t, "", "consume", b, "--topic", "jobs", "--group", "workers", "--from-beginning", "--max-messages", "12").ok(t, "consume --group")
	if n := strings.Count(r.out, "\n"); n != 12 {
		t.Fatalf("group consumer printed %d records", n)
	}
	if r := runnel(t, "", "groups", "list", b).ok(t, "groups list"); r.out != "workers\n" {
		t.Errorf("groups list = %q", r.out)
	}
	if r := runnel(t, "", "groups", "list", b, "--state").ok(t, "groups list --state"); !regexp.MustCompile(`GROUP\s+STATE\nworkers\s+Empty\n`).MatchString(r.out) {
		t.Errorf("groups list --state = %q", r.out)
	}
	// The group made the broker create __consumer_offsets, an internal
	// topic (listed, as kafka-topics.sh lists it, unless excluded).
	if r := runnel(t, "", "topics", "list", b).ok(t, "topics list"); r.out != "__consumer_offsets\njobs\n" {
		t.Errorf("topics list = %q", r.out)
	}
	if r := runnel(t, "", "topics", "list", b, "--exclude-internal").ok(t, "topics list --exclude-internal"); r.out != "jobs\n" {
		t.Errorf("topics list --exclude-internal = %q", r.out)
	}
	r = runnel(t, "", "groups", "describe", b, "workers").ok(t, "describe")
	if got, want := fmt.Sprint(describeRows(r.out)), "[[workers jobs 0 10 10 0 - - -] [workers jobs 1 2 2 0 - - -]]"; got != want {
		t.Errorf("describe rows = %s, want %s\n%s", got, want, r.out)
	}
	if !strings.Contains(r.out, "STATE Empty  PROTOCOL -  COORDINATOR 1  MEMBERS 0") || !strings.Contains(r.out, "Consumer group 'workers' has no active members.") {
		t.Errorf("describe header:\n%s", r.out)
	}

	// A running member: describe shows it and what it owns; offsets cannot
	// be reset and the group cannot be deleted under it.
	runnel(t, "x\ny\n", "produce", b, "--topic", "jobs", "--partition", "1").ok(t, "produce more")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	member := exec.CommandContext(ctx, runnelBin, "consume", b, "--topic", "jobs", "--group", "workers", "--timeout", "50s")
	var memberOut bytes.Buffer
	member.Stdout = &memberOut
	if err := member.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = member.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = runnel(t, "", "groups", "describe", b, "workers")
		if r.code == 0 && strings.Contains(r.out, "STATE Stable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stable group with the live member:\n%s%s", r.out, r.err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !regexp.MustCompile(`PROTOCOL \S+  COORDINATOR 1  MEMBERS 1`).MatchString(r.out) ||
		!regexp.MustCompile(`(?m)^runnel-\S+\s+/127\.0\.0\.1\s+runnel\s+2\s+jobs\(0,1\)\s*$`).MatchString(r.out) {
		t.Errorf("describe with a member:\n%s", r.out)
	}
	runnel(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs", "--to-earliest", "--execute").fails(t, 1, `group "workers" is Stable with 1 members`)
	runnel(t, "", "groups", "delete", b, "workers").fails(t, 1, `group "workers" still has members`)
	// The member reads the two new records and commits them.
	deadline = time.Now().Add(30 * time.Second)
	for {
		rows := describeRows(runnel(t, "", "groups", "describe", b, "workers").ok(t, "describe").out)
		if len(rows) == 2 && rows[1][3] == "4" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live member's commit never showed: %v", rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Ctrl-C: the consumer commits, leaves the group and exits.
	_ = member.Process.Signal(os.Interrupt)
	_ = member.Wait()
	if memberOut.String() != "x\ny\n" {
		t.Errorf("the live member read %q, want the two new records", memberOut.String())
	}
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(runnel(t, "", "groups", "describe", b, "workers").out, "STATE Empty") {
		if time.Now().After(deadline) {
			t.Fatal("the group did not become empty after its member stopped")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Dry run: a plan, nothing committed.
	r = runnel(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs", "--to-earliest").ok(t, "reset dry run")
	if !regexp.MustCompile(`(?s)GROUP\s+TOPIC\s+PARTITION\s+NEW-OFFSET\nworkers\s+jobs\s+0\s+0\s*\nworkers\s+jobs\s+1\s+0\s*\n$`).MatchString(r.out) || !strings.Contains(r.err, "Dry run") {
		t.Errorf("dry run printed %q / %q", r.out, r.err)
	}
	if rows := describeRows(runnel(t, "", "groups", "describe", b, "workers").ok(t, "describe").out); rows[0][3] != "10" {
		t.Errorf("dry run committed: %v", rows)
	}
	runnel(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs:0", "--shift-by", "-4", "--execute").ok(t, "shift-by")
	runnel(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs:1", "--to-offset", "99", "--execute").ok(t, "to-offset")
	rows := describeRows(runnel(t, "", "groups", "describe", b, "workers").ok(t, "describe").out)
	if got, want := fmt.Sprint(rows), "[[workers jobs 0 6 10 4 - - -] [workers jobs 1 4 4 0 - - -]]"; got != want {
		t.Errorf("after shift-by -4 and to-offset 99 (clamped to the end): %s, want %s", got, want)
	}
	runnel(t, "", "groups", "reset-offsets", b, "workers", "--all-topics", "--to-datetime", "2000-01-01T00:00:00Z", "--execute").ok(t, "to-datetime")
	rows = describeRows(runnel(t, "", "groups", "describe", b, "workers").ok(t, "describe").out)
	if rows[0][3] != "0" || rows[1][3] != "0" {
		t.Errorf("after --to-datetime 2000: %v", rows)
	}
	runnel(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs", "--to-earliest", "--execute").ok(t, "to-earliest")
	r = runnel(t, "", "consume", b, "--topic", "jobs", "--group", "workers", "--max-messages", "14").ok(t, "consume from the reset offsets")
	if strings.Count(r.out, "\n") != 14 {
		t.Errorf("after --to-earliest the group read %q", r.out)
	}
	runnel(t, "", "groups", "reset-offsets", b, "workers", "--topic", "jobs", "--to-latest", "--execute").ok(t, "to-latest")
	if r := runnel(t, "", "consume", b, "--topic", "jobs", "--group", "workers", "--timeout", "5s").ok(t, "consume again"); r.out != "" {
		t.Errorf("group re-read %q after --to-latest", r.out)
	}

	runnel(t, "", "groups", "describe", b, "nobody").fails(t, 1, `group "nobody" does not exist`)
	runnel(t, "", "groups", "reset-offsets", b, "workers", "--topic", "ghost", "--to-earliest").fails(t, 1, `topic "ghost" does not exist`)
	runnel(t, "", "groups", "delete", b, "workers").ok(t, "delete")
	runnel(t, "", "groups", "delete", b, "workers").fails(t, 1, `group "workers" does not exist`)
	if r := runnel(t, "", "groups", "list", b).ok(t, "groups list"); r.out != "" {
		t.Errorf("groups list after delete = %q", r.out)
	}
}

// TestGroupsSurviveDevRestart commits offsets through runnel dev, stops
// it and starts it again on the same data: the group and its offsets are
// back.
func TestGroupsSurviveDevRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "runnel-data")
	d := startDev(t, data, nil)
	runnel(t, "", "topics", "create", d.bootstrapF, "--topic", "kept", "--partitions", "1").ok(t, "create")
	runnel(t, "1\n2\n3\n4\n", "produce", d.bootstrapF, "--topic", "kept").ok(t, "produce")
	runnel(t, "", "consume", d.bootstrapF, "--topic", "kept", "--group", "g", "--from-beginning", "--max-messages", "3").ok(t, "consume")
	if code := d.stop(t); code != 0 {
		t.Fatalf("runnel dev exited %d", code)
	}
	d = startDev(t, data, nil)
	if r := runnel(t, "", "groups", "list", d.bootstrapF).ok(t, "list"); r.out != "g\n" {
		t.Errorf("groups after restart: %q", r.out)
	}
	rows := describeRows(runnel(t, "", "groups", "describe", d.bootstrapF, "g").ok(t, "describe").out)
	if got, want := fmt.Sprint(rows), "[[g kept 0 3 4 1 - - -]]"; got != want {
		t.Errorf("after restart: %s, want %s", got, want)
	}
	if r := runnel(t, "", "consume", d.bootstrapF, "--topic", "kept", "--group", "g", "--max-messages", "1").ok(t, "resume"); r.out != "4\n" {
		t.Errorf("resumed with %q, want the fourth record", r.out)
	}
}
