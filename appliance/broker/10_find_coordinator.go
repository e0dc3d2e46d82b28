package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator, versions 0–4 (v4 batches keys). A group's coordinator
// is the leader of the group shard its id hashes to; the answer carries
// the address for the listener the client used. Transactions have no
// coordinator in eddy.

const coordinatorTypeGroup = 0

func (b *Broker) handleFindCoordinator(rc *reqCtx, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := b.findCoordinator(rc, key, req.CoordinatorType)
		if req.Version < 4 {
			resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
			break
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
}

func (b *Broker) findCoordinator(rc *reqCtx, key string, typ int8) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key, c.NodeID = key, -1
	fail := func(code int16, msg string) kmsg.FindCoordinatorResponseCoordinator {
		c.ErrorCode, c.ErrorMessage = code, strPtr(msg)
		b.countError(rc, code)
		return c
	}
	if typ != coordinatorTypeGroup {
		return fail(kerr.CoordinatorNotAvailable.Code, "eddy has no transaction coordinator (transactions are not supported)")
	}
	if key == "" {
		return fail(kerr.InvalidGroupID.Code, "the group id is empty")
	}
	if err := b.checkGroup(rc, opDescribe, key); err != nil {
		return fail(kerr.GroupAuthorizationFailed.Code, err.Error())
	}
	st := b.host.Meta()
	shard := st.GroupShardFor(key)
	if shard == nil {
		return fail(kerr.CoordinatorNotAvailable.Code, "the consumer group shards are not created yet; the cluster is still forming")
	}
	leader, _, ok := b.host.Leader(shard.ShardID)
	if !ok {
		leader, _, ok = b.cfg.View.Leader(shard.ShardID)
	}
	if !ok || !b.cfg.View.Alive(leader) {
		return fail(kerr.CoordinatorNotAvailable.Code, fmt.Sprintf("group shard %d has no leader yet", shard.ShardID))
	}
	n, ok := st.Nodes[leader]
	if !ok {
		return fail(kerr.CoordinatorNotAvailable.Code, fmt.Sprintf("node %d is not registered", leader))
	}
	host, port, ok := splitHostPort(advertisedAddr(n, rc.conn.Listener))
	if !ok {
		return fail(kerr.CoordinatorNotAvailable.Code, fmt.Sprintf("node %d advertises no address for this listener", leader))
	}
	c.NodeID, c.Host, c.Port = int32(leader), host, port
	return c
}
