package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client describes who sent a request, for member ids and DescribeGroups.
type Client struct {
	ID   string // the request header's client id
	Host string // the peer address as Kafka shows it ("/127.0.0.1")
}

// newMemberID is Kafka's member id: the client id (or the static
// instance id) and a random UUID.
func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return prefix + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// JoinGroup serves a JoinGroup request; respond is called once, now or
// when the join phase completes (it must not block). Versions decide two
// behaviours: from v4 a dynamic member without an id first gets one with
// MEMBER_ID_REQUIRED (KIP-394), and from v5 a group.instance.id makes the
// member static (KIP-345).
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, cl Client, respond func(*kmsg.JoinGroupResponse)) {
	reply := func(r joinResult) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = r.code
		resp.Generation = -1
		resp.MemberID = r.memberID
		if r.code == 0 {
			resp.Generation = r.generation
			resp.LeaderID = r.leader
			resp.Members = r.members
			resp.SkipAssignment = r.skip && req.Version >= 9
			pt, p := r.protocolType, r.protocol
			resp.Protocol = &p
			if req.Version >= 7 {
				resp.ProtocolType = &pt
			}
		}
		if resp.Members == nil {
			resp.Members = []kmsg.JoinGroupResponseMember{}
		}
		respond(resp)
	}
	fail := func(code int16) { reply(joinResult{code: code, memberID: req.MemberID}) }

	sessionTimeout := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalanceTimeout := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalanceTimeout = sessionTimeout // v0 has no rebalance timeout
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	p, err := c.owned(req.Group)
	if err != nil {
		fail(code(err))
		return
	}
	if sessionTimeout < c.cfg.MinSessionTimeout || sessionTimeout > c.cfg.MaxSessionTimeout {
		fail(kerr.InvalidSessionTimeout.Code)
		return
	}
	protocols := make([]kmsg.JoinGroupRequestProtocol, len(req.Protocols))
	for i, pr := range req.Protocols {
		protocols[i] = kmsg.JoinGroupRequestProtocol{Name: pr.Name, Metadata: slices.Clone(pr.Metadata)}
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			fail(kerr.UnknownMemberID.Code)
			return
		}
		g = newGroup(req.Group, p, c.clock.Now())
		if !g.supports(req.ProtocolType, protocols) {
			fail(kerr.InconsistentGroupProtocol.Code) // and leave no empty group behind
			return
		}
		c.groups[req.Group] = g
	}
	if g.state == stateDead {
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	}
	if !g.supports(req.ProtocolType, protocols) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	mem := &member{clientID: cl.ID, clientHost: cl.Host, sessionTimeout: sessionTimeout, rebalanceTimeout: rebalanceTimeout,
		protocolType: req.ProtocolType, protocols: protocols, instanceID: instance}
	mem.joinWait = reply

	if req.MemberID == "" {
		// A new member.
		prefix := cl.ID
		if instance != "" {
			prefix = instance
		}
		mem.id = newMemberID(prefix)
		switch {
		case instance != "":
			c.joinStatic(ctx, g, mem)
		case req.Version >= 4:
			// KIP-394: hand out the id first, so that a member whose
			// response gets lost does not leave a ghost behind.
			id := mem.id
			g.pending[id] = c.clock.AfterFunc(sessionTimeout, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				if _, ok := g.pending[id]; ok && c.groups[g.id] == g {
					delete(g.pending, id)
					c.tryCompleteJoin(context.Background(), g)
				}
			})
			reply(joinResult{code: kerr.MemberIDRequired.Code, memberID: id})
		default:
			c.addAndRebalance(ctx, g, mem)
		}
		return
	}

	// A member that has (or was handed) an id.
	if stop, ok := g.pending[req.MemberID]; ok {
		stop()
		delete(g.pending, req.MemberID)
		mem.id = req.MemberID
		c.addAndRebalance(ctx, g, mem)
		return
	}
	if fenced(g, req.MemberID, instance) {
		fail(kerr.FencedInstanceID.Code)
		return
	}
	m := g.members[req.MemberID]
	if m == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	switch g.state {
	case statePreparingRebalance:
		c.updateAndRebalance(ctx, g, m, mem)
	case stateCompletingRebalance:
		if m.sameProtocols(protocols) {
			// The member lost its join response: send it again.
			m.joinWait = reply
			c.answerJoin(m, c.joinedResult(g, m))
			return
		}
		c.updateAndRebalance(ctx, g, m, mem)
	case stateStable:
		if g.leader == m.id || !m.sameProtocols(protocols) {
			// A leader rejoins to have the group reassigned (its
			// subscription or the topics changed); so does a member with
			// new metadata.
			c.updateAndRebalance(ctx, g, m, mem)
			return
		}
		m.joinWait = reply
		c.answerJoin(m, c.joinedResult(g, m))
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

// fenced reports whether a request names a static instance that now
// belongs to another member id (a newer instance took it over).
func fenced(g *group, memberID, instance string) bool {
	if instance == "" {
		return false
	}
	id, ok := g.static[instance]
	return ok && id != memberID
}

// joinedResult is the join response of the current generation for m.
func (c *Coordinator) joinedResult(g *group, m *member) joinResult {
	r := joinResult{memberID: m.id, generation: g.generation, protocolType: g.protocolType, protocol: g.protocol, leader: g.leader}
	if g.leader == m.id {
		r.members = c.memberList(g)
	}
	return r
}

// memberList is what the leader assigns from: every member's id, static
// instance id and metadata for the selected protocol.
func (c *Coordinator) memberList(g *group) []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, id := range g.order {
		m := g.members[id]
		jm := kmsg.JoinGroupResponseMember{MemberID: m.id, ProtocolMetadata: m.metadata(g.protocol)}
		if m.instanceID != "" {
			inst := m.instanceID
			jm.InstanceID = &inst
		}
		out = append(out, jm)
	}
	return out
}

// joinStatic joins a member with a group.instance.id: a new instance is
// added and triggers a rebalance; a known one replaces its old member id
// and, when the group is stable and the protocol choice holds, gets the
// current assignment back without a rebalance (KIP-345). Called with c.mu.
func (c *Coordinator) joinStatic(ctx context.Context, g *group, mem *member) {
	oldID, known := g.static[mem.instanceID]
	if !known {
		c.addAndRebalance(ctx, g, mem)
		return
	}
	old := g.members[oldID]
	// The old member's pending requests are answered: it was fenced.
	c.answerJoin(old, joinResult{code: kerr.FencedInstanceID.Code, memberID: oldID})
	c.answerSync(old, kerr.FencedInstanceID.Code, nil)
	wasLeader := g.leader == oldID
	reply := mem.joinWait
	mem.joinWait = nil
	mem.assignment = old.assignment
	idx := slices.Index(g.order, oldID)
	g.remove(oldID)
	g.add(mem)
	// Keep the replaced member's place in the join order and leadership.
	g.order = slices.Delete(g.order, len(g.order)-1, len(g.order))
	g.order = slices.Insert(g.order, idx, mem.id)
	if wasLeader {
		g.leader = mem.id
	}
	c.heartbeat(g, mem)
	switch g.state {
	case stateStable:
		if g.selectProtocol() == g.protocol {
			if err := c.storeGroup(ctx, g); err != nil {
				// Undo nothing: the member keeps its new id, and a rebalance
				// makes the stored state right again.
				reply(joinResult{code: code(err), memberID: mem.id})
				c.prepareRebalance(ctx, g, "storing a replaced static member failed")
				return
			}
			r := c.joinedResult(g, mem)
			r.skip = g.leader == mem.id
			reply(r)
			return
		}
		mem.joinWait = reply
		c.prepareRebalance(ctx, g, "static member "+mem.instanceID+" rejoined with other protocols")
	case stateCompletingRebalance:
		// Its old id may already have an assignment on its way: rebalance.
		mem.joinWait = reply
		c.prepareRebalance(ctx, g, "static member "+mem.instanceID+" rejoined during a rebalance")
	case statePreparingRebalance:
		mem.joinWait = reply
		c.tryCompleteJoin(ctx, g)
	default:
		mem.joinWait = reply
		c.prepareRebalance(ctx, g, "static member "+mem.instanceID+" joined")
	}
}

// addAndRebalance adds a new member waiting in JoinGroup and starts (or
// feeds) a rebalance. Called with c.mu.
func (c *Coordinator) addAndRebalance(ctx context.Context, g *group, m *member) {
	if int32(len(g.members)) >= c.cfg.MaxGroupSize && c.cfg.MaxGroupSize > 0 {
		c.answerJoin(m, joinResult{code: kerr.GroupMaxSizeReached.Code, memberID: m.id})
		return
	}
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	m.isNew = true
	g.add(m)
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	c.log.Info("member joined group", "group", g.id, "member", m.id, "client", m.clientID, "instance", m.instanceID)
	c.maybeRebalance(ctx, g, "adding member "+m.id)
}

// updateAndRebalance takes a known member's rejoin (new protocols,
// timeouts, and its join response callback). Called with c.mu.
func (c *Coordinator) updateAndRebalance(ctx context.Context, g *group, m, with *member) {
	m.protocols = with.protocols
	m.sessionTimeout = with.sessionTimeout
	m.rebalanceTimeout = with.rebalanceTimeout
	m.clientID, m.clientHost = with.clientID, with.clientHost
	if m.joinWait != nil {
		// A second join while one waits: the older one is superseded.
		c.answerJoin(m, joinResult{code: kerr.RebalanceInProgress.Code, memberID: m.id})
	}
	m.joinWait = with.joinWait
	c.maybeRebalance(ctx, g, "member "+m.id+" rejoined")
}

// maybeRebalance starts a rebalance unless one is in its join phase, where
// it checks whether the phase can end. Called with c.mu.
func (c *Coordinator) maybeRebalance(ctx context.Context, g *group, reason string) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		c.prepareRebalance(ctx, g, reason)
	case statePreparingRebalance:
		c.tryCompleteJoin(ctx, g)
	}
}

// prepareRebalance enters the join phase: waiting syncs are told to rejoin,
// and a timer ends the phase after the longest rebalance timeout (or, for
// an empty group, after group.initial.rebalance.delay.ms, extended while
// members keep arriving). Called with c.mu.
func (c *Coordinator) prepareRebalance(ctx context.Context, g *group, reason string) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			c.answerSync(m, kerr.RebalanceInProgress.Code, nil)
		}
	}
	initial := g.state == stateEmpty
	g.setState(statePreparingRebalance, c.clock.Now())
	c.log.Info("preparing to rebalance group", "group", g.id, "generation", g.generation, "members", len(g.members), "reason", reason)
	if initial && c.cfg.InitialRebalanceDelay > 0 {
		delay := c.cfg.InitialRebalanceDelay
		c.armInitialJoin(g, delay, max(g.maxRebalanceTimeout()-delay, 0))
		return
	}
	c.armJoin(g, g.maxRebalanceTimeout())
	c.tryCompleteJoin(ctx, g)
}

func (c *Coordinator) stopJoinTimer(g *group) {
	if g.joinStop != nil {
		g.joinStop()
		g.joinStop = nil
	}
	g.joinSeq++
	g.initialDelay = false
}

// armJoin ends the join phase after d at the latest.
func (c *Coordinator) armJoin(g *group, d time.Duration) {
	c.stopJoinTimer(g)
	seq := g.joinSeq
	g.joinStop = c.clock.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if g.joinSeq != seq || c.groups[g.id] != g || g.state != statePreparingRebalance {
			return
		}
		c.completeJoin(context.Background(), g)
	})
}

// armInitialJoin is Kafka's InitialDelayedJoin: after delay, if members
// joined meanwhile and rebalance time remains, wait once more.
func (c *Coordinator) armInitialJoin(g *group, delay, remaining time.Duration) {
	c.stopJoinTimer(g)
	g.initialDelay = true
	g.newMemberAdded = false
	seq := g.joinSeq
	g.joinStop = c.clock.AfterFunc(delay, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if g.joinSeq != seq || c.groups[g.id] != g || g.state != statePreparingRebalance {
			return
		}
		if g.newMemberAdded && remaining > 0 {
			next := min(delay, remaining)
			c.armInitialJoin(g, next, remaining-next)
			return
		}
		c.completeJoin(context.Background(), g)
	})
}

// tryCompleteJoin ends the join phase early when every member is back.
// Called with c.mu.
func (c *Coordinator) tryCompleteJoin(ctx context.Context, g *group) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		c.completeJoin(ctx, g)
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are dropped, a new generation starts with the protocol the members
// voted for, and every member gets its join response (the leader with
// the member list to assign). Called with c.mu.
func (c *Coordinator) completeJoin(ctx context.Context, g *group) {
	c.stopJoinTimer(g)
	for _, id := range slices.Clone(g.order) {
		m := g.members[id]
		if m.joinWait == nil && m.instanceID == "" {
			c.log.Info("member did not rejoin in time", "group", g.id, "member", id)
			g.remove(id)
		}
	}
	now := c.clock.Now()
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(stateEmpty, now)
		g.subscribed = nil
		if err := c.storeGroup(ctx, g); err != nil {
			c.log.Warn("storing empty group failed", "group", g.id, "err", err)
		}
		c.log.Info("group is empty", "group", g.id, "generation", g.generation)
		return
	}
	g.protocol = g.selectProtocol()
	if m := g.members[g.leader]; m == nil || m.joinWait == nil {
		for _, id := range g.order {
			if g.members[id].joinWait != nil {
				g.leader = id
				break
			}
		}
	}
	g.setState(stateCompletingRebalance, now)
	g.computeSubscriptions()
	c.log.Info("group rebalanced", "group", g.id, "generation", g.generation, "protocol", g.protocol, "leader", g.leader, "members", len(g.members))
	for _, id := range g.order {
		m := g.members[id]
		if m.joinWait == nil {
			continue
		}
		m.isNew = false
		c.answerJoin(m, c.joinedResult(g, m))
		c.heartbeat(g, m)
	}
}

// SyncGroup serves a SyncGroup request; respond is called once, now or
// when the leader's assignment is stored.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest, respond func(*kmsg.SyncGroupResponse)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reply := func(code int16, assignment []byte, g *group) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		resp.MemberAssignment = assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		if req.Version >= 5 && code == 0 && g != nil {
			pt, p := g.protocolType, g.protocol
			resp.ProtocolType, resp.Protocol = &pt, &p
		}
		respond(resp)
	}
	if _, err := c.owned(req.Group); err != nil {
		reply(code(err), nil, nil)
		return
	}
	g := c.groups[req.Group]
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	switch {
	case g == nil:
		reply(kerr.UnknownMemberID.Code, nil, nil)
		return
	case g.state == stateDead:
		reply(kerr.CoordinatorNotAvailable.Code, nil, nil)
		return
	case fenced(g, req.MemberID, instance):
		reply(kerr.FencedInstanceID.Code, nil, nil)
		return
	case g.members[req.MemberID] == nil:
		reply(kerr.UnknownMemberID.Code, nil, nil)
		return
	case req.Generation != g.generation:
		reply(kerr.IllegalGeneration.Code, nil, nil)
		return
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType, req.Protocol != nil && *req.Protocol != g.protocol:
		reply(kerr.InconsistentGroupProtocol.Code, nil, nil)
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case stateEmpty:
		reply(kerr.UnknownMemberID.Code, nil, nil)
	case statePreparingRebalance:
		reply(kerr.RebalanceInProgress.Code, nil, nil)
	case stateStable:
		c.heartbeat(g, m)
		reply(0, m.assignment, g)
	case stateCompletingRebalance:
		m.syncWait = func(code int16, a []byte) { reply(code, a, g) }
		c.heartbeat(g, m)
		if g.leader != m.id {
			return
		}
		assigned := map[string][]byte{}
		for _, a := range req.GroupAssignment {
			assigned[a.MemberID] = slices.Clone(a.MemberAssignment)
		}
		for id, mm := range g.members {
			mm.assignment = assigned[id]
			if mm.assignment == nil {
				mm.assignment = []byte{}
			}
		}
		if err := c.storeGroup(ctx, g); err != nil {
			c.log.Warn("storing group assignment failed", "group", g.id, "err", err)
			for _, mm := range g.members {
				mm.assignment = nil
				c.answerSync(mm, code(err), nil)
			}
			c.prepareRebalance(ctx, g, "storing the assignment failed")
			return
		}
		g.setState(stateStable, c.clock.Now())
		for _, mm := range g.members {
			c.answerSync(mm, 0, mm.assignment)
		}
	}
}

// Heartbeat serves a Heartbeat request.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = c.heartbeatCode(req)
	return resp
}

func (c *Coordinator) heartbeatCode(req *kmsg.HeartbeatRequest) int16 {
	if _, err := c.owned(req.Group); err != nil {
		return code(err)
	}
	g := c.groups[req.Group]
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	switch {
	case g == nil, g.state == stateEmpty:
		return kerr.UnknownMemberID.Code
	case g.state == stateDead:
		return kerr.CoordinatorNotAvailable.Code
	case fenced(g, req.MemberID, instance):
		return kerr.FencedInstanceID.Code
	case g.members[req.MemberID] == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	c.heartbeat(g, g.members[req.MemberID])
	if g.state == statePreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveGroup serves a LeaveGroup request: v0-2 name one member, v3+ a
// batch of members by id or by static instance id (KIP-345).
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leavers := req.Members
	if req.Version < 3 {
		leavers = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	top := int16(0)
	var per []kmsg.LeaveGroupResponseMember
	if _, err := c.owned(req.Group); err != nil {
		top = code(err)
	} else if g := c.groups[req.Group]; g != nil && g.state == stateDead {
		top = kerr.CoordinatorNotAvailable.Code
	} else {
		for _, l := range leavers {
			instance := ""
			if l.InstanceID != nil {
				instance = *l.InstanceID
			}
			rm := kmsg.LeaveGroupResponseMember{MemberID: l.MemberID, InstanceID: l.InstanceID}
			if g == nil {
				rm.ErrorCode = kerr.UnknownMemberID.Code
			} else {
				rm.ErrorCode = c.leave(ctx, g, l.MemberID, instance)
			}
			per = append(per, rm)
		}
		if req.Version < 3 {
			top = per[0].ErrorCode
		}
	}
	resp.ErrorCode = top
	if req.Version >= 3 {
		resp.Members = per
	}
	return resp
}

func (c *Coordinator) leave(ctx context.Context, g *group, memberID, instance string) int16 {
	if instance != "" {
		id, ok := g.static[instance]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case memberID != "" && id != memberID:
			return kerr.FencedInstanceID.Code
		}
		memberID = id
	}
	if stop, ok := g.pending[memberID]; ok {
		stop()
		delete(g.pending, memberID)
		c.tryCompleteJoin(ctx, g)
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	c.log.Info("member left group", "group", g.id, "member", memberID)
	c.removeMember(ctx, g, m, "left the group")
	return 0
}
