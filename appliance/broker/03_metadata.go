package broker

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// Metadata, versions 0–13.
//
// Brokers are advertised with the addresses of the listener the request
// came in on, so a QUIC client is sent to QUIC addresses and a TCP client
// to TCP ones. A partition's leader is its Raft leader and the leader
// epoch is the Raft term. Topics are auto-created here when the request
// allows it and the broker has auto-creation on, as in Kafka.

// authorizedOperationsUnset is Kafka's "not requested" value.
const authorizedOperationsUnset = -2147483648

func (b *Broker) handleMetadata(ctx context.Context, rc *reqCtx, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	st := b.host.Meta()
	resp.Brokers = b.brokers(st, rc.conn.Listener)
	resp.ClusterID = strPtr(st.ClusterID)
	resp.ControllerID = -1
	if leader, _, ok := b.host.Leader(meta.MetaShardID); ok {
		resp.ControllerID = int32(leader)
	}
	resp.AuthorizedOperations = authorizedOperationsUnset
	if req.IncludeClusterAuthorizedOperations && req.Version >= 8 && req.Version <= 10 {
		resp.AuthorizedOperations = b.authorizedOps(rc, rtCluster, meta.ACLClusterName)
	}
	withOps := func(mt kmsg.MetadataResponseTopic) kmsg.MetadataResponseTopic {
		if req.IncludeTopicAuthorizedOperations && req.Version >= 8 && mt.Topic != nil {
			mt.AuthorizedOperations = b.authorizedOps(rc, rtTopic, *mt.Topic)
		}
		return mt
	}

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		// Topics the principal may not describe are left out.
		for _, name := range st.TopicNames() {
			if b.allowed(rc, opDescribe, rtTopic, name) {
				resp.Topics = append(resp.Topics, withOps(b.topicMetadata(st.Topics[name])))
			}
		}
		return resp
	}
	allowAuto := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var topic *meta.Topic
		if rt.Topic == nil {
			topic, _ = st.TopicByID(rt.TopicID)
			if topic == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				b.countError(rc, mt.ErrorCode)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		} else {
			topic = st.Topics[*rt.Topic]
		}
		var name string
		if rt.Topic != nil {
			name = *rt.Topic
		} else {
			name = topic.Name
		}
		if !b.allowed(rc, opDescribe, rtTopic, name) {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			b.countError(rc, mt.ErrorCode)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if topic == nil && allowAuto {
			var t *meta.Topic
			err := b.checkCreateTopic(rc, name)
			if err == nil {
				t, err = b.autoCreate(ctx, name)
			}
			if err != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = rt.Topic
				mt.ErrorCode = kafkaCode(err)
				b.countError(rc, mt.ErrorCode)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			topic = t
		}
		if topic == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			b.countError(rc, mt.ErrorCode)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, withOps(b.topicMetadata(topic)))
	}
	return resp
}

// brokers lists the live registered nodes with the addresses of listener.
// A dead node is left out, as Kafka does, so clients do not pick it for
// requests any broker can answer.
func (b *Broker) brokers(st *meta.State, listener string) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, id := range st.NodeIDs() {
		if !b.cfg.View.Alive(id) {
			continue
		}
		n := st.Nodes[id]
		host, port, ok := splitHostPort(advertisedAddr(n, listener))
		if !ok {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID = int32(id)
		mb.Host, mb.Port = host, port
		if n.Rack != "" {
			mb.Rack = strPtr(n.Rack)
		}
		out = append(out, mb)
	}
	return out
}

// advertisedAddr picks the node's address for the listener a client used.
func advertisedAddr(n *meta.Node, listener string) string {
	if listener == ListenerQUIC && n.QUICAddr != "" {
		return n.QUICAddr
	}
	return n.KafkaAddr
}

func splitHostPort(addr string) (string, int32, bool) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return host, int32(port), true
}

func (b *Broker) topicMetadata(t *meta.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = strPtr(t.Name)
	mt.TopicID = t.ID
	mt.AuthorizedOperations = authorizedOperationsUnset
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
	for i, p := range t.Partitions {
		mp := &mt.Partitions[i]
		*mp = kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index
		mp.Replicas = nodeIDs32(p.Replica)
		mp.OfflineReplicas = []int32{}
		for _, id := range p.Replica {
			if !b.cfg.View.Alive(id) {
				mp.OfflineReplicas = append(mp.OfflineReplicas, int32(id))
			}
		}
		leader, term, ok := b.host.Leader(p.ShardID)
		if !ok && !p.Hosts(b.host.NodeID()) {
			// No replica here: ask what the replicas last reported.
			leader, term, ok = b.cfg.View.Leader(p.ShardID)
		}
		// Raft on a follower keeps naming a dead leader until its election
		// timeout; a client sent there would find no broker.
		if ok && !b.cfg.View.Alive(leader) {
			ok = false
		}
		if !ok {
			mp.Leader, mp.LeaderEpoch = -1, -1
			mp.ISR = []int32{}
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
			continue
		}
		mp.Leader, mp.LeaderEpoch = int32(leader), int32(term)
		mp.ISR = nodeIDs32(b.cfg.View.InSync(p.ShardID, leader, p.Replica))
	}
	return mt
}

func nodeIDs32(ids []uint64) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
