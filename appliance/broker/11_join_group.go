package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup (11), SyncGroup (14), Heartbeat (12) and LeaveGroup (13):
// the classic group membership protocol, served by the coordinator of the
// group's shard (package groups) when this node leads that shard, and
// answered NOT_COORDINATOR otherwise so the client finds the right node.

func (b *Broker) handleJoinGroup(ctx context.Context, rc *reqCtx, req *kmsg.JoinGroupRequest) kmsg.Response {
	if !b.allowed(rc, opRead, rtGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	if c, _ := b.coords.get(req.Group); c != nil {
		return c.JoinGroup(ctx, req, clientInfo(rc))
	}
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode, resp.Generation = kerr.NotCoordinator.Code, -1
	b.countError(rc, resp.ErrorCode)
	return resp
}

func (b *Broker) handleSyncGroup(ctx context.Context, rc *reqCtx, req *kmsg.SyncGroupRequest) kmsg.Response {
	if !b.allowed(rc, opRead, rtGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	if c, _ := b.coords.get(req.Group); c != nil {
		return c.SyncGroup(ctx, req)
	}
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = kerr.NotCoordinator.Code
	b.countError(rc, resp.ErrorCode)
	return resp
}

func (b *Broker) handleHeartbeat(ctx context.Context, rc *reqCtx, req *kmsg.HeartbeatRequest) kmsg.Response {
	if !b.allowed(rc, opRead, rtGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	if c, _ := b.coords.get(req.Group); c != nil {
		return c.Heartbeat(ctx, req)
	}
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = kerr.NotCoordinator.Code
	b.countError(rc, resp.ErrorCode)
	return resp
}

func (b *Broker) handleLeaveGroup(ctx context.Context, rc *reqCtx, req *kmsg.LeaveGroupRequest) kmsg.Response {
	if !b.allowed(rc, opRead, rtGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	if c, _ := b.coords.get(req.Group); c != nil {
		return c.LeaveGroup(ctx, req)
	}
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	resp.ErrorCode = kerr.NotCoordinator.Code
	b.countError(rc, resp.ErrorCode)
	return resp
}
