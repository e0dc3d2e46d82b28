package groups

import (
	"bytes"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is where a group is in Kafka's classic state machine.
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparing
	stateCompleting
	stateStable
	stateDead
)

func (s groupState) String() string {
	switch s {
	case statePreparing:
		return StatePreparingRebalance
	case stateCompleting:
		return StateCompletingRebalance
	case stateStable:
		return StateStable
	case stateDead:
		return StateDead
	}
	return StateEmpty
}

// member is a group member as the coordinator tracks it. Protocol metadata
// and assignments are owned by the member (copied on the way in) and never
// modified in place, so they may be shared with responses.
type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string
	session    time.Duration
	rebalance  time.Duration
	protocols  []Protocol
	assignment []byte
	// seq orders members by when they joined: the first to join leads.
	seq uint64

	// isNew is set until the member's first JoinGroup is answered: a client
	// that gave up on that join never learns its id, so it is dropped after
	// newMemberJoinTimeout rather than kept alive by the barrier.
	isNew        bool
	awaitingJoin bool
	joinCh       chan joinResult
	awaitingSync bool
	syncCh       chan syncResult

	// deadline is when the session expires. timer is the token of the live
	// timer entry (0: none), due at timerAt; a heartbeat only moves the
	// deadline and the entry re-arms itself when it fires early.
	deadline time.Time
	timer    uint64
	timerAt  time.Time
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether a rejoin carries the same protocols, in the same
// order, as the member already has: then it changes nothing for the group.
func (m *member) matches(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// group is one group's in-memory state. All fields are guarded by the
// coordinator's mutex.
type group struct {
	name         string
	state        groupState
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string // instance id → member id
	// pending holds member ids handed out with MEMBER_ID_REQUIRED, by the
	// token of the timer that releases them after a session timeout.
	pending map[string]uint64
	offsets map[TopicPartition]Offset

	// The join barrier of a rebalance: joinTimer is the token of its timer.
	// initial marks a rebalance that began from Empty, which waits
	// InitialRebalanceDelay (and again while members keep arriving, for at
	// most remaining) instead of completing when everyone has joined.
	joinTimer      uint64
	initial        bool
	newMemberAdded bool
	remaining      time.Duration

	// After a join completes every member must send SyncGroup within the
	// rebalance timeout; those in pendingSync when syncTimer fires are
	// removed.
	syncTimer   uint64
	pendingSync map[string]bool
	// storingGen is the generation whose assignment the leader's SyncGroup
	// is persisting, so a retried leader sync does not persist it twice.
	storingGen int32
}

func newGroup(name string) *group {
	return &group{
		name:    name,
		members: make(map[string]*member),
		static:  make(map[string]string),
		pending: make(map[string]uint64),
		offsets: make(map[TopicPartition]Offset),
	}
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmpUint64(a.seq, b.seq) })
	return ms
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rebalanceTimeout is how long a rebalance waits for members to rejoin:
// the longest any member asked for.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if !m.awaitingJoin {
			return false
		}
	}
	return true
}

// supports reports whether a member with these protocols may be in the
// group: the protocol type must match and at least one of its protocols
// must be supported by every current member. A group without members
// accepts any non-empty protocol list.
func (g *group) supports(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supportedByAll(p.Name) {
			return true
		}
	}
	return false
}

func (g *group) supportedByAll(name string) bool {
	for _, m := range g.members {
		if !slices.ContainsFunc(m.protocols, func(p Protocol) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol of the next generation as Kafka does:
// among the protocols every member supports, each member votes for the
// first one in its own preference order, and the most votes win. Ties go
// to the candidate the earliest-joined member prefers.
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		if g.supportedByAll(p.Name) && !slices.Contains(candidates, p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	votes := make(map[string]int, len(candidates))
	for _, m := range ms {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// subscribedTo reports whether any member's consumer subscription names
// topic. Metadata that does not decode counts as subscribed to everything,
// as in Kafka: deleting offsets a live member may be using is the mistake
// to avoid.
func (g *group) subscribedTo(topic string) bool {
	for _, m := range g.members {
		for _, p := range m.protocols {
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(p.Metadata); err != nil {
				return true
			}
			if slices.Contains(md.Topics, topic) {
				return true
			}
		}
	}
	return false
}

// record is the persisted form of g with the given state and assignments
// (nil assign: the members' current ones).
func (g *group) record(state groupState, assign map[string][]byte, nowMs int64) Group {
	rec := Group{
		Name:         g.name,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		Generation:   g.generation,
		Leader:       g.leader,
		State:        state.String(),
		UpdatedAtMs:  nowMs,
	}
	for _, m := range g.sortedMembers() {
		a := m.assignment
		if assign != nil {
			a = assign[m.id]
		}
		if a == nil {
			a = []byte{}
		}
		rec.Members = append(rec.Members, Member{
			ID:                 m.id,
			InstanceID:         m.instanceID,
			ClientID:           m.clientID,
			ClientHost:         m.clientHost,
			SessionTimeoutMs:   int32(m.session / time.Millisecond),
			RebalanceTimeoutMs: int32(m.rebalance / time.Millisecond),
			Protocols:          m.protocols,
			Assignment:         a,
		})
	}
	return rec
}

func copyProtocols(ps []kmsg.JoinGroupRequestProtocol) []Protocol {
	out := make([]Protocol, len(ps))
	for i, p := range ps {
		out[i] = Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)}
	}
	return out
}

func offsetLess(a, b Offset) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}

// sortedOffsets returns a copy of g's committed offsets, by topic and
// partition.
func (g *group) sortedOffsets() []Offset {
	out := make([]Offset, 0, len(g.offsets))
	for _, o := range g.offsets {
		out = append(out, o)
	}
	slices.SortFunc(out, offsetLess)
	return out
}
