package group

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/replica"
)

func TestPartitionForMatchesKafka(t *testing.T) {
	// Expected values printed by Java 17: abs(s.hashCode()) % 50, with
	// Kafka's abs (MIN_VALUE -> 0).
	for s, want := range map[string]int32{
		"": 0, "a": 47, "my-group": 12, "console-consumer-12345": 6, "billing": 9,
		"grüße": 23, "emoji-\U0001F600": 6, "polygenelubricants": 0, "GydZG_": 0,
	} {
		if got := PartitionFor(s, 50); got != want {
			t.Errorf("PartitionFor(%q) = %d, want %d", s, got, want)
		}
	}
}

// memStore is a Store in memory: one list of records per partition.
type memStore struct {
	mu   sync.Mutex
	logs map[int32][]replica.KeyValue
	fail error
}

func newMemStore() *memStore { return &memStore{logs: map[int32][]replica.KeyValue{}} }

func (s *memStore) Append(_ context.Context, p int32, records []replica.KeyValue) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return -1, s.fail
	}
	first := int64(len(s.logs[p]))
	for _, r := range records {
		s.logs[p] = append(s.logs[p], replica.KeyValue{Key: append([]byte(nil), r.Key...), Value: r.Value})
	}
	return first, nil
}

func (s *memStore) Load(_ context.Context, p int32, fn func(key, value []byte) error) error {
	s.mu.Lock()
	recs := append([]replica.KeyValue(nil), s.logs[p]...)
	s.mu.Unlock()
	for _, r := range recs {
		if err := fn(r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}

// latest returns the latest value of every key of partition p, as a
// compacted topic would keep it (tombstones as nil).
func (s *memStore) latest(p int32) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for _, r := range s.logs[p] {
		out[string(r.Key)] = r.Value
	}
	return out
}

// testWriter sends log lines to the test's log, shown when it fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

type harness struct {
	t     *testing.T
	c     *Coordinator
	clock *ManualClock
	store *memStore
	cfg   Config
}

func testConfig() Config {
	return Config{Partitions: 4, MinSessionTimeout: time.Second, MaxSessionTimeout: time.Minute,
		InitialRebalanceDelay: 3 * time.Second, MaxGroupSize: 100, OffsetsRetention: time.Hour,
		RetentionCheckInterval: 10 * time.Minute, MaxMetadataBytes: 16}
}

func newHarness(t *testing.T, cfg Config, store *memStore) *harness {
	t.Helper()
	return newObservedHarness(t, cfg, store, nil)
}

func newObservedHarness(t *testing.T, cfg Config, store *memStore, obs Observer) *harness {
	t.Helper()
	if store == nil {
		store = newMemStore()
	}
	h := &harness{t: t, clock: NewManualClock(time.UnixMilli(1_700_000_000_000)), store: store, cfg: cfg}
	h.c = New(Params{Config: cfg, Store: store, Clock: h.clock, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		PartitionExists: func(topic string, p int32) bool { return topic != "ghost" && p < 8 }, Observer: obs})
	t.Cleanup(h.c.Close)
	h.own()
	return h
}

// own makes the coordinator own every partition and waits for the loads.
func (h *harness) own() {
	h.t.Helper()
	var all []int32
	for p := int32(0); p < h.cfg.Partitions; p++ {
		all = append(all, p)
	}
	h.c.Sync(all)
	deadline := time.Now().Add(5 * time.Second)
	for p := int32(0); p < h.cfg.Partitions; p++ {
		for !h.c.Loaded(p) {
			if time.Now().After(deadline) {
				h.t.Fatalf("partition %d did not load", p)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// pendingJoin is a JoinGroup whose answer may come later.
type pendingJoin struct {
	mu   sync.Mutex
	resp *kmsg.JoinGroupResponse
}

func (p *pendingJoin) get() *kmsg.JoinGroupResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resp
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.ConsumerMemberMetadata{Version: 0, Topics: topics}
	return m.AppendTo(nil)
}

type joinOpts struct {
	version   int16
	member    string
	instance  string
	session   time.Duration
	rebalance time.Duration
	protocols []string
	topics    []string
	ptype     string
}

func (h *harness) join(groupID string, o joinOpts) *pendingJoin {
	h.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 5
	if o.version != 0 {
		req.Version = o.version
	}
	req.Group = groupID
	req.MemberID = o.member
	if o.instance != "" {
		req.InstanceID = &o.instance
	}
	req.SessionTimeoutMillis = 10000
	if o.session != 0 {
		req.SessionTimeoutMillis = int32(o.session.Milliseconds())
	}
	req.RebalanceTimeoutMillis = 30000
	if o.rebalance != 0 {
		req.RebalanceTimeoutMillis = int32(o.rebalance.Milliseconds())
	}
	req.ProtocolType = "consumer"
	if o.ptype != "" {
		req.ProtocolType = o.ptype
	}
	if o.protocols == nil {
		o.protocols = []string{"range"}
	}
	if o.topics == nil {
		o.topics = []string{"orders"}
	}
	for _, p := range o.protocols {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: consumerMeta(o.topics...)})
	}
	pj := &pendingJoin{}
	h.c.JoinGroup(context.Background(), req, Client{ID: "client", Host: "/127.0.0.1"}, func(r *kmsg.JoinGroupResponse) {
		pj.mu.Lock()
		defer pj.mu.Unlock()
		if pj.resp != nil {
			h.t.Errorf("join answered twice")
		}
		pj.resp = r
	})
	return pj
}

// joinNew joins a dynamic member the v4+ way: MEMBER_ID_REQUIRED, then
// again with the id.
func (h *harness) joinNew(groupID string, o joinOpts) (string, *pendingJoin) {
	h.t.Helper()
	first := h.join(groupID, o).get()
	if first == nil || first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		h.t.Fatalf("first join: %+v", first)
	}
	o.member = first.MemberID
	return first.MemberID, h.join(groupID, o)
}

type pendingSync struct {
	mu   sync.Mutex
	resp *kmsg.SyncGroupResponse
}

func (p *pendingSync) get() *kmsg.SyncGroupResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resp
}

func (h *harness) sync(groupID, member string, gen int32, assign map[string]string) *pendingSync {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation = groupID, member, gen
	for m, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	ps := &pendingSync{}
	h.c.SyncGroup(context.Background(), req, func(r *kmsg.SyncGroupResponse) {
		ps.mu.Lock()
		ps.resp = r
		ps.mu.Unlock()
	})
	return ps
}

func (h *harness) heartbeat(groupID, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation = groupID, member, gen
	return h.c.Heartbeat(req).ErrorCode
}

func (h *harness) describe(groupID string) kmsg.DescribeGroupsResponseGroup {
	return h.c.DescribeGroups([]string{groupID})[0]
}

func (h *harness) commit(groupID, member string, gen int32, topic string, partition int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 7
	req.Group, req.MemberID, req.Generation = groupID, member, gen
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: partition, Offset: offset, LeaderEpoch: -1}}}}
	return h.c.CommitOffsets(context.Background(), req).Topics[0].Partitions[0].ErrorCode
}

func memberIDs(r *kmsg.JoinGroupResponse) []string {
	var out []string
	for _, m := range r.Members {
		out = append(out, m.MemberID)
	}
	sort.Strings(out)
	return out
}

func TestJoinSyncHeartbeatRebalance(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	a, ja := h.joinNew("g", joinOpts{})
	if ja.get() != nil {
		t.Fatal("the first join of an empty group answered before the initial delay")
	}
	if st := h.describe("g").State; st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	h.clock.Advance(3 * time.Second)
	ra := ja.get()
	if ra == nil || ra.ErrorCode != 0 || ra.Generation != 1 || ra.LeaderID != a || *ra.Protocol != "range" || len(ra.Members) != 1 {
		t.Fatalf("join: %+v", ra)
	}
	if h.heartbeat("g", a, 1) != 0 {
		t.Fatal("heartbeat after join")
	}
	sa := h.sync("g", a, 1, map[string]string{a: "A1"}).get()
	if sa == nil || sa.ErrorCode != 0 || string(sa.MemberAssignment) != "A1" {
		t.Fatalf("sync: %+v", sa)
	}
	d := h.describe("g")
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "A1" || d.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe: %+v", d)
	}

	// A second member starts a rebalance; it completes as soon as both
	// are back (no initial delay: the group is not empty).
	b, jb := h.joinNew("g", joinOpts{})
	if jb.get() != nil {
		t.Fatal("answered before the leader rejoined")
	}
	if code := h.heartbeat("g", a, 1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	ja = h.join("g", joinOpts{member: a})
	ra, rb := ja.get(), jb.get()
	if ra == nil || rb == nil || ra.Generation != 2 || rb.Generation != 2 || ra.LeaderID != a || rb.LeaderID != a {
		t.Fatalf("rejoin: %+v %+v", ra, rb)
	}
	if got := memberIDs(ra); len(got) != 2 || len(rb.Members) != 0 {
		t.Fatalf("leader got %v, follower got %d members", got, len(rb.Members))
	}
	// The follower's sync waits for the leader's.
	sb := h.sync("g", b, 2, nil)
	if sb.get() != nil {
		t.Fatal("follower synced before the leader")
	}
	if st := h.describe("g").State; st != "CompletingRebalance" {
		t.Fatalf("state %s", st)
	}
	if r := h.sync("g", a, 1, nil).get(); r.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("sync with an old generation: %d", r.ErrorCode)
	}
	sa = h.sync("g", a, 2, map[string]string{a: "A2", b: "B2"}).get()
	if sa.ErrorCode != 0 || string(sa.MemberAssignment) != "A2" || string(sb.get().MemberAssignment) != "B2" {
		t.Fatalf("sync: %+v %+v", sa, sb.get())
	}

	// b stops heartbeating: after its session it is removed and the
	// group rebalances without it.
	for i := 0; i < 3; i++ {
		h.clock.Advance(3 * time.Second)
		if code := h.heartbeat("g", a, 2); code != 0 {
			t.Fatalf("heartbeat %d: %d", i, code)
		}
	}
	h.clock.Advance(3 * time.Second)
	if code := h.heartbeat("g", a, 2); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("after b's session expired: %d", code)
	}
	if code := h.heartbeat("g", b, 2); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %d", code)
	}
	ra = h.join("g", joinOpts{member: a}).get()
	if ra == nil || ra.Generation != 3 || len(ra.Members) != 1 {
		t.Fatalf("join after expiry: %+v", ra)
	}
}

func TestRebalanceTimeoutDropsMembersThatDoNotRejoin(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	h := newHarness(t, cfg, nil)
	a, ja := h.joinNew("g", joinOpts{rebalance: 20 * time.Second})
	if ja.get() == nil || ja.get().Generation != 1 {
		t.Fatalf("join without initial delay: %+v", ja.get())
	}
	h.sync("g", a, 1, map[string]string{a: "x"})
	b, jb := h.joinNew("g", joinOpts{rebalance: 20 * time.Second})
	// a keeps heartbeating but never rejoins: after the rebalance
	// timeout the join phase ends without it.
	for i := 0; i < 6; i++ {
		h.clock.Advance(3 * time.Second)
		h.heartbeat("g", a, 1)
	}
	if jb.get() != nil {
		t.Fatal("answered before the rebalance timeout")
	}
	h.clock.Advance(3 * time.Second)
	rb := jb.get()
	if rb == nil || rb.ErrorCode != 0 || rb.LeaderID != b || rb.Generation != 2 || len(rb.Members) != 1 {
		t.Fatalf("join after rebalance timeout: %+v", rb)
	}
	if code := h.heartbeat("g", a, 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("dropped member: %d", code)
	}
}

func TestLeaveGroup(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	h := newHarness(t, cfg, nil)
	a, _ := h.joinNew("g", joinOpts{})
	h.sync("g", a, 1, nil)
	b, jb := h.joinNew("g", joinOpts{})
	h.join("g", joinOpts{member: a})
	if jb.get().Generation != 2 {
		t.Fatal("no generation 2")
	}
	h.sync("g", a, 2, nil)
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 3
	req.Group = "g"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: b}, {MemberID: "nobody"}}
	resp := h.c.LeaveGroup(context.Background(), req)
	if resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", resp)
	}
	if r := h.join("g", joinOpts{member: a}).get(); r == nil || r.Generation != 3 || len(r.Members) != 1 {
		t.Fatalf("rejoin after leave: %+v", r)
	}
	// v0 leave of the last member empties the group.
	h.sync("g", a, 3, nil)
	req = kmsg.NewPtrLeaveGroupRequest()
	req.Group, req.MemberID = "g", a
	if resp := h.c.LeaveGroup(context.Background(), req); resp.ErrorCode != 0 {
		t.Fatalf("v0 leave: %d", resp.ErrorCode)
	}
	if d := h.describe("g"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after everyone left: %+v", d)
	}
}

func TestProtocolSelectionAndInconsistency(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	h := newHarness(t, cfg, nil)
	a, _ := h.joinNew("g", joinOpts{protocols: []string{"cooperative-sticky", "range"}})
	h.sync("g", a, 1, nil)
	if r := h.join("g", joinOpts{protocols: []string{"roundrobin"}}).get(); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("no common protocol: %+v", r)
	}
	if r := h.join("g", joinOpts{ptype: "connect"}).get(); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("other protocol type: %+v", r)
	}
	_, jb := h.joinNew("g", joinOpts{protocols: []string{"range", "cooperative-sticky"}})
	_, jc := h.joinNew("g", joinOpts{protocols: []string{"range"}})
	h.join("g", joinOpts{member: a, protocols: []string{"cooperative-sticky", "range"}})
	for _, j := range []*pendingJoin{jb, jc} {
		if r := j.get(); r == nil || *r.Protocol != "range" {
			t.Fatalf("selected %+v, want range (the only common one)", r)
		}
	}
	if r := h.join("g", joinOpts{session: time.Hour}).get(); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("session timeout above the maximum: %d", r.ErrorCode)
	}
}

func TestOldJoinVersionsNeedNoMemberID(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	h := newHarness(t, cfg, nil)
	r := h.join("g", joinOpts{version: 2}).get()
	if r == nil || r.ErrorCode != 0 || r.MemberID == "" || r.Generation != 1 {
		t.Fatalf("v2 join: %+v", r)
	}
}

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	h := newHarness(t, cfg, nil)
	ra := h.join("g", joinOpts{instance: "i-a"}).get()
	if ra == nil || ra.ErrorCode != 0 {
		t.Fatalf("static join: %+v", ra)
	}
	a := ra.MemberID
	b, jb := h.joinNew("g", joinOpts{})
	h.join("g", joinOpts{member: a, instance: "i-a"})
	if jb.get() == nil {
		t.Fatal("no generation 2")
	}
	h.sync("g", b, 2, nil)
	h.sync("g", a, 2, map[string]string{a: "A", b: "B"})
	// The static member restarts: a join with its instance id and no
	// member id gets a new id, the same generation and its assignment.
	r := h.join("g", joinOpts{instance: "i-a"}).get()
	if r == nil || r.ErrorCode != 0 || r.MemberID == a || r.Generation != 2 || r.LeaderID != r.MemberID {
		t.Fatalf("static rejoin: %+v", r)
	}
	if s := h.sync("g", r.MemberID, 2, nil).get(); s.ErrorCode != 0 || string(s.MemberAssignment) != "A" {
		t.Fatalf("static sync: %+v", s)
	}
	if st := h.describe("g").State; st != "Stable" {
		t.Fatalf("state %s: a static rejoin must not rebalance", st)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 3
	inst := "i-a"
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", a, 2, &inst
	if code := h.c.Heartbeat(hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("the old instance's heartbeat: %d", code)
	}
	if code := h.heartbeat("g", b, 2); code != 0 {
		t.Fatalf("the other member: %d", code)
	}
}

func TestOffsetCommitRules(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	h := newHarness(t, cfg, nil)
	// No group: a commit without a generation creates a simple group.
	if code := h.commit("simple", "", -1, "orders", 0, 10); code != 0 {
		t.Fatalf("simple commit: %d", code)
	}
	if code := h.commit("nogroup", "m", 3, "orders", 0, 10); code != kerr.IllegalGeneration.Code {
		t.Fatalf("generation for a missing group: %d", code)
	}
	if code := h.commit("simple", "", -1, "ghost", 0, 1); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %d", code)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 2
	req.Group, req.Generation = "simple", -1
	long := "0123456789abcdefX"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 5, Metadata: &long}}}}
	if code := h.c.CommitOffsets(context.Background(), req).Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("metadata too large: %d", code)
	}
	offs, err := h.c.FetchOffsets("simple")
	if err != nil || len(offs) != 1 || offs[TopicPartition{"orders", 0}].Offset != 10 {
		t.Fatalf("fetch: %v %v", offs, err)
	}

	a, _ := h.joinNew("g", joinOpts{})
	if code := h.commit("g", a, 1, "orders", 0, 1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit while completing the rebalance: %d", code)
	}
	h.sync("g", a, 1, nil)
	for _, c := range []struct {
		member string
		gen    int32
		want   int16
	}{{a, 1, 0}, {a, 7, kerr.IllegalGeneration.Code}, {"x", 1, kerr.UnknownMemberID.Code}, {"", -1, kerr.UnknownMemberID.Code}} {
		if code := h.commit("g", c.member, c.gen, "orders", 2, 42); code != c.want {
			t.Errorf("commit by %q gen %d: %d, want %d", c.member, c.gen, code, c.want)
		}
	}
	// The records are Kafka's: key v1, value v3.
	latest := h.store.latest(h.c.PartitionFor("g"))
	v, ok := latest[string(OffsetKey("g", "orders", 2))]
	if !ok || v[1] != OffsetValueVersion {
		t.Fatalf("stored commit value %x", v)
	}
	if ov, err := DecodeOffsetValue(v); err != nil || ov.Offset != 42 || ov.CommitTimestamp != h.clock.Now().UnixMilli() {
		t.Fatalf("stored %+v %v", ov, err)
	}
	gv, ok := latest[string(GroupKey("g"))]
	if !ok {
		t.Fatal("no group metadata record")
	}
	if g, err := DecodeGroupValue(gv); err != nil || g.Version != GroupValueVersion || g.Generation != 1 || len(g.Members) != 1 {
		t.Fatalf("stored group %+v %v", g, err)
	}

	h.store.fail = kerr.NotLeaderForPartition
	if code := h.commit("g", a, 1, "orders", 2, 43); code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("failed write: %d", code)
	}
	h.store.fail = nil
	if offs, _ := h.c.FetchOffsets("g"); offs[TopicPartition{"orders", 2}].Offset != 42 {
		t.Fatalf("a failed commit changed the offset: %v", offs)
	}
}

func TestGroupsAndOffsetsSurviveReload(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	store := newMemStore()
	h := newHarness(t, cfg, store)
	a, _ := h.joinNew("g", joinOpts{session: 10 * time.Second})
	h.sync("g", a, 1, map[string]string{a: "A"})
	h.commit("g", a, 1, "orders", 0, 100)
	h.commit("g", a, 1, "orders", 0, 120)
	h.commit("simple", "", -1, "orders", 1, 7)
	h.commit("gone", "", -1, "orders", 1, 7)
	if codes := h.c.DeleteGroups(context.Background(), []string{"gone"}); codes[0] != 0 {
		t.Fatalf("delete: %v", codes)
	}
	h.c.Close()

	// A new coordinator (a restarted broker) loads the same records.
	h2 := newHarness(t, cfg, store)
	if got := h2.c.Groups(); len(got) != 2 || got[0] != "g" || got[1] != "simple" {
		t.Fatalf("groups after reload: %v", got)
	}
	offs, _ := h2.c.FetchOffsets("g")
	if offs[TopicPartition{"orders", 0}].Offset != 120 {
		t.Fatalf("offsets after reload: %v", offs)
	}
	d := h2.describe("g")
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != a || string(d.Members[0].MemberAssignment) != "A" {
		t.Fatalf("group after reload: %+v", d)
	}
	// The member carries on with its generation...
	if code := h2.heartbeat("g", a, 1); code != 0 {
		t.Fatalf("heartbeat after reload: %d", code)
	}
	// ...or, if it is gone, its session expires and the group empties.
	h2.clock.Advance(9 * time.Second)
	if d := h2.describe("g"); d.State != "Stable" {
		t.Fatalf("before the restored member's session ends: %s", d.State)
	}
	h2.clock.Advance(11 * time.Second)
	if d := h2.describe("g"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after the restored member's session: %+v", d)
	}
}

func TestOffsetsExpire(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	h := newHarness(t, cfg, nil)
	h.c.Start()
	h.commit("simple", "", -1, "orders", 0, 1)
	a, _ := h.joinNew("g", joinOpts{topics: []string{"orders"}})
	h.sync("g", a, 1, nil)
	h.commit("g", a, 1, "orders", 0, 5)
	h.commit("g", a, 1, "old-topic", 0, 5)
	for i := 0; i < 7; i++ { // 70 minutes, heartbeating
		for j := 0; j < 100; j++ {
			h.clock.Advance(6 * time.Second)
			h.heartbeat("g", a, 1)
		}
	}
	if got := h.c.Groups(); len(got) != 1 || got[0] != "g" {
		t.Fatalf("groups after an hour: %v (the simple group's offset expired)", got)
	}
	offs, _ := h.c.FetchOffsets("g")
	if len(offs) != 1 || offs[TopicPartition{"orders", 0}].Offset != 5 {
		t.Fatalf("offsets of a live group: %v (subscribed topics stay, others expire)", offs)
	}
	// Once the group is empty, its offsets expire an hour later.
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group, req.MemberID = "g", a
	h.c.LeaveGroup(context.Background(), req)
	h.clock.Advance(50 * time.Minute)
	if offs, _ := h.c.FetchOffsets("g"); len(offs) != 1 {
		t.Fatalf("expired too early: %v", offs)
	}
	h.clock.Advance(30 * time.Minute)
	if got := h.c.Groups(); len(got) != 0 {
		t.Fatalf("groups left: %v", got)
	}
	if v, ok := h.store.latest(h.c.PartitionFor("g"))[string(GroupKey("g"))]; !ok || v != nil {
		t.Fatal("no tombstone for the expired group")
	}
}

func TestDeleteGroupsAndOffsets(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 0
	h := newHarness(t, cfg, nil)
	a, _ := h.joinNew("g", joinOpts{topics: []string{"orders"}})
	h.sync("g", a, 1, nil)
	h.commit("g", a, 1, "orders", 0, 5)
	h.commit("g", a, 1, "other", 0, 5)
	if codes := h.c.DeleteGroups(context.Background(), []string{"g", "none"}); codes[0] != kerr.NonEmptyGroup.Code || codes[1] != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete: %v", codes)
	}
	top, per := h.c.DeleteOffsets(context.Background(), "g", []TopicPartition{{"orders", 0}, {"other", 0}})
	if top != 0 || per[0] != kerr.GroupSubscribedToTopic.Code || per[1] != 0 {
		t.Fatalf("offset delete: %d %v", top, per)
	}
	if offs, _ := h.c.FetchOffsets("g"); len(offs) != 1 {
		t.Fatalf("offsets after delete: %v", offs)
	}
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group, lg.MemberID = "g", a
	h.c.LeaveGroup(context.Background(), lg)
	if codes := h.c.DeleteGroups(context.Background(), []string{"g"}); codes[0] != 0 {
		t.Fatalf("delete empty group: %v", codes)
	}
	if d := h.describe("g"); d.State != "Dead" || d.ErrorCode != 0 {
		t.Fatalf("deleted group: %+v", d)
	}
	latest := h.store.latest(h.c.PartitionFor("g"))
	for _, k := range [][]byte{GroupKey("g"), OffsetKey("g", "orders", 0)} {
		if v, ok := latest[string(k)]; !ok || v != nil {
			t.Fatalf("no tombstone for %x", k)
		}
	}
}

func TestOwnership(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	p := h.c.PartitionFor("g")
	var others []int32
	for i := int32(0); i < 4; i++ {
		if i != p {
			others = append(others, i)
		}
	}
	h.c.Sync(others)
	if r := h.join("g", joinOpts{}).get(); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join at a non-coordinator: %d", r.ErrorCode)
	}
	if _, err := h.c.FetchOffsets("g"); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("fetch at a non-coordinator: %v", err)
	}
	if _, err := h.c.ListGroups(nil); err != nil {
		t.Fatal(err)
	}
}

func TestUnloadAnswersWaitingMembers(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	_, j := h.joinNew("g", joinOpts{})
	h.c.Sync(nil)
	if r := j.get(); r == nil || r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("waiting join after the partition moved: %+v", r)
	}
	// The group's timers (its join phase, the member's session) stopped.
	if n := h.clock.Pending(); n != 0 {
		t.Fatalf("%d timers still pending after the unload", n)
	}
}
