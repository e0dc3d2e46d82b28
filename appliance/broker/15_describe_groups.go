package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups (15), ListGroups (16) and DeleteGroups (42). Each group
// is answered by its coordinator; ListGroups lists the groups this node
// coordinates (clients ask every broker, as with Kafka).

func (b *Broker) handleDescribeGroups(rc *reqCtx, req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		if !b.allowed(rc, opDescribe, rtGroup, name) {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = name, kerr.GroupAuthorizationFailed.Code
			b.countError(rc, g.ErrorCode)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		if c, _ := b.coords.get(name); c != nil {
			g := c.DescribeGroup(name)
			if req.IncludeAuthorizedOperations {
				g.AuthorizedOperations = b.authorizedOps(rc, rtGroup, name)
			}
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group, g.ErrorCode = name, kerr.NotCoordinator.Code
		b.countError(rc, g.ErrorCode)
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

func (b *Broker) handleListGroups(rc *reqCtx, req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Groups = []kmsg.ListGroupsResponseGroup{}
	// DESCRIBE on the cluster lists every group; otherwise only the
	// groups the principal may describe are listed.
	everything := b.allowedCluster(rc, opDescribe)
	for _, c := range b.coords.all() {
		for _, g := range c.ListGroups(req.StatesFilter, req.TypesFilter) {
			if everything || b.allowed(rc, opDescribe, rtGroup, g.Group) {
				resp.Groups = append(resp.Groups, g)
			}
		}
	}
	return resp
}

func (b *Broker) handleDeleteGroups(ctx context.Context, rc *reqCtx, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		if !b.allowed(rc, opDelete, rtGroup, name) {
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		} else if c, _ := b.coords.get(name); c != nil {
			g.ErrorCode = c.DeleteGroup(ctx, name)
		} else {
			g.ErrorCode = kerr.NotCoordinator.Code
		}
		b.countError(rc, g.ErrorCode)
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}
