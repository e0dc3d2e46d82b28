package groups

import (
	"bytes"
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup, versions 0–5.
//
// Followers wait for the leader's assignment. The leader's SyncGroup
// persists the generation (members, metadata, assignments) through the
// Store before anyone is answered, so a new coordinator after a failover
// knows every member's assignment.

// SyncGroup hands a member its assignment for the generation it joined,
// waiting for the leader's assignment if need be. It returns early with
// REBALANCE_IN_PROGRESS when ctx ends and NOT_COORDINATOR when the
// coordinator closes.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fill := func(r syncResult) *kmsg.SyncGroupResponse {
		resp.ErrorCode = r.code
		resp.MemberAssignment = r.assignment
		if resp.Version >= 5 {
			resp.ProtocolType, resp.Protocol = r.protocolType, r.protocol
		}
		return resp
	}
	c.mu.Lock()
	g, m, code := c.syncMember(req)
	if code != 0 {
		c.mu.Unlock()
		return fill(syncResult{code: code})
	}
	switch g.state {
	case stateEmpty:
		c.mu.Unlock()
		return fill(syncResult{code: kerr.UnknownMemberID.Code})
	case statePreparing:
		c.mu.Unlock()
		return fill(syncResult{code: kerr.RebalanceInProgress.Code})
	case stateStable:
		delete(g.pendingSync, m.id)
		c.touch(g, m, m.session)
		r := syncResult{protocolType: strPtr(g.protocolType), protocol: strPtr(g.protocol), assignment: m.assignment}
		c.mu.Unlock()
		return fill(r)
	}
	// CompletingRebalance.
	delete(g.pendingSync, m.id)
	ch := c.parkSync(m)
	lead := m.id == g.leader && g.storingGen != g.generation
	gen := g.generation
	if lead {
		g.storingGen = gen
	}
	c.mu.Unlock()
	if lead {
		c.storeAssignment(ctx, g, gen, req.GroupAssignment)
	}
	select {
	case r := <-ch:
		return fill(r)
	case <-ctx.Done():
		return fill(syncResult{code: kerr.RebalanceInProgress.Code})
	case <-c.done:
		return fill(syncResult{code: kerr.NotCoordinator.Code})
	}
}

// syncMember validates a SyncGroup in Kafka's order. c.mu is held.
func (c *Coordinator) syncMember(req *kmsg.SyncGroupRequest) (*group, *member, int16) {
	if c.closed {
		return nil, nil, kerr.NotCoordinator.Code
	}
	if req.Group == "" {
		return nil, nil, kerr.InvalidGroupID.Code
	}
	g := c.groups[req.Group]
	if g == nil {
		return nil, nil, kerr.UnknownMemberID.Code
	}
	if g.state == stateDead {
		return nil, nil, kerr.CoordinatorNotAvailable.Code
	}
	instance := req.InstanceID
	if req.Version < 3 {
		instance = nil
	}
	m, code := g.checkMember(req.MemberID, instance)
	if code != 0 {
		return nil, nil, code
	}
	if req.Generation != g.generation {
		return nil, nil, kerr.IllegalGeneration.Code
	}
	if req.Version >= 5 {
		if req.ProtocolType != nil && *req.ProtocolType != g.protocolType {
			return nil, nil, kerr.InconsistentGroupProtocol.Code
		}
		if req.Protocol != nil && *req.Protocol != g.protocol {
			return nil, nil, kerr.InconsistentGroupProtocol.Code
		}
	}
	return g, m, 0
}

// checkMember resolves the member a Sync, Heartbeat or OffsetCommit comes
// from. A static instance id owned by another member id means this
// process was replaced: FENCED_INSTANCE_ID tells it to stop.
func (g *group) checkMember(memberID string, instanceID *string) (*member, int16) {
	if instanceID != nil {
		if cur, ok := g.static[*instanceID]; ok && cur != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// storeAssignment persists the leader's assignment for generation gen and,
// once durable, completes the rebalance. If the Store fails, every parked
// SyncGroup gets NOT_COORDINATOR and the group rebalances, as in Kafka.
func (c *Coordinator) storeAssignment(ctx context.Context, g *group, gen int32, plan []kmsg.SyncGroupRequestGroupAssignment) {
	assign := make(map[string][]byte, len(plan))
	for _, a := range plan {
		assign[a.MemberID] = bytes.Clone(a.MemberAssignment)
	}
	stillCompleting := func() bool {
		return c.groups[g.name] == g && g.state == stateCompleting && g.generation == gen
	}
	unlock, err := c.lockGroup(ctx, g.name)
	if err != nil {
		c.mu.Lock()
		if g.storingGen == gen {
			// The leader may retry its SyncGroup.
			g.storingGen = 0
		}
		c.mu.Unlock()
		return
	}
	defer unlock()
	c.mu.Lock()
	if !stillCompleting() {
		c.mu.Unlock()
		return
	}
	for id := range g.members {
		if assign[id] == nil {
			assign[id] = []byte{}
		}
	}
	rec := g.record(stateStable, assign, c.nowMs())
	c.mu.Unlock()

	sctx, cancel := c.storeContext(ctx)
	err = c.store.SaveGroup(sctx, rec)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	if g.storingGen == gen {
		g.storingGen = 0
	}
	if !stillCompleting() {
		// The group moved on (a member left or joined) while persisting;
		// the next generation will be persisted in its turn.
		return
	}
	if err != nil {
		c.log.Warn().Err(err).Str("group", g.name).Int32("generation", gen).
			Msg("could not persist group assignment; rebalancing")
		c.failSync(g, membershipStoreCode(err))
		c.prepareRebalance(g, "persisting the assignment failed")
		return
	}
	c.propagate(g, assign)
}
