package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// DeleteRecords, versions 0–2.
//
// Moving the log start offset is a Raft command, so every replica deletes
// the same prefix; whole segments below it are removed from disk.

func (b *Broker) handleDeleteRecords(ctx context.Context, rc *reqCtx, req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	timeout := time.Duration(max(req.TimeoutMillis, 1000)) * time.Millisecond
	st := b.host.Meta()
	type pending struct {
		out  *kmsg.DeleteRecordsResponseTopicPartition
		prop *raftgroups.Proposal
	}
	var waits []pending
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		respTopic := &resp.Topics[i]
		*respTopic = kmsg.NewDeleteRecordsResponseTopic()
		respTopic.Topic = rt.Topic
		respTopic.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		topic := st.Topics[rt.Topic]
		authErr := b.checkTopic(rc, opDelete, rt.Topic)
		for j, rp := range rt.Partitions {
			out := &respTopic.Partitions[j]
			*out = kmsg.NewDeleteRecordsResponseTopicPartition()
			out.Partition, out.LowWatermark = rp.Partition, -1
			if authErr != nil {
				out.ErrorCode = kerr.TopicAuthorizationFailed.Code
				b.countError(rc, out.ErrorCode)
				continue
			}
			prop, err := b.proposeDeleteRecords(topic, rp, timeout)
			if err != nil {
				out.ErrorCode = kafkaCode(err)
				b.countError(rc, out.ErrorCode)
				continue
			}
			waits = append(waits, pending{out: out, prop: prop})
		}
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, w := range waits {
		start, err := w.prop.Wait(wctx)
		if err != nil {
			w.out.ErrorCode = kafkaCode(err)
			b.countError(rc, w.out.ErrorCode)
			continue
		}
		w.out.LowWatermark = start
	}
	return resp
}

// proposeDeleteRecords checks one partition and proposes its new start.
// Offset -1 means the high watermark, deleting everything.
func (b *Broker) proposeDeleteRecords(topic *meta.Topic, rp kmsg.DeleteRecordsRequestTopicPartition, timeout time.Duration) (*raftgroups.Proposal, error) {
	if topic == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	mp := partitionOf(topic, rp.Partition)
	if mp == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	part, err := b.host.Partition(mp.ShardID)
	if err != nil {
		return nil, err
	}
	l, err := part.Log()
	if err != nil {
		return nil, err
	}
	offset := rp.Offset
	if offset == -1 {
		offset = l.EndOffset()
	}
	if offset < 0 || offset > l.EndOffset() {
		return nil, fmt.Errorf("%w: offset %d is outside [0, %d]", kerr.OffsetOutOfRange, rp.Offset, l.EndOffset())
	}
	return b.host.ProposeAdvanceStart(mp.ShardID, offset, timeout)
}
