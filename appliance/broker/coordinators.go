package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eddybroker/eddy/appliance/groups"
	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/fsm"
	"github.com/eddybroker/eddy/raftgroups/meta"
)

// coordinators runs a group coordinator for every group shard this node
// leads: built from the shard's state when leadership arrives (after a
// read barrier, so it sees every committed change), closed when
// leadership leaves. A client asking the wrong node gets NOT_COORDINATOR
// and finds the new one.
type coordinators struct {
	b   *Broker
	cfg groups.Config

	mu      sync.RWMutex
	byShard map[uint64]*groups.Coordinator
}

func newCoordinators(b *Broker, cfg groups.Config) *coordinators {
	return &coordinators{b: b, cfg: cfg, byShard: map[uint64]*groups.Coordinator{}}
}

// get returns the coordinator of the shard holding group, if this node
// leads it.
func (cs *coordinators) get(group string) (*groups.Coordinator, *meta.Partition) {
	shard := cs.b.host.GroupShardOf(group)
	if shard == nil {
		return nil, nil
	}
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	return cs.byShard[shard.ShardID], shard
}

// all returns the running coordinators.
func (cs *coordinators) all() []*groups.Coordinator {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]*groups.Coordinator, 0, len(cs.byShard))
	for _, c := range cs.byShard {
		out = append(out, c)
	}
	return out
}

// run follows leadership of the group shards until ctx ends, then closes
// every coordinator.
func (cs *coordinators) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		cs.sync(ctx)
		select {
		case <-ctx.Done():
			cs.mu.Lock()
			for id, c := range cs.byShard {
				c.Close()
				delete(cs.byShard, id)
			}
			cs.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

func (cs *coordinators) sync(ctx context.Context) {
	host := cs.b.host
	for _, shard := range host.Meta().GroupShards {
		leader, _, ok := host.Leader(shard.ShardID)
		leads := ok && leader == host.NodeID()
		cs.mu.RLock()
		c, running := cs.byShard[shard.ShardID]
		cs.mu.RUnlock()
		switch {
		case leads && !running:
			c, err := cs.start(ctx, shard.ShardID)
			if err != nil {
				cs.b.log.Debug().Err(err).Uint64("shard", shard.ShardID).Msg("group coordinator not started yet")
				continue
			}
			cs.mu.Lock()
			cs.byShard[shard.ShardID] = c
			cs.mu.Unlock()
			cs.b.log.Info().Uint64("shard", shard.ShardID).Msg("coordinating consumer groups of this shard")
		case !leads && running:
			cs.mu.Lock()
			delete(cs.byShard, shard.ShardID)
			cs.mu.Unlock()
			c.Close()
			cs.b.log.Info().Uint64("shard", shard.ShardID).Msg("stopped coordinating consumer groups of this shard")
		}
	}
}

// start builds a coordinator from the shard's current state.
func (cs *coordinators) start(ctx context.Context, shardID uint64) (*groups.Coordinator, error) {
	if err := cs.b.host.SyncShard(ctx, shardID); err != nil {
		return nil, err
	}
	store, err := cs.b.host.GroupStore(shardID)
	if err != nil {
		return nil, err
	}
	st := store.Snapshot()
	snap := groups.Snapshot{Groups: map[string]groups.Group{}, Offsets: map[string][]groups.Offset{}}
	for name, data := range st.Groups {
		var g groups.Group
		if err := json.Unmarshal(data, &g); err != nil {
			return nil, fmt.Errorf("group %q in shard %d: %w", name, shardID, err)
		}
		snap.Groups[name] = g
	}
	for name, topics := range st.Offsets {
		for _, parts := range topics {
			for _, o := range parts {
				snap.Offsets[name] = append(snap.Offsets[name], groups.Offset(o))
			}
		}
	}
	cfg := cs.cfg
	cfg.Logger = cs.b.log.With().Uint64("group_shard", shardID).Logger()
	return groups.New(&groupStore{host: cs.b.host, shard: shardID}, snap, cfg), nil
}

// groupStore persists a coordinator's state through its group shard.
type groupStore struct {
	host  *raftgroups.Host
	shard uint64
}

func (s *groupStore) SaveGroup(ctx context.Context, g groups.Group) error {
	data, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return s.host.ProposeGroup(ctx, s.shard, fsm.GroupCommand{SaveGroup: &fsm.SavedGroup{Name: g.Name, Data: data}})
}

func (s *groupStore) DeleteGroup(ctx context.Context, group string) error {
	return s.host.ProposeGroup(ctx, s.shard, fsm.GroupCommand{DeleteGroup: group})
}

func (s *groupStore) CommitOffsets(ctx context.Context, group string, offsets []groups.Offset) error {
	cos := make([]fsm.CommittedOffset, len(offsets))
	for i, o := range offsets {
		cos[i] = fsm.CommittedOffset(o)
	}
	return s.host.ProposeGroup(ctx, s.shard, fsm.GroupCommand{Commit: &fsm.GroupOffsets{Group: group, Offsets: cos}})
}

func (s *groupStore) DeleteOffsets(ctx context.Context, group string, parts []groups.TopicPartition) error {
	cos := make([]fsm.CommittedOffset, len(parts))
	for i, p := range parts {
		cos[i] = fsm.CommittedOffset{Topic: p.Topic, Partition: p.Partition}
	}
	return s.host.ProposeGroup(ctx, s.shard, fsm.GroupCommand{DeleteOffsets: &fsm.GroupOffsets{Group: group, Offsets: cos}})
}

// clientInfo describes the connection a group request came on.
func clientInfo(rc *reqCtx) groups.ClientInfo {
	host := ""
	if rc.conn != nil && rc.conn.RemoteAddr != nil {
		host, _, _ = net.SplitHostPort(rc.conn.RemoteAddr.String())
	}
	return groups.ClientInfo{ClientID: rc.hdr.clientID, Host: "/" + host}
}

// GroupStats counts what this node coordinates: group shards led, groups
// (not Dead) and their members.
type GroupStats struct {
	Shards, Groups, Members int
}

// GroupStats reports the consumer groups this node coordinates now.
func (b *Broker) GroupStats() GroupStats {
	var s GroupStats
	for _, c := range b.coords.all() {
		s.Shards++
		for _, name := range c.Groups() {
			if g, ok := c.Group(name); ok {
				s.Groups++
				s.Members += len(g.Members)
			}
		}
	}
	return s
}
