package groups

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit, versions 0–9 (v10 names topics by id and is not served).
//
// Generation -1 is a commit from outside group management (a "simple"
// consumer), allowed while the group is Empty or unknown. Otherwise the
// member and its generation must be current; commits are refused only
// while the group awaits its leader's assignment (CompletingRebalance),
// as in Kafka. The answer comes after the Store has made the offsets
// durable, and OffsetFetch sees them from then on.

// OffsetCommit commits offsets for a group. Each partition's error code
// is its own; a group-level refusal is repeated on every partition.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewOffsetCommitResponseTopic()
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			out.Partitions[j] = kmsg.NewOffsetCommitResponseTopicPartition()
			out.Partitions[j].Partition = rp.Partition
		}
	}
	setAll := func(code int16) *kmsg.OffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	gen, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		gen, memberID = -1, ""
	}
	var instance *string
	if req.Version >= 7 {
		instance = req.InstanceID
	}

	unlock, err := c.lockGroup(ctx, req.Group)
	if err != nil {
		return setAll(c.storeCode(err))
	}
	defer unlock()

	c.mu.Lock()
	if code := c.commitAllowed(req.Group, gen, memberID, instance); code != 0 {
		c.mu.Unlock()
		return setAll(code)
	}
	now := c.nowMs()
	var (
		offs []Offset
		outs []*kmsg.OffsetCommitResponseTopicPartition
	)
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			out := &resp.Topics[i].Partitions[j]
			if rp.Metadata != nil && len(*rp.Metadata) > maxMetadataBytes {
				out.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			epoch := rp.LeaderEpoch
			if req.Version < 6 {
				epoch = -1
			}
			var md *string
			if rp.Metadata != nil {
				md = strPtr(*rp.Metadata)
			}
			offs = append(offs, Offset{
				Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset,
				LeaderEpoch: epoch, Metadata: md, CommitTimeMs: now,
			})
			outs = append(outs, out)
		}
	}
	c.mu.Unlock()
	if len(offs) == 0 {
		return resp
	}

	sctx, cancel := c.storeContext(ctx)
	err = c.store.CommitOffsets(sctx, req.Group, offs)
	cancel()
	if err != nil {
		code := c.storeCode(err)
		c.log.Debug().Err(err).Str("group", req.Group).Int16("code", code).Msg("offset commit not persisted")
		for _, out := range outs {
			out.ErrorCode = code
		}
		return resp
	}
	c.mu.Lock()
	g := c.groups[req.Group]
	if g == nil {
		// A simple commit to a group nobody has joined creates it (Empty).
		g = newGroup(req.Group)
		c.groups[req.Group] = g
	}
	for _, o := range offs {
		g.offsets[TopicPartition{o.Topic, o.Partition}] = o
	}
	c.mu.Unlock()
	return resp
}

// commitAllowed checks a commit against the group in Kafka's order. A
// member's commit also counts as a heartbeat. c.mu is held.
func (c *Coordinator) commitAllowed(name string, gen int32, memberID string, instance *string) int16 {
	if c.closed {
		return kerr.NotCoordinator.Code
	}
	g := c.groups[name]
	if g == nil {
		if gen < 0 {
			return 0
		}
		// A member of a generation this coordinator does not know: the
		// group was lost or deleted under it.
		return kerr.IllegalGeneration.Code
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if instance != nil {
		if cur, ok := g.static[*instance]; ok && cur != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if gen < 0 && g.state == stateEmpty {
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if gen != g.generation {
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case stateCompleting:
		// The member has its JoinGroup answer but not yet its assignment:
		// it should not own partitions to commit for.
		return kerr.RebalanceInProgress.Code
	case stateStable, statePreparing:
		// Commits stay allowed while preparing: members learn of the
		// rebalance from their heartbeats and commit before rejoining.
		c.touch(g, m, m.session)
		return 0
	}
	return kerr.UnknownMemberID.Code
}
