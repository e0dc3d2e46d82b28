package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/fsm"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// errNoNodes means the node registry is empty, which only happens while a
// cluster is forming.
var errNoNodes = errors.New("no broker nodes are registered yet")

// createTopicSpec is a topic to create, from CreateTopics or auto-creation.
type createTopicSpec struct {
	name              string
	partitions        int32 // -1: broker default
	replicationFactor int16 // -1: broker default
	assignment        [][]uint64
	configs           map[string]string
}

// prepareTopic validates spec and builds the meta command that creates it;
// nothing is proposed. Replicas are placed on the nodes in a current view
// of the registry.
func (b *Broker) prepareTopic(ctx context.Context, spec createTopicSpec) (*meta.CreateTopic, error) {
	if err := meta.ValidateTopicName(spec.name); err != nil {
		return nil, &meta.ApplyError{Code: meta.ErrInvalidTopic, Message: err.Error()}
	}
	if err := meta.ValidateConfigs(spec.configs); err != nil {
		return nil, &meta.ApplyError{Code: meta.ErrInvalidConfigs, Message: err.Error()}
	}
	if err := b.checkPluginSettings(ctx, spec.configs); err != nil {
		return nil, err
	}
	replicas := spec.assignment
	if len(replicas) == 0 {
		n := spec.partitions
		if n == -1 {
			n = b.cfg.DefaultPartitions
		}
		if n <= 0 || n > meta.MaxPartitions {
			return nil, &meta.ApplyError{Code: meta.ErrInvalidParts, Message: fmt.Sprintf("partition count must be between 1 and %d, got %d", meta.MaxPartitions, n)}
		}
		rf := int(spec.replicationFactor)
		if rf == -1 {
			rf = int(b.cfg.DefaultReplicationFactor)
		}
		st, err := b.host.SyncMeta(ctx)
		if err != nil {
			return nil, err
		}
		nodes := b.liveNodes(st)
		if len(nodes) == 0 {
			return nil, errNoNodes
		}
		replicas, err = meta.PlaceReplicas(nodes, 0, int(n), rf, meta.PlacementSeed(spec.name))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", kerr.InvalidReplicationFactor, err)
		}
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("topic id: %w", err)
	}
	return &meta.CreateTopic{
		Name:        spec.name,
		ID:          id,
		Replicas:    replicas,
		Configs:     spec.configs,
		CreatedAtMs: time.Now().UnixMilli(),
	}, nil
}

// createTopic creates a topic and waits up to wait (within ctx) until
// every partition has a leader, so a client can produce as soon as it gets
// the answer. Not having leaders by then is not an error: clients retry on
// LEADER_NOT_AVAILABLE.
func (b *Broker) createTopic(ctx context.Context, spec createTopicSpec, wait time.Duration) (*meta.Topic, error) {
	cmd, err := b.prepareTopic(ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := b.host.ProposeMeta(ctx, meta.Command{CreateTopic: cmd}); err != nil {
		return nil, err
	}
	t, ok := b.host.Meta().Topics[spec.name]
	if !ok {
		return nil, fmt.Errorf("topic %q was created but is not in the local metadata", spec.name)
	}
	b.log.Info().Str("topic", t.Name).Int("partitions", len(t.Partitions)).Msg("created topic")
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		b.waitLeaders(wctx, t)
		cancel()
	}
	return t, nil
}

// waitLeaders waits until every partition of t has a leader or ctx ends.
// Not having leaders yet is not an error: clients retry on
// LEADER_NOT_AVAILABLE.
func (b *Broker) waitLeaders(ctx context.Context, t *meta.Topic) {
	for _, p := range t.Partitions {
		for {
			if _, _, ok := b.host.Leader(p.ShardID); ok {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// autoCreate creates topic name with broker defaults when auto-creation is
// on; it tolerates a concurrent creation of the same topic.
func (b *Broker) autoCreate(ctx context.Context, name string) (*meta.Topic, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t, err := b.createTopic(ctx, createTopicSpec{name: name, partitions: -1, replicationFactor: -1}, 10*time.Second)
	if meta.CodeOf(err) == meta.ErrTopicExists {
		if t, ok := b.host.Meta().Topics[name]; ok {
			b.waitLeaders(ctx, t)
			return t, nil
		}
	}
	return t, err
}

// partitionOf returns partition index of t, or nil.
func partitionOf(t *meta.Topic, index int32) *meta.Partition {
	if index < 0 || int(index) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[index]
}

// ledPartition resolves a partition of topic that this node must lead (for
// the APIs answered from the leader's view) and applies KIP-320 epoch
// fencing with the epoch the client knows (-1 skips it).
func (b *Broker) ledPartition(topic *meta.Topic, index, clientEpoch int32) (*fsm.Partition, error) {
	if topic == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	mp := partitionOf(topic, index)
	if mp == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	leader, term, ok := b.host.Leader(mp.ShardID)
	switch {
	case !ok:
		return nil, raftgroups.ErrUnavailable
	case leader != b.host.NodeID():
		return nil, raftgroups.ErrNotLeader
	}
	if err := checkLeaderEpoch(clientEpoch, term); err != nil {
		return nil, err
	}
	return b.host.Partition(mp.ShardID)
}

// liveNodes are the registered nodes new replicas may be placed on: the
// live ones, as Kafka places replicas on live brokers only. A replica on a
// dead node would leave the partition without a quorum until it returns.
func (b *Broker) liveNodes(st *meta.State) []uint64 {
	var out []uint64
	for _, id := range st.NodeIDs() {
		if b.cfg.View.Alive(id) {
			out = append(out, id)
		}
	}
	return out
}
