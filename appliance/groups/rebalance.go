package groups

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The rebalance state machine: Empty or Stable → PreparingRebalance (join
// barrier) → CompletingRebalance (waiting for the leader's assignment) →
// Stable. Every function here runs with c.mu held and never blocks.

// joinResult is a JoinGroup answer, independent of the request version.
type joinResult struct {
	code         int16
	memberID     string
	generation   int32
	protocolType *string
	protocol     *string
	leader       string
	skip         bool
	members      []kmsg.JoinGroupResponseMember
}

func joinError(memberID string, code int16) joinResult {
	return joinResult{code: code, memberID: memberID, generation: -1}
}

func (r joinResult) fill(resp *kmsg.JoinGroupResponse) {
	resp.ErrorCode = r.code
	resp.MemberID = r.memberID
	resp.Generation = r.generation
	if resp.Version >= 7 {
		resp.ProtocolType = r.protocolType
	}
	resp.Protocol = r.protocol
	resp.LeaderID = r.leader
	resp.SkipAssignment = r.skip && resp.Version >= 9
	resp.Members = r.members
}

// syncResult is a SyncGroup answer.
type syncResult struct {
	code         int16
	protocolType *string
	protocol     *string
	assignment   []byte
}

func strPtr(s string) *string { return &s }

// current answers a member with the group's current generation, as Kafka
// does for a rejoin that changes nothing. Only the leader gets the member
// list.
func (g *group) current(memberID string, withMembers bool) joinResult {
	r := joinResult{
		memberID:     memberID,
		generation:   g.generation,
		protocolType: strPtr(g.protocolType),
		protocol:     strPtr(g.protocol),
		leader:       g.leader,
	}
	if withMembers {
		r.members = g.memberList()
	}
	return r
}

// memberList is what the leader assigns from: every member's metadata for
// the chosen protocol, in join order.
func (g *group) memberList() []kmsg.JoinGroupResponseMember {
	ms := g.sortedMembers()
	out := make([]kmsg.JoinGroupResponseMember, 0, len(ms))
	for _, m := range ms {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadata(g.protocol)
		out = append(out, jm)
	}
	return out
}

// parkJoin registers the member's pending JoinGroup. A request it replaces
// (the client retried) is told to rejoin.
func (c *Coordinator) parkJoin(m *member) chan joinResult {
	c.deliverJoin(m, joinError(m.id, kerr.RebalanceInProgress.Code))
	ch := make(chan joinResult, 1)
	m.joinCh = ch
	m.awaitingJoin = true
	return ch
}

func (c *Coordinator) parkSync(m *member) chan syncResult {
	c.deliverSync(m, syncResult{code: kerr.RebalanceInProgress.Code})
	ch := make(chan syncResult, 1)
	m.syncCh = ch
	m.awaitingSync = true
	return ch
}

// deliverJoin answers the member's parked JoinGroup, if there is one. The
// channel has room for the one answer, so this never blocks, and an
// answer nobody waits for any more (ctx ended) is simply dropped.
func (c *Coordinator) deliverJoin(m *member, r joinResult) bool {
	if m.joinCh == nil {
		return false
	}
	m.joinCh <- r
	m.joinCh = nil
	return true
}

func (c *Coordinator) deliverSync(m *member, r syncResult) bool {
	if m.syncCh == nil {
		return false
	}
	m.syncCh <- r
	m.syncCh = nil
	return true
}

// addMember adds a member that has just sent its JoinGroup with an id the
// group knows to be valid, and parks that request.
func (c *Coordinator) addMember(g *group, m *member, protocolType string) chan joinResult {
	if len(g.members) == 0 {
		g.protocolType = protocolType
	}
	m.seq = c.nextSeq()
	m.isNew = true
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	if g.state == statePreparing && g.initial {
		g.newMemberAdded = true
	}
	c.touch(g, m, newMemberJoinTimeout)
	ch := c.parkJoin(m)
	c.maybePrepareRebalance(g, "member "+m.id+" joined")
	return ch
}

// maybePrepareRebalance starts a rebalance unless one is under way, in
// which case it checks whether the barrier can complete now.
func (c *Coordinator) maybePrepareRebalance(g *group, reason string) {
	switch g.state {
	case stateEmpty, stateStable, stateCompleting:
		c.prepareRebalance(g, reason)
	case statePreparing:
		c.tryCompleteJoin(g)
	}
}

func (c *Coordinator) prepareRebalance(g *group, reason string) {
	if g.state == stateCompleting {
		// Assignments of the generation being completed are void; members
		// waiting for them must rejoin.
		c.failSync(g, kerr.RebalanceInProgress.Code)
	}
	g.pendingSync = nil
	g.syncTimer = 0
	g.storingGen = 0
	now := c.now()
	g.initial = g.state == stateEmpty
	if g.initial {
		delay := c.cfg.InitialRebalanceDelay
		g.remaining = max(g.rebalanceTimeout()-delay, 0)
		g.newMemberAdded = false
		g.joinTimer = c.schedule(now.Add(delay), timerJoin, g.name, "")
	} else {
		g.joinTimer = c.schedule(now.Add(g.rebalanceTimeout()), timerJoin, g.name, "")
	}
	c.log.Info().Str("group", g.name).Stringer("from", g.state).Int32("generation", g.generation).
		Str("reason", reason).Msg("preparing to rebalance group")
	g.state = statePreparing
	c.tryCompleteJoin(g)
}

// tryCompleteJoin completes the join barrier once every member has
// rejoined and no MEMBER_ID_REQUIRED id is outstanding. The first
// rebalance of an Empty group runs to its delay instead, so a fleet that
// starts together lands in one generation.
func (c *Coordinator) tryCompleteJoin(g *group) {
	if g.state == statePreparing && !g.initial && g.allJoined() {
		c.completeJoin(g)
	}
}

func (c *Coordinator) joinTimerFired(g *group) {
	if g.initial && g.newMemberAdded && g.remaining > 0 {
		delay := min(c.cfg.InitialRebalanceDelay, g.remaining)
		g.remaining -= delay
		g.newMemberAdded = false
		g.joinTimer = c.schedule(c.now().Add(delay), timerJoin, g.name, "")
		return
	}
	c.completeJoin(g)
}

// completeJoin ends the join barrier: members that did not rejoin are
// dropped (static ones stay, so a restarting instance keeps its
// partitions until its session expires), the generation advances, and
// every parked JoinGroup is answered.
func (c *Coordinator) completeJoin(g *group) {
	g.joinTimer = 0
	for _, m := range g.sortedMembers() {
		if !m.awaitingJoin && m.instanceID == nil {
			c.dropMember(g, m, kerr.UnknownMemberID.Code)
		}
	}
	if len(g.members) > 0 && !c.electJoinedLeader(g) {
		// Only static members that have not rejoined remain: wait for them
		// to rejoin or for their sessions to expire.
		g.joinTimer = c.schedule(c.now().Add(g.rebalanceTimeout()), timerJoin, g.name, "")
		return
	}
	g.generation++
	g.initial = false
	if len(g.members) == 0 {
		g.state = stateEmpty
		g.protocol = ""
		g.leader = ""
		c.log.Info().Str("group", g.name).Int32("generation", g.generation).Msg("group is now empty")
		c.saveEmptyLater(g.name)
		return
	}
	g.protocol = g.selectProtocol()
	g.state = stateCompleting
	g.pendingSync = make(map[string]bool, len(g.members))
	for _, m := range g.sortedMembers() {
		c.deliverJoin(m, g.current(m.id, m.id == g.leader))
		m.awaitingJoin = false
		m.isNew = false
		c.touch(g, m, m.session)
		g.pendingSync[m.id] = true
	}
	g.syncTimer = c.schedule(c.now().Add(g.rebalanceTimeout()), timerSync, g.name, "")
	c.log.Info().Str("group", g.name).Int32("generation", g.generation).Str("protocol", g.protocol).
		Str("leader", g.leader).Int("members", len(g.members)).Msg("group joined; awaiting assignment")
}

// electJoinedLeader keeps the current leader if it rejoined, else picks
// the earliest-joined member that did. It reports false if none did.
func (c *Coordinator) electJoinedLeader(g *group) bool {
	if l := g.members[g.leader]; l != nil && l.awaitingJoin {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.awaitingJoin {
			g.leader = m.id
			return true
		}
	}
	return false
}

// syncTimerFired removes members that joined a generation but never sent
// SyncGroup for it, and rebalances without them.
func (c *Coordinator) syncTimerFired(g *group) {
	if (g.state != stateCompleting && g.state != stateStable) || len(g.pendingSync) == 0 {
		return
	}
	for _, m := range g.sortedMembers() {
		if g.pendingSync[m.id] {
			c.dropMember(g, m, kerr.UnknownMemberID.Code)
		}
	}
	c.prepareRebalance(g, "members did not sync in time")
}

// propagate completes a rebalance: every member gets its assignment.
func (c *Coordinator) propagate(g *group, assign map[string][]byte) {
	g.state = stateStable
	for _, m := range g.sortedMembers() {
		m.assignment = assign[m.id]
		if m.assignment == nil {
			m.assignment = []byte{}
		}
		c.deliverSync(m, syncResult{protocolType: strPtr(g.protocolType), protocol: strPtr(g.protocol), assignment: m.assignment})
		c.unparkSync(g, m)
	}
	c.log.Info().Str("group", g.name).Int32("generation", g.generation).Msg("group is stable")
}

// failSync answers every parked SyncGroup with code and voids the
// assignments of the generation being completed.
func (c *Coordinator) failSync(g *group, code int16) {
	for _, m := range g.members {
		m.assignment = nil
		c.deliverSync(m, syncResult{code: code})
		c.unparkSync(g, m)
	}
}

// unparkSync restarts the session of a member whose SyncGroup was parked:
// its session timer stood still while it waited (see fire).
func (c *Coordinator) unparkSync(g *group, m *member) {
	if m.awaitingSync {
		m.awaitingSync = false
		c.touch(g, m, m.session)
	}
}

// dropMember takes a member out of the group without starting a
// rebalance; parked requests get code.
func (c *Coordinator) dropMember(g *group, m *member, code int16) {
	c.deliverJoin(m, joinError("", code))
	c.deliverSync(m, syncResult{code: code})
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = ""
	}
	m.timer = 0
}

// removeMember takes a member out (it left or its session expired) and
// rebalances the rest.
func (c *Coordinator) removeMember(g *group, m *member, reason string) {
	c.dropMember(g, m, kerr.UnknownMemberID.Code)
	if g.leader == "" {
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
	c.maybePrepareRebalance(g, reason)
}
