package groups

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup, versions 0–5.
//
// v0–2 name one member id; v3+ a batch of members by member id and/or
// instance id (KIP-345), each answered on its own. Removing members
// rebalances the rest; a group left without members becomes Empty and is
// persisted so.

// LeaveGroup removes members from a group. It never blocks on the Store.
func (c *Coordinator) LeaveGroup(_ context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var top int16
	codes := make([]int16, len(leaving))
	switch g := c.groups[req.Group]; {
	case c.closed:
		top = kerr.NotCoordinator.Code
	case req.Group == "":
		top = kerr.InvalidGroupID.Code
	case g == nil:
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
	case g.state == stateDead:
		top = kerr.CoordinatorNotAvailable.Code
	default:
		for i, lm := range leaving {
			codes[i] = c.leave(g, lm)
		}
	}
	if req.Version < 3 {
		// One member: its outcome is the request's.
		resp.ErrorCode = top
		if top == 0 {
			resp.ErrorCode = codes[0]
		}
		return resp
	}
	resp.ErrorCode = top
	if top != 0 {
		return resp
	}
	for i, lm := range leaving {
		out := kmsg.NewLeaveGroupResponseMember()
		out.MemberID, out.InstanceID, out.ErrorCode = lm.MemberID, lm.InstanceID, codes[i]
		resp.Members = append(resp.Members, out)
	}
	return resp
}

// leave removes one member as Kafka does: by instance id when one is
// given (the member id, if also given, must be the instance's current
// one), else by member id, which also releases a pending id.
func (c *Coordinator) leave(g *group, lm kmsg.LeaveGroupRequestMember) int16 {
	id := lm.MemberID
	if lm.InstanceID != nil {
		cur, ok := g.static[*lm.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case id != "" && id != cur:
			return kerr.FencedInstanceID.Code
		}
		id = cur
	} else if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		c.tryCompleteJoin(g)
		c.maybeForget(g)
		return 0
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	c.log.Info().Str("group", g.name).Str("member", id).Msg("member left the group")
	c.removeMember(g, m, "member "+id+" left")
	return 0
}
