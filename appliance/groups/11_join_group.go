package groups

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup, versions 0–9.
//
// v4+ clients joining without a member id get MEMBER_ID_REQUIRED and a
// reserved id to rejoin with (KIP-394); v5+ members may be static
// (KIP-345); v9 answers SkipAssignment (KIP-814).

// JoinGroup adds a member to a group or rejoins it, and waits for the
// rebalance it takes part in to reach its join barrier. It returns early
// with REBALANCE_IN_PROGRESS when ctx ends (the client gave up; the member
// stays in the rebalance, as in Kafka) and with NOT_COORDINATOR when the
// coordinator closes.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, ci ClientInfo) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	unlock := func() {}
	if req.Version >= 5 && req.InstanceID != nil && req.MemberID == "" {
		// A static member coming back under a new member id may take over
		// its instance without a rebalance. That must be persisted before
		// it is answered, or a coordinator after a failover would not know
		// the new id.
		u, err := c.lockGroup(ctx, req.Group)
		if err != nil {
			joinError(req.MemberID, c.abandonCode(err)).fill(resp)
			return resp
		}
		unlock = u
	}
	c.mu.Lock()
	out := c.join(req, ci)
	c.mu.Unlock()
	if out.save != nil {
		r := c.saveStatic(ctx, out.save)
		unlock()
		r.fill(resp)
		return resp
	}
	// Never park while holding the persist lock: commits must go on
	// during a rebalance.
	unlock()
	if out.wait == nil {
		out.res.fill(resp)
		return resp
	}
	select {
	case r := <-out.wait:
		r.fill(resp)
	case <-ctx.Done():
		joinError(out.memberID, kerr.RebalanceInProgress.Code).fill(resp)
	case <-c.done:
		joinError(out.memberID, kerr.NotCoordinator.Code).fill(resp)
	}
	return resp
}

// abandonCode answers a request that stopped waiting before it got its
// turn: the coordinator closed, or the client gave up.
func (c *Coordinator) abandonCode(err error) int16 {
	if errors.Is(err, errClosed) {
		return kerr.NotCoordinator.Code
	}
	return kerr.RebalanceInProgress.Code
}

// joinOutcome is what join decided: an answer now, a parked request, or a
// static takeover to persist first.
type joinOutcome struct {
	res      joinResult
	wait     chan joinResult
	memberID string
	save     *staticSave
}

func (c *Coordinator) join(req *kmsg.JoinGroupRequest, ci ClientInfo) joinOutcome {
	fail := func(code int16) joinOutcome { return joinOutcome{res: joinError(req.MemberID, code)} }
	if c.closed {
		return fail(kerr.NotCoordinator.Code)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || rebalance <= 0 {
		// v0 has no rebalance timeout; Kafka uses the session timeout.
		rebalance = session
	}
	var instance *string
	if req.Version >= 5 && req.InstanceID != nil {
		instance = strPtr(*req.InstanceID)
	}

	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(kerr.UnknownMemberID.Code)
		}
		g = newGroup(req.Group)
		if !g.supports(req.ProtocolType, req.Protocols) {
			return fail(kerr.InconsistentGroupProtocol.Code)
		}
		c.groups[req.Group] = g
	}
	if g.state == stateDead {
		// Being deleted: the client finds the coordinator again and
		// rejoins a fresh group.
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	if !g.supports(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	newMember := func(id string) *member {
		return &member{
			id:         id,
			instanceID: instance,
			clientID:   ci.ClientID,
			clientHost: ci.Host,
			session:    session,
			rebalance:  rebalance,
			protocols:  copyProtocols(req.Protocols),
		}
	}
	parked := func(id string, ch chan joinResult) joinOutcome { return joinOutcome{wait: ch, memberID: id} }

	if req.MemberID == "" {
		id := newMemberID(ci.ClientID, instance)
		if instance != nil {
			if old, ok := g.static[*instance]; ok {
				return c.replaceStatic(g, g.members[old], id, req, session, rebalance)
			}
			return parked(id, c.addMember(g, newMember(id), req.ProtocolType))
		}
		if req.Version >= 4 {
			// The id is reserved for a session timeout; a join barrier
			// waits for it, so a fleet's second round of joins lands in one
			// generation.
			g.pending[id] = c.schedule(c.now().Add(session), timerSession, g.name, id)
			return joinOutcome{res: joinError(id, kerr.MemberIDRequired.Code)}
		}
		return parked(id, c.addMember(g, newMember(id), req.ProtocolType))
	}

	if _, ok := g.pending[req.MemberID]; ok {
		if instance != nil {
			if _, taken := g.static[*instance]; taken {
				return fail(kerr.FencedInstanceID.Code)
			}
		}
		delete(g.pending, req.MemberID)
		return parked(req.MemberID, c.addMember(g, newMember(req.MemberID), req.ProtocolType))
	}
	if instance != nil {
		if cur, ok := g.static[*instance]; ok && cur != req.MemberID {
			return fail(kerr.FencedInstanceID.Code)
		}
	}
	m := g.members[req.MemberID]
	if m == nil || (instance != nil && g.static[*instance] != m.id) {
		return fail(kerr.UnknownMemberID.Code)
	}
	rejoin := func(reason string) joinOutcome {
		m.protocols = copyProtocols(req.Protocols)
		m.session, m.rebalance = session, rebalance
		ch := c.parkJoin(m)
		c.maybePrepareRebalance(g, reason)
		return parked(m.id, ch)
	}
	switch g.state {
	case statePreparing:
		return rejoin("member " + m.id + " rejoined")
	case stateCompleting:
		if m.matches(req.Protocols) {
			// Most likely a retry of a JoinGroup whose answer was lost.
			return joinOutcome{res: g.current(m.id, m.id == g.leader)}
		}
		return rejoin("member " + m.id + " changed its protocols")
	case stateStable:
		if m.id == g.leader {
			// The leader rejoins to have the group reassigned, e.g. after
			// the partitions of a subscribed topic changed.
			return rejoin("leader " + m.id + " rejoined")
		}
		if !m.matches(req.Protocols) {
			return rejoin("member " + m.id + " changed its protocols")
		}
		return joinOutcome{res: g.current(m.id, false)}
	}
	return fail(kerr.UnknownMemberID.Code)
}

// staticSave is a static takeover waiting to be persisted.
type staticSave struct {
	g                    *group
	m                    *member
	oldID, newID         string
	instance             string
	oldLeader            string
	version              int16
	rec                  Group
	prevProtocols        []Protocol
	prevSession, prevReb time.Duration
}

// replaceStatic hands a static member's instance id to a new member id:
// the process behind the old id is fenced. A Stable group whose protocol
// does not change keeps its generation and the member its assignment
// (persisted first, by the caller); otherwise the group rebalances.
func (c *Coordinator) replaceStatic(g *group, m *member, newID string, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) joinOutcome {
	oldID := m.id
	s := &staticSave{
		g: g, m: m, oldID: oldID, newID: newID, instance: *m.instanceID, oldLeader: g.leader,
		version: req.Version, prevProtocols: m.protocols, prevSession: m.session, prevReb: m.rebalance,
	}
	c.deliverJoin(m, joinError(oldID, kerr.FencedInstanceID.Code))
	c.deliverSync(m, syncResult{code: kerr.FencedInstanceID.Code})
	m.awaitingJoin, m.awaitingSync = false, false
	c.renameMember(g, m, newID)
	m.protocols = copyProtocols(req.Protocols)
	m.session, m.rebalance = session, rebalance
	c.log.Info().Str("group", g.name).Str("instance", s.instance).Str("old_member", oldID).
		Str("member", newID).Stringer("state", g.state).Msg("static member rejoined with a new member id")
	switch g.state {
	case stateStable:
		if g.selectProtocol() == g.protocol {
			s.rec = g.record(stateStable, nil, c.nowMs())
			return joinOutcome{save: s}
		}
		ch := c.parkJoin(m)
		c.prepareRebalance(g, "static member "+newID+" changes the group's protocol")
		return joinOutcome{wait: ch, memberID: newID}
	case stateCompleting:
		// The leader may be assigning to the old id: rebalance, so the new
		// id gets an assignment.
		ch := c.parkJoin(m)
		c.prepareRebalance(g, "static member "+newID+" replaced "+oldID+" during a rebalance")
		return joinOutcome{wait: ch, memberID: newID}
	}
	ch := c.parkJoin(m)
	c.tryCompleteJoin(g)
	return joinOutcome{wait: ch, memberID: newID}
}

// renameMember gives m a new member id, keeping its instance id, its
// place in the join order and its leadership.
func (c *Coordinator) renameMember(g *group, m *member, newID string) {
	delete(g.members, m.id)
	if g.leader == m.id {
		g.leader = newID
	}
	if g.pendingSync[m.id] {
		delete(g.pendingSync, m.id)
		g.pendingSync[newID] = true
	}
	m.id = newID
	g.members[newID] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = newID
	}
	// The old id's timer entry is stale now; start the new id's session.
	m.timer = 0
	c.touch(g, m, m.session)
}

// saveStatic persists a static takeover in a Stable group and answers the
// new member with the current generation. If the Store fails, the
// takeover is undone (unless the group moved on meanwhile) and the client
// is told to find the coordinator again.
func (c *Coordinator) saveStatic(ctx context.Context, s *staticSave) joinResult {
	sctx, cancel := c.storeContext(ctx)
	err := c.store.SaveGroup(sctx, s.rec)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	g, m := s.g, s.m
	intact := c.groups[g.name] == g && g.members[s.newID] == m && g.static[s.instance] == s.newID
	if err != nil {
		c.log.Warn().Err(err).Str("group", g.name).Str("member", s.newID).
			Msg("could not persist static member takeover; reverting")
		if intact {
			m.protocols, m.session, m.rebalance = s.prevProtocols, s.prevSession, s.prevReb
			c.renameMember(g, m, s.oldID)
		}
		return joinError("", membershipStoreCode(err))
	}
	if !intact {
		return joinError(s.newID, kerr.UnknownMemberID.Code)
	}
	if s.version >= 9 {
		// KIP-814: the leader learns the members but keeps the current
		// assignment; it rejoins if its own view of it differs.
		lead := g.leader == s.newID
		r := g.current(s.newID, lead)
		r.skip = lead
		return r
	}
	// Older clients would assign if they saw themselves as leader, and the
	// Stable group would ignore it: name the leader by its old id.
	r := g.current(s.newID, false)
	r.leader = s.oldLeader
	return r
}
