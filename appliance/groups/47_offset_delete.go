package groups

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete, version 0 (KIP-496).
//
// Offsets of an Empty group can all be deleted. While a consumer group has
// members, offsets of topics a member subscribes to are refused per
// partition with GROUP_SUBSCRIBED_TO_TOPIC and the others deleted; a
// non-empty group of another protocol type is refused as a whole.

// OffsetDelete deletes committed offsets of a group, answering after the
// Store has made the deletion durable.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	unlock, err := c.lockGroup(ctx, req.Group)
	if err != nil {
		resp.ErrorCode = c.storeCode(err)
		return resp
	}
	defer unlock()

	c.mu.Lock()
	g := c.groups[req.Group]
	switch {
	case c.closed:
		resp.ErrorCode = kerr.NotCoordinator.Code
	case g == nil, g.state == stateDead:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case g.state != stateEmpty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		c.mu.Unlock()
		return resp
	}
	var del []TopicPartition
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetDeleteResponseTopic()
		t.Topic = rt.Topic
		subscribed := g.state != stateEmpty && g.subscribedTo(rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetDeleteResponseTopicPartition()
			p.Partition = rp.Partition
			if subscribed {
				p.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else {
				del = append(del, TopicPartition{rt.Topic, rp.Partition})
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	c.mu.Unlock()
	if len(del) == 0 {
		return resp
	}

	sctx, cancel := c.storeContext(ctx)
	err = c.store.DeleteOffsets(sctx, req.Group, del)
	cancel()
	if err != nil {
		resp.ErrorCode = c.storeCode(err)
		resp.Topics = nil
		return resp
	}
	c.mu.Lock()
	for _, tp := range del {
		delete(g.offsets, tp)
	}
	c.maybeForget(g)
	c.mu.Unlock()
	return resp
}
