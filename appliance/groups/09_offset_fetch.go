package groups

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch, versions 0–9, one group at a time.
//
// The broker splits v8+ multi-group requests by coordinator and merges
// the answers; v0–7 requests carry one group, whose topics it converts to
// and from the v8 shapes used here. RequireStable (v7+) matters only for
// transactional commits, which eddy does not have.

// OffsetFetch returns a group's committed offsets for the partitions
// asked, or all of them when topics is nil. A partition without a commit
// answers offset -1; an unknown group is not an error (Kafka). The result
// is the caller's.
func (c *Coordinator) OffsetFetch(group string, topics []kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = group
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		out.ErrorCode = kerr.NotCoordinator.Code
		return out
	}
	g := c.groups[group]
	if topics == nil {
		if g == nil {
			return out
		}
		for _, o := range g.sortedOffsets() {
			if n := len(out.Topics); n == 0 || out.Topics[n-1].Topic != o.Topic {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = o.Topic
				out.Topics = append(out.Topics, t)
			}
			t := &out.Topics[len(out.Topics)-1]
			t.Partitions = append(t.Partitions, fetched(o.Partition, o, true))
		}
		return out
	}
	out.Topics = make([]kmsg.OffsetFetchResponseGroupTopic, 0, len(topics))
	for _, rt := range topics {
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.OffsetFetchResponseGroupTopicPartition, 0, len(rt.Partitions))
		for _, p := range rt.Partitions {
			var o Offset
			ok := false
			if g != nil {
				o, ok = g.offsets[TopicPartition{rt.Topic, p}]
			}
			t.Partitions = append(t.Partitions, fetched(p, o, ok))
		}
		out.Topics = append(out.Topics, t)
	}
	return out
}

// fetched is one partition's answer. Kafka answers a missing commit with
// offset -1 and empty (not null) metadata, and null metadata as empty.
func fetched(p int32, o Offset, ok bool) kmsg.OffsetFetchResponseGroupTopicPartition {
	out := kmsg.NewOffsetFetchResponseGroupTopicPartition()
	out.Partition = p
	out.Offset = -1
	out.Metadata = strPtr("")
	if ok {
		out.Offset, out.LeaderEpoch = o.Offset, o.LeaderEpoch
		if o.Metadata != nil {
			out.Metadata = strPtr(*o.Metadata)
		}
	}
	return out
}
