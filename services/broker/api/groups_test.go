package api

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/replica"
)

// groupHandlers are handlers with __consumer_offsets created (4
// partitions) and loaded.
func groupHandlers(t *testing.T) (*Handlers, *fakeCluster) {
	t.Helper()
	h, c := newHandlers(t, "memory", map[string]string{"offsets.topic.num.partitions": "4", "group.initial.rebalance.delay.ms": "0"})
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 2
	req.CoordinatorKey = "g"
	resp := serve[*kmsg.FindCoordinatorResponse](t, h, req)
	if resp.ErrorCode != 0 || resp.NodeID != 1 || resp.Host != "127.0.0.1" || resp.Port != 9092 {
		t.Fatalf("find coordinator: %+v", resp)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p := int32(0); p < 4; p++ {
		for !c.groups.Loaded(p) {
			if time.Now().After(deadline) {
				t.Fatalf("partition %d never loaded", p)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return h, c
}

func TestFindCoordinatorCreatesTheOffsetsTopic(t *testing.T) {
	h, c := groupHandlers(t)
	top, ok := c.Topic(group.Topic)
	if !ok || len(top.Partitions) != 4 || top.Config["cleanup.policy"] != "compact" || top.Config["segment.bytes"] != "104857600" {
		t.Fatalf("offsets topic: %+v", top)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	resp := serve[*kmsg.MetadataResponse](t, h, md)
	internal := map[string]bool{}
	for _, rt := range resp.Topics {
		internal[*rt.Topic] = rt.IsInternal
	}
	if !internal[group.Topic] {
		t.Fatalf("__consumer_offsets not internal in metadata: %v", internal)
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 4
	req.CoordinatorKeys = []string{"a", "b"}
	r4 := serve[*kmsg.FindCoordinatorResponse](t, h, req)
	if len(r4.Coordinators) != 2 || r4.Coordinators[1].Key != "b" || r4.Coordinators[1].NodeID != 1 || r4.Coordinators[0].ErrorCode != 0 {
		t.Fatalf("v4: %+v", r4)
	}
	req = kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 3
	req.CoordinatorKey, req.CoordinatorType = "txn", 1
	if r := serve[*kmsg.FindCoordinatorResponse](t, h, req); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("transaction coordinator: %+v", r)
	}
	// Clients may not write, delete or grow the internal topic.
	if got := produce(t, h, group.Topic, 0, "x"); got.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to %s: %d", group.Topic, got.ErrorCode)
	}
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version = 5
	dt.TopicNames = []string{group.Topic}
	if r := serve[*kmsg.DeleteTopicsResponse](t, h, dt); r.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("delete %s: %+v", group.Topic, r.Topics[0])
	}
}

func joinReq(version int16, groupID, member string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	req.Group, req.MemberID = groupID, member
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
	req.ProtocolType = "consumer"
	meta := kmsg.ConsumerMemberMetadata{Topics: []string{"orders"}}
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	return req
}

func TestGroupLifecycleOverTheWire(t *testing.T) {
	h, c := groupHandlers(t)
	createTopic(t, h, "orders", 2, nil)

	// v4+: a new member first gets its id.
	j := serve[*kmsg.JoinGroupResponse](t, h, joinReq(7, "g", ""))
	if j.ErrorCode != kerr.MemberIDRequired.Code || j.MemberID == "" {
		t.Fatalf("first join: %+v", j)
	}
	member := j.MemberID
	j = serve[*kmsg.JoinGroupResponse](t, h, joinReq(7, "g", member))
	if j.ErrorCode != 0 || j.Generation != 1 || j.LeaderID != member || *j.Protocol != "range" || *j.ProtocolType != "consumer" || len(j.Members) != 1 {
		t.Fatalf("join: %+v", j)
	}
	assign := kmsg.ConsumerMemberAssignment{Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: "orders", Partitions: []int32{0, 1}}}}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.MemberID, sync.Generation = "g", member, 1
	pt, p := "consumer", "range"
	sync.ProtocolType, sync.Protocol = &pt, &p
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: member, MemberAssignment: assign.AppendTo(nil)}}
	s := serve[*kmsg.SyncGroupResponse](t, h, sync)
	if s.ErrorCode != 0 || string(s.MemberAssignment) != string(assign.AppendTo(nil)) || *s.Protocol != "range" {
		t.Fatalf("sync: %+v", s)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation = "g", member, 1
	if r := serve[*kmsg.HeartbeatResponse](t, h, hb); r.ErrorCode != 0 {
		t.Fatalf("heartbeat: %d", r.ErrorCode)
	}

	// Commit at v8 (flexible) and at v2 (kafka-python), fetch at v1, v5 and v8.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version = 8
	oc.Group, oc.MemberID, oc.Generation = "g", member, 1
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: 0, Offset: 10, LeaderEpoch: 0}, {Partition: 1, Offset: 20, LeaderEpoch: -1}}},
		{Topic: "missing", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	r := serve[*kmsg.OffsetCommitResponse](t, h, oc)
	if r.Topics[0].Partitions[0].ErrorCode != 0 || r.Topics[0].Partitions[1].ErrorCode != 0 || r.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("commit v8: %+v", r)
	}
	oc2 := kmsg.NewPtrOffsetCommitRequest()
	oc2.Version = 2
	oc2.Group, oc2.MemberID, oc2.Generation = "g", member, 1
	oc2.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 21}}}}
	if r := serve[*kmsg.OffsetCommitResponse](t, h, oc2); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit v2: %+v", r)
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 1
	of.Group = "g"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1, 5}}}
	f1 := serve[*kmsg.OffsetFetchResponse](t, h, of)
	ps := f1.Topics[0].Partitions
	if ps[0].Offset != 10 || ps[1].Offset != 21 || ps[2].Offset != -1 || ps[2].ErrorCode != 0 {
		t.Fatalf("fetch v1: %+v", f1)
	}
	of = kmsg.NewPtrOffsetFetchRequest()
	of.Version = 5
	of.Group = "g"
	f5 := serve[*kmsg.OffsetFetchResponse](t, h, of) // null topics: all
	if len(f5.Topics) != 1 || len(f5.Topics[0].Partitions) != 2 || f5.Topics[0].Partitions[0].LeaderEpoch != 0 || f5.ErrorCode != 0 {
		t.Fatalf("fetch v5 all: %+v", f5)
	}
	of = kmsg.NewPtrOffsetFetchRequest()
	of.Version = 8
	of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}, {Group: "nobody", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", Partitions: []int32{0}}}}}
	f8 := serve[*kmsg.OffsetFetchResponse](t, h, of)
	if len(f8.Groups) != 2 || len(f8.Groups[0].Topics[0].Partitions) != 2 || f8.Groups[1].Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("fetch v8: %+v", f8)
	}

	// Describe and list.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version = 5
	dg.Groups = []string{"g", "nobody"}
	d := serve[*kmsg.DescribeGroupsResponse](t, h, dg)
	if d.Groups[0].State != "Stable" || d.Groups[0].Protocol != "range" || len(d.Groups[0].Members) != 1 || d.Groups[0].Members[0].ClientID != "test" ||
		d.Groups[1].State != "Dead" || d.Groups[1].ErrorCode != 0 {
		t.Fatalf("describe: %+v", d)
	}
	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version = 4
	lg.StatesFilter = []string{"Stable"}
	l := serve[*kmsg.ListGroupsResponse](t, h, lg)
	if len(l.Groups) != 1 || l.Groups[0].Group != "g" || l.Groups[0].GroupState != "Stable" || l.Groups[0].ProtocolType != "consumer" {
		t.Fatalf("list: %+v", l)
	}

	// Deleting needs an empty group; OffsetDelete keeps subscribed topics.
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version = 2
	del.Groups = []string{"g"}
	if r := serve[*kmsg.DeleteGroupsResponse](t, h, del); r.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete a live group: %+v", r)
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	if r := serve[*kmsg.OffsetDeleteResponse](t, h, od); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("offset delete of a subscribed topic: %+v", r)
	}
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Version = 5
	lv.Group = "g"
	lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: member}}
	if r := serve[*kmsg.LeaveGroupResponse](t, h, lv); r.ErrorCode != 0 || r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", r)
	}
	if r := serve[*kmsg.OffsetDeleteResponse](t, h, od); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete of an empty group: %+v", r)
	}
	if r := serve[*kmsg.DeleteGroupsResponse](t, h, del); r.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete: %+v", r)
	}

	// Everything went to the group's partition of __consumer_offsets as
	// Kafka's records: commits, group metadata, tombstones.
	rp := c.replicas.Partition(group.Topic, group.PartitionFor("g", 4))
	rr, err := rp.Read(context.Background(), 0, 1<<20, replica.ToHighWatermark)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[group.KeyKind]int{}
	tombstones := 0
	it := storage.Batches(rr.Batches, true)
	for it.Next() {
		replica.EachRecord(it.Batch(), func(rec replica.Record) error {
			k, err := group.DecodeKey(rec.Key)
			if err != nil {
				t.Fatalf("key %x: %v", rec.Key, err)
			}
			kinds[k.Kind]++
			if rec.Value == nil {
				tombstones++
			} else if k.Kind == group.OffsetKind {
				if binary.BigEndian.Uint16(rec.Value) != group.OffsetValueVersion {
					t.Fatalf("offset value version %x", rec.Value[:2])
				}
			}
			return nil
		})
	}
	if kinds[group.OffsetKind] < 4 || kinds[group.GroupKind] < 3 || tombstones < 2 {
		t.Fatalf("records: %v, %d tombstones", kinds, tombstones)
	}
}

func TestOldJoinAndOffsetVersions(t *testing.T) {
	h, _ := groupHandlers(t)
	createTopic(t, h, "orders", 1, nil)
	j := serve[*kmsg.JoinGroupResponse](t, h, joinReq(0, "old", ""))
	if j.ErrorCode != 0 || j.MemberID == "" || j.Generation != 1 {
		t.Fatalf("v0 join: %+v", j)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "old", j.MemberID, 1
	if s := serve[*kmsg.SyncGroupResponse](t, h, sync); s.ErrorCode != 0 {
		t.Fatalf("v0 sync: %+v", s)
	}
	// An OffsetFetch v0/v1 error goes into each partition.
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 1
	of.Group = "old"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0}}}
	if r := serve[*kmsg.OffsetFetchResponse](t, h, of); r.Topics[0].Partitions[0].ErrorCode != 0 || r.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("fetch v1: %+v", r)
	}
}

func TestProduceChecksForGroupsAndCompaction(t *testing.T) {
	h, _ := newHandlers(t, "memory", nil)
	createTopic(t, h, "compacted", 1, map[string]string{"cleanup.policy": "compact"})
	if got := produce(t, h, "compacted", 0, "no key"); got.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("keyless record to a compacted topic: %d", got.ErrorCode)
	}
	createTopic(t, h, "plain", 1, nil)
	if got := produce(t, h, "plain", 0, "no key"); got.ErrorCode != 0 {
		t.Fatalf("keyless record to a plain topic: %d", got.ErrorCode)
	}
}

func TestIdempotentProduceErrors(t *testing.T) {
	h, _ := newHandlers(t, "memory", nil)
	createTopic(t, h, "t", 1, nil)
	send := func(seq int32) kmsg.ProduceResponseTopicPartition {
		b := batch("v")
		binary.BigEndian.PutUint64(b[43:], 1000) // producer id
		binary.BigEndian.PutUint16(b[51:], 0)
		binary.BigEndian.PutUint32(b[53:], uint32(seq))
		storage.UpdateCRC(b)
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks = 9, -1
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: b}}}}
		return serve[*kmsg.ProduceResponse](t, h, req).Topics[0].Partitions[0]
	}
	if r := send(3); r.ErrorCode != kerr.UnknownProducerID.Code {
		t.Fatalf("unknown producer at 3: %+v", r)
	}
	if r := send(0); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("first: %+v", r)
	}
	if r := send(0); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("retry: %+v", r)
	}
	if r := send(2); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: %+v", r)
	}
	if r := send(1); r.ErrorCode != 0 || r.BaseOffset != 1 {
		t.Fatalf("next: %+v", r)
	}
}

// TestOffsetsTopicCreatedByHand: a __consumer_offsets created with another
// partition count than offsets.topic.num.partitions decides where groups
// live, as in Kafka.
func TestOffsetsTopicCreatedByHand(t *testing.T) {
	h, c := newHandlers(t, "memory", map[string]string{"offsets.topic.num.partitions": "4", "group.initial.rebalance.delay.ms": "0"})
	if r := createTopic(t, h, group.Topic, 3, map[string]string{"cleanup.policy": "compact"}); r.ErrorCode != 0 {
		t.Fatalf("create: %+v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p := int32(0); p < 3; p++ {
		for !c.groups.Loaded(p) {
			if time.Now().After(deadline) {
				t.Fatalf("partition %d never loaded", p)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// "my-group" is in partition 2 of 4, but 0 of 3.
	if group.PartitionFor("my-group", 4) != 2 || c.groups.PartitionFor("my-group") != 0 {
		t.Fatalf("partition of my-group: %d", c.groups.PartitionFor("my-group"))
	}
	j := serve[*kmsg.JoinGroupResponse](t, h, joinReq(3, "my-group", ""))
	if j.ErrorCode != 0 || j.Generation != 1 {
		t.Fatalf("join: %+v", j)
	}
}
