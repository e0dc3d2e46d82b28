package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// OffsetForLeaderEpoch, versions 0–4.
//
// Consumers (KIP-320) ask where an epoch they read from ended, to detect a
// log truncated by a leader change. Epochs are Raft terms; each replica
// records the offset at which every term started writing.

func (b *Broker) handleOffsetForLeaderEpoch(rc *reqCtx, req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	st := b.host.Meta()
	for _, rt := range req.Topics {
		respTopic := kmsg.NewOffsetForLeaderEpochResponseTopic()
		respTopic.Topic = rt.Topic
		topic := st.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			out := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			out.Partition, out.LeaderEpoch, out.EndOffset = rp.Partition, -1, -1
			if err := b.endOffsetForEpoch(topic, rp, &out); err != nil {
				out.ErrorCode = kafkaCode(err)
				b.countError(rc, out.ErrorCode)
			}
			respTopic.Partitions = append(respTopic.Partitions, out)
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
	return resp
}

func (b *Broker) endOffsetForEpoch(topic *meta.Topic, rp kmsg.OffsetForLeaderEpochRequestTopicPartition, out *kmsg.OffsetForLeaderEpochResponseTopicPartition) error {
	if topic == nil {
		return kerr.UnknownTopicOrPartition
	}
	mp := partitionOf(topic, rp.Partition)
	if mp == nil {
		return kerr.UnknownTopicOrPartition
	}
	leader, term, ok := b.host.Leader(mp.ShardID)
	switch {
	case !ok:
		return raftgroups.ErrUnavailable
	case leader != b.host.NodeID():
		return raftgroups.ErrNotLeader
	}
	if err := checkLeaderEpoch(rp.CurrentLeaderEpoch, term); err != nil {
		return err
	}
	part, err := b.host.Partition(mp.ShardID)
	if err != nil {
		return err
	}
	out.LeaderEpoch, out.EndOffset = part.EndOffsetForEpoch(rp.LeaderEpoch)
	return nil
}
