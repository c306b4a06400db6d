package clustertest

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestCommandLineOnACluster drives bin/runnel against three brokers as an
// operator would: cluster describe shows the brokers and the controller,
// topics describe shows each partition's leader, replicas and ISR,
// partitions reassign moves a partition (and verifies and lists moves),
// and partitions elect-leaders restores the preferred leaders.
func TestCommandLineOnACluster(t *testing.T) {
	runnel := brokertest.RunnelBinary(t)
	c := brokertest.StartCluster(t, brokertest.ClusterOptions{Settings: []string{"auto.leader.rebalance.enable=false"}})
	bootstrap := strings.Join(c.Seeds(), ",")
	run := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, runnel, append(args, "--bootstrap-server", bootstrap)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("runnel %v: %v", args, err)
		}
		if code != wantCode {
			t.Fatalf("runnel %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}

	out, _ := run(0, "cluster", "describe")
	for _, want := range []string{"Controller: ", "Brokers: 3", c.Broker(1).Addr, c.Broker(2).Addr, c.Broker(3).Addr} {
		if !strings.Contains(out, want) {
			t.Fatalf("cluster describe lacks %q:\n%s", want, out)
		}
	}

	run(0, "topics", "create", "--topic", "ops", "--partitions", "2", "--replication-factor", "2")
	fullISR(t, c, "ops", 2)
	out, _ = run(0, "topics", "describe", "--topic", "ops")
	row := regexp.MustCompile(`Topic: ops\tPartition: (\d)\tLeader: (\d)\tReplicas: (\d,\d)\tIsr: (\d,\d)`)
	if rows := row.FindAllStringSubmatch(out, -1); len(rows) != 2 {
		t.Fatalf("topics describe shows %d partition rows, want 2 with leader, replicas and ISR:\n%s", len(rows), out)
	}

	td, err := c.Topic(brokertest.Context(t, 10*time.Second), "ops")
	if err != nil {
		t.Fatal(err)
	}
	old := td.Partitions[0].Replicas
	target := []int32{}
	for id := int32(1); id <= 3; id++ {
		if id != old[0] {
			target = append(target, id)
		}
	}
	targetArg := joinInts(target)
	out, errOut := run(0, "partitions", "reassign", "--topic", "ops", "--partition", "0", "--replicas", targetArg, "--wait")
	if !strings.Contains(out, "All 1 partitions moved") || !strings.Contains(errOut, "reassigning: ") {
		t.Fatalf("reassign --wait: stdout %q stderr %q", out, errOut)
	}
	out, _ = run(0, "partitions", "reassign", "--topic", "ops", "--partition", "0", "--verify")
	if !strings.Contains(out, "Reassignment of partition ops-0 is complete.") {
		t.Fatalf("reassign --verify: %q", out)
	}
	out, _ = run(0, "partitions", "reassign", "--list")
	if !strings.Contains(out, "No reassignment is under way.") {
		t.Fatalf("reassign --list: %q", out)
	}
	out, _ = run(0, "topics", "describe", "--topic", "ops")
	if !strings.Contains(out, "Partition: 0\tLeader: ") || !strings.Contains(out, "Replicas: "+targetArg+"\t") {
		t.Fatalf("after the move, topics describe shows:\n%s", out)
	}
	_, errOut = run(2, "partitions", "reassign", "--topic", "ops", "--partition", "0", "--replicas", "one,two")
	if !strings.Contains(errOut, "--replicas") {
		t.Fatalf("bad --replicas: %q", errOut)
	}

	// The preferred leader of partition 1 stops (handing its leadership
	// over) and comes back: an election gives the leadership back.
	td, _ = c.Topic(brokertest.Context(t, 10*time.Second), "ops")
	pref := td.Partitions[1].Replicas[0]
	c.Broker(pref).Stop()
	c.WaitFor(20*time.Second, "another leader for ops-1", func(td kadm.TopicDetail) bool {
		return td.Partitions[1].Leader > 0 && td.Partitions[1].Leader != pref
	}, "ops")
	c.Broker(pref).Restart()
	fullISR(t, c, "ops", 2)
	out, _ = run(0, "partitions", "elect-leaders", "--all-topic-partitions")
	if !strings.Contains(out, "Elected a new leader for ops-1.") {
		t.Fatalf("elect-leaders: %q", out)
	}
	out, _ = run(0, "partitions", "elect-leaders", "--topic", "ops")
	if !strings.Contains(out, "Every partition already has the leader asked for.") {
		t.Fatalf("a second elect-leaders: %q", out)
	}
	c.WaitFor(10*time.Second, "the preferred leader back", func(td kadm.TopicDetail) bool {
		return td.Partitions[1].Leader == pref
	}, "ops")
}

func joinInts(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}
