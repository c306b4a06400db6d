package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnel-io/runnel/sdk"
)

func TestAdmin(t *testing.T) {
	seeds := fakeCluster(t, 1, "seed")
	ctx := ctxT(t)
	adm, err := sdk.NewAdmin(sdk.Brokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.CreateTopic(ctx, "t", 4, 1, map[string]string{"retention.ms": "60000"}); err != nil {
		t.Fatal(err)
	}
	if err := adm.CreateTopic(ctx, "t", 4, 1, nil); err == nil {
		t.Error("creating a topic twice succeeded")
	}
	if n, err := adm.Partitions(ctx, "t"); err != nil || n != 4 {
		t.Errorf("Partitions = %d, %v", n, err)
	}
	if names, err := adm.ListTopics(ctx); err != nil || len(names) != 2 || names[1] != "t" {
		t.Errorf("ListTopics = %v, %v", names, err)
	}

	p, _ := sdk.NewProducer(sdk.Bytes(), sdk.String(), sdk.Brokers(seeds...), sdk.DefaultTopic("t"), sdk.ManualPartitions())
	var msgs []sdk.Message[[]byte, string]
	for i := range 10 {
		msgs = append(msgs, sdk.Message[[]byte, string]{Value: "v", Partition: int32(i % 2)})
	}
	if _, err := p.SendSync(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	ends, err := adm.EndOffsets(ctx, "t")
	if err != nil || ends["t"][0] != 5 || ends["t"][1] != 5 || ends["t"][2] != 0 {
		t.Errorf("EndOffsets = %v, %v", ends, err)
	}

	// An empty group's offsets can be set from outside: rewind and lag.
	if err := adm.SetOffsets(ctx, "g", map[string]map[int32]int64{"t": {0: 2, 1: 5}}); err != nil {
		t.Fatal(err)
	}
	committed, err := adm.CommittedOffsets(ctx, "g")
	if err != nil || committed["t"][0] != 2 || committed["t"][1] != 5 {
		t.Errorf("CommittedOffsets = %v, %v", committed, err)
	}
	lag, err := adm.GroupLag(ctx, "g")
	if err != nil || lag["t"][0] != 3 || lag["t"][1] != 0 {
		t.Errorf("GroupLag = %v, %v", lag, err)
	}
	if groups, err := adm.ListGroups(ctx); err != nil || len(groups) != 1 || groups[0] != "g" {
		t.Errorf("ListGroups = %v, %v", groups, err)
	}
	info, err := adm.DescribeGroup(context.Background(), "g")
	if err != nil || len(info.Members) != 0 {
		t.Errorf("DescribeGroup = %+v, %v", info, err)
	}
	if err := adm.DeleteGroup(ctx, "g"); err != nil {
		t.Error(err)
	}
	if err := adm.DeleteTopic(ctx, "t"); err != nil {
		t.Error(err)
	}
}

func TestAutomaticCommit(t *testing.T) {
	seeds := fakeCluster(t, 1, "auto")
	ctx := ctxT(t)
	p, _ := sdk.NewProducer(sdk.Bytes(), sdk.String(), sdk.Brokers(seeds...), sdk.DefaultTopic("auto"), sdk.Retries(3))
	if _, err := p.SendSync(ctx, sdk.Message[[]byte, string]{Value: "a"}, sdk.Message[[]byte, string]{Value: "b"}); err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)
	c, err := sdk.NewConsumer(sdk.Bytes(), sdk.String(), sdk.Brokers(seeds...), sdk.Topics("auto"), sdk.Group("auto-g"), sdk.FromBeginning(), sdk.AutoCommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	pollN(t, ctx, c, 2)
	// Close commits what was polled, without a Commit call.
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	adm, _ := sdk.NewAdmin(sdk.Brokers(seeds...))
	defer adm.Close()
	committed, err := adm.CommittedOffsets(ctx, "auto-g")
	if err != nil || committed["auto"][0] != 2 {
		t.Errorf("committed %v, %v; want offset 2", committed, err)
	}
}
