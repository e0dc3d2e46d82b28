package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/appliance/acl"
)

// DescribeAcls, versions 0–3 (v0 carries no pattern type: its filter is
// LITERAL, kmsg's default). Needs DESCRIBE on the cluster.
//
// ACLs live in the meta shard; the answer is read after a ReadIndex, so
// it includes every change committed before the request, on any node.
// Bindings are grouped by resource (type, name, pattern), as Kafka does.

func (b *Broker) handleDescribeACLs(ctx context.Context, rc *reqCtx, req *kmsg.DescribeACLsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	fail := func(code int16, err error) kmsg.Response {
		resp.ErrorCode, resp.ErrorMessage = code, errMessage(err)
		b.countError(rc, code)
		return resp
	}
	if err := b.checkCluster(rc, opDescribe); err != nil {
		return fail(kerr.ClusterAuthorizationFailed.Code, err)
	}
	f := acl.Filter{ResourceType: req.ResourceType, Name: req.ResourceName, Pattern: req.ResourcePatternType,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType}
	if err := f.Validate(); err != nil {
		return fail(kerr.InvalidRequest.Code, err)
	}
	st, err := b.host.SyncMeta(ctx)
	if err != nil {
		return fail(kafkaCode(err), err)
	}
	type resource struct {
		rt      kmsg.ACLResourceType
		name    string
		pattern kmsg.ACLResourcePatternType
	}
	at := map[resource]int{}
	for _, a := range st.ACLs {
		if !f.Matches(a) {
			continue
		}
		wb := acl.FromStored(a)
		key := resource{wb.ResourceType, wb.Name, wb.Pattern}
		i, ok := at[key]
		if !ok {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = key.rt, key.name, key.pattern
			resp.Resources = append(resp.Resources, r)
			i = len(resp.Resources) - 1
			at[key] = i
		}
		d := kmsg.NewDescribeACLsResponseResourceACL()
		d.Principal, d.Host, d.Operation, d.PermissionType = wb.Principal, wb.Host, wb.Operation, wb.Permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, d)
	}
	return resp
}
