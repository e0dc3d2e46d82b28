package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// DescribeCluster, versions 0–2. Brokers are listed with the addresses of
// the listener the request came in on. Controller endpoints (EndpointType
// 2) are not separate in eddy: every node answers admin requests.

func (b *Broker) handleDescribeCluster(rc *reqCtx, req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.EndpointType > 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = strPtr("eddy has no separate controller endpoints; use the broker endpoints")
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	if err := b.checkCluster(rc, opDescribe); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, errMessage(err)
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	st := b.host.Meta()
	resp.ClusterID = st.ClusterID
	resp.ControllerID = -1
	if leader, _, ok := b.host.Leader(meta.MetaShardID); ok {
		resp.ControllerID = int32(leader)
	}
	resp.ClusterAuthorizedOperations = authorizedOperationsUnset
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = b.authorizedOps(rc, rtCluster, meta.ACLClusterName)
	}
	for _, mb := range b.brokers(st, rc.conn.Listener) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp
}
