package raftgroups

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/lni/dragonboat/v4"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/eddybroker/eddy/raftgroups/fsm"
	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/raftgroups/partlog"
)

func (h *Host) reconcileLoop() {
	defer h.wg.Done()
	ctx, cancel := h.stopContext()
	defer cancel()
	for {
		changed := h.MetaChanged()
		select {
		case <-h.stop:
			return
		case <-changed:
		case <-time.After(5 * time.Second):
			// Retry replicas that failed to start or stop.
		}
		h.reconcile(ctx)
	}
}

// desiredReplica is a shard this node should hold a replica of: a
// partition of topic, or a group shard when topic is nil.
type desiredReplica struct {
	topic *meta.Topic
	part  *meta.Partition
	// founders maps the shard's founding replicas to their raft addresses;
	// a founder bootstraps the shard with them, anyone else joins it.
	founders map[uint64]string
	founder  bool
}

// reconcile starts the partition replicas assigned to this node and stops
// (and deletes) those no longer assigned.
func (h *Host) reconcile(ctx context.Context) {
	st := h.Meta()
	if h.maybeCreateGroupShards(ctx, st) {
		// The change was announced while this pass ran, so no later pass
		// is due for it: start the new shards now.
		st = h.Meta()
	}
	desired := map[uint64]desiredReplica{}
	for _, p := range st.GroupShards {
		if p.Hosts(h.cfg.NodeID) {
			desired[p.ShardID] = desiredReplica{part: p, founders: h.raftAddrs(st, p.Founders), founder: p.Bootstraps(h.cfg.NodeID)}
		}
	}
	for _, t := range st.Topics {
		for _, p := range t.Partitions {
			if !p.Hosts(h.cfg.NodeID) {
				continue
			}
			desired[p.ShardID] = desiredReplica{topic: t, part: p, founders: h.raftAddrs(st, p.Founders),
				founder: p.Bootstraps(h.cfg.NodeID)}
		}
	}
	h.mu.RLock()
	var toStop []uint64
	for id := range h.replicas {
		if _, ok := desired[id]; !ok {
			toStop = append(toStop, id)
		}
	}
	h.mu.RUnlock()
	for _, id := range toStop {
		if err := h.removeReplica(ctx, id); err != nil {
			h.log.Warn().Err(err).Uint64("shard", id).Msg("could not remove partition replica; will retry")
		}
	}
	for id, d := range desired {
		h.mu.RLock()
		r, running := h.replicas[id]
		h.mu.RUnlock()
		if d.topic == nil {
			if !running {
				if err := h.startGroupReplica(d); err != nil {
					h.log.Error().Err(err).Uint64("shard", id).Msg("could not start group shard replica; will retry")
				}
			}
			continue
		}
		lc := h.logConfigFor(d.topic)
		if running {
			if r.logCfg != lc {
				if p := r.part.Load(); p != nil {
					p.SetLogConfig(partlog.Config{SegmentBytes: lc.segmentBytes, SegmentMs: lc.segmentMs})
				}
				h.mu.Lock()
				r.logCfg = lc
				h.mu.Unlock()
			}
			continue
		}
		if err := h.startReplica(d, lc); err != nil {
			h.log.Error().Err(err).Uint64("shard", id).Str("topic", d.topic.Name).Int32("partition", d.part.Index).
				Msg("could not start partition replica; will retry")
		}
	}
	h.removeOrphans(ctx, desired)
}

func (h *Host) logConfigFor(t *meta.Topic) fsmLogConfig {
	return fsmLogConfig{
		segmentBytes: t.Int64Config(meta.ConfigSegmentBytes, h.cfg.TopicDefaults),
		segmentMs:    t.Int64Config(meta.ConfigSegmentMs, h.cfg.TopicDefaults),
	}
}

func (h *Host) startReplica(d desiredReplica, lc fsmLogConfig) error {
	shardID := d.part.ShardID
	r := &replica{
		shardID: shardID,
		topic:   d.topic.Name,
		index:   d.part.Index,
		session: h.nh.GetNoOPSession(shardID),
		logCfg:  lc,
	}
	members, join := h.startMembership(shardID, d)
	dir := h.partitionDir(shardID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("start partition %s/%d: %w", d.topic.Name, d.part.Index, err)
	}
	// A human-readable marker: the directory name is the shard id because
	// topics can be deleted and re-created under the same name.
	marker := fmt.Sprintf("topic=%s\npartition=%d\nshard=%d\n", d.topic.Name, d.part.Index, shardID)
	if err := os.WriteFile(dir+"/PARTITION", []byte(marker), 0o644); err != nil {
		return fmt.Errorf("start partition %s/%d: %w", d.topic.Name, d.part.Index, err)
	}
	create := func(uint64, uint64) sm.IOnDiskStateMachine {
		p := fsm.NewPartition(fsm.PartitionConfig{
			Dir:    dir,
			Log:    partlog.Config{SegmentBytes: lc.segmentBytes, SegmentMs: lc.segmentMs},
			Logger: h.log.With().Str("topic", d.topic.Name).Int32("partition", d.part.Index).Logger(),
		})
		r.part.Store(p)
		return p
	}
	// Register before starting so a leader elected at once finds the
	// replica; the partition handle is set by the factory above.
	h.mu.Lock()
	h.replicas[shardID] = r
	h.mu.Unlock()
	if err := h.nh.StartOnDiskReplica(members, join, create, h.shardConfig(shardID, h.cfg.PartitionSnapshotEntries, !d.founder)); err != nil {
		h.mu.Lock()
		delete(h.replicas, shardID)
		h.mu.Unlock()
		return fmt.Errorf("start partition %s/%d (shard %d): %w", d.topic.Name, d.part.Index, shardID, err)
	}
	return nil
}

// removeReplica stops a replica and deletes its Raft state and files.
func (h *Host) removeReplica(ctx context.Context, shardID uint64) error {
	if err := h.nh.StopShard(shardID); err != nil && err != dragonboat.ErrShardNotFound {
		return fmt.Errorf("stop shard %d: %w", shardID, err)
	}
	h.mu.Lock()
	r := h.replicas[shardID]
	delete(h.replicas, shardID)
	h.mu.Unlock()
	// StopShard returns before Dragonboat closes the state machine, which
	// syncs into the partition's directory: delete it only afterwards.
	if r != nil {
		deadline := time.Now().Add(30 * time.Second)
		for p := r.part.Load(); p != nil && !p.Closed() && time.Now().Before(deadline); p = r.part.Load() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return h.removeData(ctx, shardID)
}

func (h *Host) removeData(ctx context.Context, shardID uint64) error {
	if h.nh.HasNodeInfo(shardID, h.cfg.NodeID) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := h.nh.SyncRemoveData(rctx, shardID, h.cfg.NodeID)
		cancel()
		if err != nil {
			return fmt.Errorf("remove raft data of shard %d: %w", shardID, err)
		}
	}
	if err := os.RemoveAll(h.partitionDir(shardID)); err != nil {
		return fmt.Errorf("remove partition files of shard %d: %w", shardID, err)
	}
	h.log.Info().Uint64("shard", shardID).Msg("removed partition replica")
	return nil
}

// removeOrphans deletes partition directories that no current assignment
// names, e.g. a topic deleted while this node was down.
func (h *Host) removeOrphans(ctx context.Context, desired map[uint64]desiredReplica) {
	entries, err := os.ReadDir(h.partitionsDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		id, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || !e.IsDir() {
			continue
		}
		if _, ok := desired[id]; ok {
			continue
		}
		h.mu.RLock()
		_, running := h.replicas[id]
		h.mu.RUnlock()
		if running {
			continue
		}
		if err := h.removeData(ctx, id); err != nil {
			h.log.Warn().Err(err).Uint64("shard", id).Msg("could not remove orphaned partition")
		}
	}
}

func (h *Host) raftAddrs(st *meta.State, ids []uint64) map[uint64]string {
	out := map[uint64]string{}
	for _, id := range ids {
		if n, ok := st.Nodes[id]; ok {
			out[id] = n.RaftAddr
		}
	}
	return out
}

// startMembership says how a replica starts: on a restart Dragonboat has
// the membership (none given); a founder bootstraps with the founders; any
// other replica joins a running shard.
func (h *Host) startMembership(shardID uint64, d desiredReplica) (members map[uint64]dragonboat.Target, join bool) {
	members = map[uint64]dragonboat.Target{}
	switch {
	case h.nh.HasNodeInfo(shardID, h.cfg.NodeID):
	case d.founder:
		for id, addr := range d.founders {
			members[id] = addr
		}
	default:
		join = true
	}
	return members, join
}

// startGroupReplica starts this node's replica of a group shard.
func (h *Host) startGroupReplica(d desiredReplica) error {
	shardID := d.part.ShardID
	r := &replica{shardID: shardID, index: d.part.Index, session: h.nh.GetNoOPSession(shardID), groups: fsm.NewGroupStore()}
	members, join := h.startMembership(shardID, d)
	h.mu.Lock()
	h.replicas[shardID] = r
	h.mu.Unlock()
	create := func(uint64, uint64) sm.IStateMachine { return fsm.NewGroups(r.groups) }
	if err := h.nh.StartReplica(members, join, create, h.shardConfig(shardID, 1000, !d.founder)); err != nil {
		h.mu.Lock()
		delete(h.replicas, shardID)
		h.mu.Unlock()
		return fmt.Errorf("start group shard %d: %w", shardID, err)
	}
	return nil
}

// maybeCreateGroupShards has the meta leader create the group shards once
// the founding nodes (up to three) have registered, replicated on up to
// three of them. It reports whether it created them.
func (h *Host) maybeCreateGroupShards(ctx context.Context, st *meta.State) bool {
	if len(st.GroupShards) > 0 {
		return false
	}
	if leader, _, ok := h.Leader(meta.MetaShardID); !ok || leader != h.cfg.NodeID {
		return false
	}
	nodes := st.NodeIDs()
	rf := min(3, len(h.cfg.InitialMembers))
	if len(nodes) < rf || rf == 0 {
		return false
	}
	replicas, err := meta.PlaceReplicas(nodes, 0, h.cfg.GroupShards, rf, 0)
	if err != nil {
		h.log.Warn().Err(err).Msg("cannot place group shards yet")
		return false
	}
	if err := h.ProposeMeta(ctx, meta.Command{CreateGroupShards: &meta.CreateGroupShards{Replicas: replicas}}); err != nil {
		h.log.Warn().Err(err).Msg("could not create the group shards; will retry")
		return false
	}
	h.log.Info().Int("shards", h.cfg.GroupShards).Int("replicas", rf).Msg("created the consumer group shards")
	return true
}
