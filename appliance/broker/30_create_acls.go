package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/acl"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// CreateAcls, versions 0–3 (v0 creations are LITERAL). Needs ALTER on the
// cluster.
//
// The valid creations are committed to the meta shard in one command, so
// they take effect together on every node; an invalid one is answered
// INVALID_REQUEST with the reason and does not stop the others.

func (b *Broker) handleCreateACLs(ctx context.Context, rc *reqCtx, req *kmsg.CreateACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	set := func(i int, err error) {
		r := &resp.Results[i]
		r.ErrorCode, r.ErrorMessage = kafkaCode(err), errMessage(err)
		b.countError(rc, r.ErrorCode)
	}
	if err := b.checkCluster(rc, opAlter); err != nil {
		for i := range resp.Results {
			set(i, err)
		}
		return resp
	}
	var valid []int
	var acls []meta.ACL
	for i, c := range req.Creations {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
		a, err := acl.Binding{ResourceType: c.ResourceType, Pattern: c.ResourcePatternType, Name: c.ResourceName, Principal: c.Principal,
			Host: c.Host, Operation: c.Operation, Permission: c.PermissionType}.Stored()
		if err != nil {
			set(i, fmt.Errorf("%w: %v", kerr.InvalidRequest, err))
			continue
		}
		valid = append(valid, i)
		acls = append(acls, a)
	}
	if len(acls) == 0 {
		return resp
	}
	if err := b.host.ProposeMeta(ctx, meta.Command{CreateACLs: &meta.CreateACLs{ACLs: acls}}); err != nil {
		for _, i := range valid {
			set(i, err)
		}
		return resp
	}
	for _, a := range acls {
		b.log.Info().Str("by", rc.principal()).Interface("acl", a).Msg("ACL created")
	}
	return resp
}
