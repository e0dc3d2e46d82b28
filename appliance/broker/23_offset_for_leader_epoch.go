package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

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
		authErr := b.checkTopic(rc, opDescribe, rt.Topic)
		for _, rp := range rt.Partitions {
			out := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			out.Partition, out.LeaderEpoch, out.EndOffset = rp.Partition, -1, -1
			err := authErr
			if err == nil {
				err = b.endOffsetForEpoch(topic, rp, &out)
			}
			if err != nil {
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
	part, err := b.ledPartition(topic, rp.Partition, rp.CurrentLeaderEpoch)
	if err != nil {
		return err
	}
	out.LeaderEpoch, out.EndOffset = part.EndOffsetForEpoch(rp.LeaderEpoch)
	return nil
}
