package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/acl"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// DeleteAcls, versions 0–3 (v0 filters are LITERAL). Needs ALTER on the
// cluster.
//
// Each filter is resolved against the metadata after a ReadIndex, and the
// bindings all filters matched are removed in one meta command; each
// filter's answer lists what it matched. A binding created between the
// read and the commit is not deleted (as with Kafka's ZooKeeper-era
// authorizer): list again to be sure.

func (b *Broker) handleDeleteACLs(ctx context.Context, rc *reqCtx, req *kmsg.DeleteACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	set := func(i int, err error) {
		r := &resp.Results[i]
		r.ErrorCode, r.ErrorMessage, r.MatchingACLs = kafkaCode(err), errMessage(err), nil
		b.countError(rc, r.ErrorCode)
	}
	failAll := func(err error) kmsg.Response {
		for i := range resp.Results {
			set(i, err)
		}
		return resp
	}
	if err := b.checkCluster(rc, opAlter); err != nil {
		return failAll(err)
	}
	st, err := b.host.SyncMeta(ctx)
	if err != nil {
		return failAll(err)
	}
	var doomed []meta.ACL
	seen := map[meta.ACL]bool{}
	var ok []int
	for i, rf := range req.Filters {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
		f := acl.Filter{ResourceType: rf.ResourceType, Name: rf.ResourceName, Pattern: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType}
		if err := f.Validate(); err != nil {
			set(i, fmt.Errorf("%w: %v", kerr.InvalidRequest, err))
			continue
		}
		ok = append(ok, i)
		for _, a := range st.ACLs {
			if !f.Matches(a) {
				continue
			}
			wb := acl.FromStored(a)
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = wb.ResourceType, wb.Name, wb.Pattern
			m.Principal, m.Host, m.Operation, m.PermissionType = wb.Principal, wb.Host, wb.Operation, wb.Permission
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
			if !seen[a] {
				seen[a] = true
				doomed = append(doomed, a)
			}
		}
	}
	if len(doomed) == 0 {
		return resp
	}
	if err := b.host.ProposeMeta(ctx, meta.Command{DeleteACLs: &meta.DeleteACLs{ACLs: doomed}}); err != nil {
		for _, i := range ok {
			set(i, err)
		}
		return resp
	}
	for _, a := range doomed {
		b.log.Info().Str("by", rc.principal()).Interface("acl", a).Msg("ACL deleted")
	}
	return resp
}
