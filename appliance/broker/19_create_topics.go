package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// CreateTopics, versions 0–7.
//
// The response waits, up to the request's timeout, until every new
// partition has a Raft leader, so a client can produce at once.

func (b *Broker) handleCreateTopics(ctx context.Context, rc *reqCtx, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	wait := time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond
	for _, rt := range req.Topics {
		out := kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		out.NumPartitions, out.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			b.setCreateError(rc, &out, fmt.Errorf("%w: topic %q appears more than once in the request", kerr.InvalidRequest, rt.Topic))
			resp.Topics = append(resp.Topics, out)
			continue
		}
		if err := b.checkCreateTopic(rc, rt.Topic); err != nil {
			b.setCreateError(rc, &out, err)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		spec, err := createSpec(rt)
		if err != nil {
			b.setCreateError(rc, &out, err)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		var topic *meta.Topic
		if req.ValidateOnly {
			topic, err = b.validateTopic(ctx, spec)
		} else {
			cctx, cancel := context.WithTimeout(ctx, max(wait, 5*time.Second))
			topic, err = b.createTopic(cctx, spec, wait)
			cancel()
		}
		if err != nil {
			b.setCreateError(rc, &out, err)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		out.TopicID = topic.ID
		out.NumPartitions = int32(len(topic.Partitions))
		out.ReplicationFactor = int16(len(topic.Partitions[0].Replica))
		if !b.allowed(rc, opDescribeConfigs, rtTopic, topic.Name) {
			// Created, but its configs are not this principal's to see.
			out.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, out)
			continue
		}
		for _, e := range b.topicConfigEntries(topic, nil) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.name, strPtr(e.value), e.readOnly, int8(e.source), false
			out.Configs = append(out.Configs, c)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp
}

func (b *Broker) setCreateError(rc *reqCtx, out *kmsg.CreateTopicsResponseTopic, err error) {
	out.ErrorCode = kafkaCode(err)
	out.ErrorMessage = errMessage(err)
	b.countError(rc, out.ErrorCode)
}

// createSpec converts a CreateTopics topic into a createTopicSpec.
func createSpec(rt kmsg.CreateTopicsRequestTopic) (createTopicSpec, error) {
	spec := createTopicSpec{
		name:              rt.Topic,
		partitions:        rt.NumPartitions,
		replicationFactor: rt.ReplicationFactor,
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, fmt.Errorf("%w: give either a replica assignment or a partition count and replication factor, not both", kerr.InvalidRequest)
		}
		spec.assignment = make([][]uint64, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(rt.ReplicaAssignment) || spec.assignment[a.Partition] != nil {
				return spec, fmt.Errorf("%w: replica assignment partitions must be 0..%d, each once", kerr.InvalidReplicaAssignment, len(rt.ReplicaAssignment)-1)
			}
			ids := make([]uint64, len(a.Replicas))
			for i, r := range a.Replicas {
				if r < 0 {
					return spec, fmt.Errorf("%w: broker id %d", kerr.InvalidReplicaAssignment, r)
				}
				ids[i] = uint64(r)
			}
			spec.assignment[a.Partition] = ids
		}
	} else {
		if rt.NumPartitions == 0 || rt.NumPartitions < -1 {
			return spec, fmt.Errorf("%w: partition count must be positive (or -1 for the broker default), got %d", kerr.InvalidPartitions, rt.NumPartitions)
		}
		if rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 {
			return spec, fmt.Errorf("%w: replication factor must be positive (or -1 for the broker default), got %d", kerr.InvalidReplicationFactor, rt.ReplicationFactor)
		}
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue
		}
		if spec.configs == nil {
			spec.configs = map[string]string{}
		}
		spec.configs[c.Name] = *c.Value
	}
	return spec, nil
}

// validateTopic checks spec as CreateTopics with ValidateOnly does and
// returns the topic as it would be created.
func (b *Broker) validateTopic(ctx context.Context, spec createTopicSpec) (*meta.Topic, error) {
	if _, ok := b.host.Meta().Topics[spec.name]; ok {
		return nil, &meta.ApplyError{Code: meta.ErrTopicExists, Message: fmt.Sprintf("topic %q already exists", spec.name)}
	}
	cmd, err := b.prepareTopic(ctx, spec)
	if err != nil {
		return nil, err
	}
	t := &meta.Topic{Name: cmd.Name, ID: cmd.ID, Configs: cmd.Configs}
	for i, r := range cmd.Replicas {
		t.Partitions = append(t.Partitions, &meta.Partition{Index: int32(i), Replica: r})
	}
	return t, nil
}
