package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit (8), OffsetFetch (9) and OffsetDelete (47): committed
// offsets live in the group's shard and are served by its coordinator.

func (b *Broker) handleOffsetCommit(ctx context.Context, rc *reqCtx, req *kmsg.OffsetCommitRequest) kmsg.Response {
	if c, _ := b.coords.get(req.Group); c != nil {
		return c.OffsetCommit(ctx, req)
	}
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition, p.ErrorCode = rp.Partition, kerr.NotCoordinator.Code
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	b.countError(rc, kerr.NotCoordinator.Code)
	return resp
}

func (b *Broker) handleOffsetFetch(rc *reqCtx, req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, g := range req.Groups {
			resp.Groups = append(resp.Groups, b.offsetFetchGroup(rc, g.Group, g.Topics))
		}
		return resp
	}
	// v0–7 ask for one group; its answer has the older shape.
	var topics []kmsg.OffsetFetchRequestGroupTopic
	if req.Topics != nil {
		topics = []kmsg.OffsetFetchRequestGroupTopic{}
		for _, t := range req.Topics {
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = t.Topic, t.Partitions
			topics = append(topics, gt)
		}
	}
	g := b.offsetFetchGroup(rc, req.Group, topics)
	resp.ErrorCode = g.ErrorCode
	for _, gt := range g.Topics {
		t := kmsg.NewOffsetFetchResponseTopic()
		t.Topic = gt.Topic
		for _, gp := range gt.Partitions {
			p := kmsg.NewOffsetFetchResponseTopicPartition()
			p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func (b *Broker) offsetFetchGroup(rc *reqCtx, group string, topics []kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroup {
	if c, _ := b.coords.get(group); c != nil {
		return c.OffsetFetch(group, topics)
	}
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group, g.ErrorCode = group, kerr.NotCoordinator.Code
	b.countError(rc, g.ErrorCode)
	return g
}

func (b *Broker) handleOffsetDelete(ctx context.Context, rc *reqCtx, req *kmsg.OffsetDeleteRequest) kmsg.Response {
	if c, _ := b.coords.get(req.Group); c != nil {
		return c.OffsetDelete(ctx, req)
	}
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	resp.ErrorCode = kerr.NotCoordinator.Code
	b.countError(rc, resp.ErrorCode)
	return resp
}
