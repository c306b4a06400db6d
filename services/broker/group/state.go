package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a group's state in Kafka's classic protocol.
type state int8

const (
	// stateEmpty: no members; offsets may be committed by anyone who
	// does not claim a generation.
	stateEmpty state = iota
	// statePreparingRebalance: members are (re)joining; the join phase
	// ends when all known members joined or the rebalance timeout passes.
	statePreparingRebalance
	// stateCompletingRebalance: join responses went out; waiting for the
	// leader's assignment in SyncGroup.
	stateCompletingRebalance
	// stateStable: every member has its assignment.
	stateStable
	// stateDead: the group is gone (deleted, expired or unloaded).
	stateDead
)

// String is the state's name as DescribeGroups and ListGroups report it.
func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// partitionKey names one committed partition.
type partitionKey struct {
	topic     string
	partition int32
}

// group is one consumer group. Every field is guarded by Coordinator.mu.
type group struct {
	id        string
	partition int32 // of __consumer_offsets
	state     state
	// since is when the group entered its state (Kafka's
	// currentStateTimestamp), which offset expiry of empty groups counts
	// from.
	since        time.Time
	protocolType string // "" for groups that only commit offsets
	protocol     string // the selected protocol; "" when none
	generation   int32
	leader       string

	members map[string]*member
	order   []string          // member ids in join order
	static  map[string]string // group.instance.id -> member id
	// pending holds member ids handed out with MEMBER_ID_REQUIRED that
	// have not joined with them yet, with the timer that forgets them.
	pending map[string]func() bool

	offsets map[partitionKey]OffsetValue
	// subscribed lists the topics the members subscribe to, parsed from
	// the consumer protocol's metadata; nil when not known.
	subscribed map[string]bool

	// The join phase's timer; joinSeq tells a stale firing from the
	// current one. initialDelay is set while the first rebalance of an
	// empty group waits for more members (group.initial.rebalance.delay.ms).
	joinStop       func() bool
	joinSeq        int
	initialDelay   bool
	newMemberAdded bool
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       string // "" for dynamic members
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol // metadata copied out of the request
	assignment       []byte

	// joinWait answers the member's pending JoinGroup; syncWait its
	// pending SyncGroup. A member waiting in either is kept alive.
	joinWait func(joinResult)
	syncWait func(code int16, assignment []byte)

	deadline    time.Time   // session deadline, moved by every heartbeat
	sessionStop func() bool // the session timer, nil when none runs
	sessionSeq  int         // tells the current session timer from stale ones
	isNew       bool        // joined during the current join phase
}

// joinResult is what a JoinGroup gets back.
type joinResult struct {
	code         int16
	memberID     string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      []kmsg.JoinGroupResponseMember
	skip         bool // KIP-814: the leader need not assign again
}

func newGroup(id string, partition int32, now time.Time) *group {
	return &group{id: id, partition: partition, since: now, members: map[string]*member{}, static: map[string]string{},
		pending: map[string]func() bool{}, offsets: map[partitionKey]OffsetValue{}}
}

func (g *group) setState(s state, now time.Time) {
	g.state = s
	g.since = now
}

// add makes m a member; the first member leads.
func (g *group) add(m *member) {
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	if m.instanceID != "" {
		g.static[m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

// remove drops a member; a new leader is the next member in join order.
func (g *group) remove(id string) *member {
	m := g.members[id]
	if m == nil {
		return nil
	}
	delete(g.members, id)
	g.order = slices.DeleteFunc(g.order, func(s string) bool { return s == id })
	if m.instanceID != "" && g.static[m.instanceID] == id {
		delete(g.static, m.instanceID)
	}
	if m.sessionStop != nil {
		m.sessionStop()
		m.sessionStop = nil
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
	return m
}

// supports applies Kafka's protocol check for a joining member: an empty
// group takes any non-empty protocol type and list; otherwise the type must
// match and at least one protocol must be supported by every member.
func (g *group) supports(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(protocols) == 0 || protocolType == "" {
		return false
	}
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, c := range g.candidates() {
		for _, p := range protocols {
			if p.Name == c {
				return true
			}
		}
	}
	return false
}

// candidates lists the protocols every member supports, in the first
// member's order of preference.
func (g *group) candidates() []string {
	var out []string
	for i, id := range g.order {
		m := g.members[id]
		if i == 0 {
			for _, p := range m.protocols {
				out = append(out, p.Name)
			}
			continue
		}
		out = slices.DeleteFunc(out, func(name string) bool { return !m.supports(name) })
	}
	return out
}

// selectProtocol is Kafka's vote: each member votes for the first
// protocol of its own list that every member supports; the most votes
// win, ties going to the earlier candidate.
func (g *group) selectProtocol() string {
	cands := g.candidates()
	votes := map[string]int{}
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if slices.Contains(cands, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range cands {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// metadata returns the member's metadata for a protocol.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether a rejoin carries the same protocols and
// metadata as the member has (Kafka's MemberMetadata.matches).
func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].Name != m.protocols[i].Name || string(ps[i].Metadata) != string(m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// maxRebalanceTimeout is how long the join phase waits at most.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// allJoined reports whether every member is waiting in JoinGroup and no
// member id handed out is still to come back.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinWait == nil {
			return false
		}
	}
	return true
}

// computeSubscriptions parses the consumer protocol metadata of every
// member to learn which topics the group reads (offset expiry and
// OffsetDelete need it); groups of other protocol types have none.
func (g *group) computeSubscriptions() {
	g.subscribed = nil
	if g.protocolType != "consumer" || g.protocol == "" {
		return
	}
	subs := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadata(g.protocol)); err != nil {
			return
		}
		for _, t := range md.Topics {
			subs[t] = true
		}
	}
	g.subscribed = subs
}

// value renders the group's metadata record.
func (g *group) value() *GroupValue {
	v := &GroupValue{ProtocolType: g.protocolType, Generation: g.generation, CurrentStateTimestamp: g.since.UnixMilli()}
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" && len(g.members) > 0 {
		l := g.leader
		v.Leader = &l
	}
	if g.state == stateEmpty || g.state == stateDead {
		return v
	}
	for _, id := range g.order {
		m := g.members[id]
		gm := GroupValueMember{MemberID: m.id, ClientID: m.clientID, ClientHost: m.clientHost,
			RebalanceTimeoutMillis: int32(m.rebalanceTimeout.Milliseconds()), SessionTimeoutMillis: int32(m.sessionTimeout.Milliseconds()),
			Subscription: m.metadata(g.protocol), Assignment: m.assignment}
		if m.instanceID != "" {
			inst := m.instanceID
			gm.InstanceID = &inst
		}
		if gm.Subscription == nil {
			gm.Subscription = []byte{}
		}
		if gm.Assignment == nil {
			gm.Assignment = []byte{}
		}
		v.Members = append(v.Members, gm)
	}
	return v
}
