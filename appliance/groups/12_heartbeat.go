package groups

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat, versions 0–4.
//
// A heartbeat keeps a member's session alive. During a rebalance it is how
// members learn to rejoin: REBALANCE_IN_PROGRESS.

// Heartbeat restarts the member's session timer. It never blocks; ctx is
// accepted for symmetry with the other handlers.
func (c *Coordinator) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	resp.ErrorCode = c.heartbeat(req)
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if c.closed {
		return kerr.NotCoordinator.Code
	}
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	instance := req.InstanceID
	if req.Version < 3 {
		instance = nil
	}
	m, code := g.checkMember(req.MemberID, instance)
	if code != 0 {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case statePreparing:
		c.touch(g, m, m.session)
		return kerr.RebalanceInProgress.Code
	case stateCompleting, stateStable:
		// Members may heartbeat between their JoinGroup answer and their
		// SyncGroup: that is a normal heartbeat.
		c.touch(g, m, m.session)
		return 0
	}
	return kerr.UnknownMemberID.Code
}
