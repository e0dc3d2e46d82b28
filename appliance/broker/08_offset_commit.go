package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit (8), OffsetFetch (9) and OffsetDelete (47): committed
// offsets live in the group's shard and are served by its coordinator.

func (b *Broker) handleOffsetCommit(ctx context.Context, rc *reqCtx, req *kmsg.OffsetCommitRequest) kmsg.Response {
	if !b.allowed(rc, opRead, rtGroup, req.Group) {
		return b.failOffsetCommit(rc, req.ResponseKind().(*kmsg.OffsetCommitResponse), req.Topics, kerr.GroupAuthorizationFailed.Code)
	}
	// Topics the principal may not read are answered
	// TOPIC_AUTHORIZATION_FAILED; the others are committed.
	var refused []kmsg.OffsetCommitRequestTopic
	if b.authzOn() {
		kept := make([]kmsg.OffsetCommitRequestTopic, 0, len(req.Topics))
		for _, rt := range req.Topics {
			if b.allowed(rc, opRead, rtTopic, rt.Topic) {
				kept = append(kept, rt)
			} else {
				refused = append(refused, rt)
			}
		}
		if len(refused) > 0 {
			r := *req
			r.Topics = kept
			req = &r
		}
	}
	var resp *kmsg.OffsetCommitResponse
	if c, _ := b.coords.get(req.Group); c == nil {
		resp = b.failOffsetCommit(rc, req.ResponseKind().(*kmsg.OffsetCommitResponse), req.Topics, kerr.NotCoordinator.Code)
	} else if len(req.Topics) > 0 || len(refused) == 0 {
		resp = c.OffsetCommit(ctx, req)
	} else {
		resp = req.ResponseKind().(*kmsg.OffsetCommitResponse)
	}
	return b.failOffsetCommit(rc, resp, refused, kerr.TopicAuthorizationFailed.Code)
}

// failOffsetCommit adds topics to resp with code on every partition.
func (b *Broker) failOffsetCommit(rc *reqCtx, resp *kmsg.OffsetCommitResponse, topics []kmsg.OffsetCommitRequestTopic, code int16) *kmsg.OffsetCommitResponse {
	for _, rt := range topics {
		t := kmsg.NewOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition, p.ErrorCode = rp.Partition, code
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if len(topics) > 0 {
		b.countError(rc, code)
	}
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
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group = group
	if !b.allowed(rc, opDescribe, rtGroup, group) {
		g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		b.countError(rc, g.ErrorCode)
		return g
	}
	c, _ := b.coords.get(group)
	if c == nil {
		g.ErrorCode = kerr.NotCoordinator.Code
		b.countError(rc, g.ErrorCode)
		return g
	}
	if !b.authzOn() {
		return c.OffsetFetch(group, topics)
	}
	if topics == nil {
		// All of the group's offsets: leave out topics the principal may
		// not describe.
		g = c.OffsetFetch(group, nil)
		kept := g.Topics[:0]
		for _, t := range g.Topics {
			if b.allowed(rc, opDescribe, rtTopic, t.Topic) {
				kept = append(kept, t)
			}
		}
		g.Topics = kept
		return g
	}
	kept := make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(topics))
	var refused []kmsg.OffsetFetchRequestGroupTopic
	for _, t := range topics {
		if b.allowed(rc, opDescribe, rtTopic, t.Topic) {
			kept = append(kept, t)
		} else {
			refused = append(refused, t)
		}
	}
	g = c.OffsetFetch(group, kept)
	for _, rt := range refused {
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			tp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			tp.Partition, tp.Offset, tp.ErrorCode = p, -1, kerr.TopicAuthorizationFailed.Code
			t.Partitions = append(t.Partitions, tp)
		}
		g.Topics = append(g.Topics, t)
		b.countError(rc, kerr.TopicAuthorizationFailed.Code)
	}
	return g
}

func (b *Broker) handleOffsetDelete(ctx context.Context, rc *reqCtx, req *kmsg.OffsetDeleteRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if !b.allowed(rc, opDelete, rtGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	c, _ := b.coords.get(req.Group)
	if c == nil {
		resp.ErrorCode = kerr.NotCoordinator.Code
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	if !b.authzOn() {
		return c.OffsetDelete(ctx, req)
	}
	// Topics the principal may not read keep their offsets and are
	// answered TOPIC_AUTHORIZATION_FAILED.
	kept := make([]kmsg.OffsetDeleteRequestTopic, 0, len(req.Topics))
	var refused []kmsg.OffsetDeleteRequestTopic
	for _, rt := range req.Topics {
		if b.allowed(rc, opRead, rtTopic, rt.Topic) {
			kept = append(kept, rt)
		} else {
			refused = append(refused, rt)
		}
	}
	if len(kept) > 0 || len(refused) == 0 {
		r := *req
		r.Topics = kept
		resp = c.OffsetDelete(ctx, &r)
		if resp.ErrorCode != 0 {
			return resp
		}
	}
	for _, rt := range refused {
		t := kmsg.NewOffsetDeleteResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetDeleteResponseTopicPartition()
			p.Partition, p.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
		b.countError(rc, kerr.TopicAuthorizationFailed.Code)
	}
	return resp
}
