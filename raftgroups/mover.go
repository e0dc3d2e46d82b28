package raftgroups

import (
	"context"
	"slices"
	"time"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// CatchUpFunc reports whether node's replica of shard has caught up with
// the leader's log. The node supplies it from its view of its peers.
type CatchUpFunc func(shard, node uint64) bool

// SetCatchUp installs the check that decides when a learner may be
// promoted and a preferred leader take over. Until it is set, moves do
// not promote.
func (h *Host) SetCatchUp(f CatchUpFunc) { h.catchUp.Store(&f) }

func (h *Host) caughtUp(shard, node uint64) bool {
	f := h.catchUp.Load()
	return f != nil && (*f)(shard, node)
}

// moveLoop carries out reassignments and preferred-leader requests for
// the partitions this node leads, one Raft membership change at a time,
// recording each step in the metadata. Whoever leads a partition next
// continues where the last step left off.
func (h *Host) moveLoop() {
	defer h.wg.Done()
	ctx, cancel := h.stopContext()
	defer cancel()
	balanceSeq := h.Meta().LeaderBalanceSeq
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		changed := h.MetaChanged()
		select {
		case <-h.stop:
			return
		case <-changed:
		case <-t.C:
		}
		st := h.Meta()
		balance := st.LeaderBalanceSeq != balanceSeq
		balanceSeq = st.LeaderBalanceSeq
		for _, r := range h.Replicas() {
			if !r.Leader {
				continue
			}
			t, ok := st.Topics[r.Topic]
			if !ok || int(r.Partition) >= len(t.Partitions) {
				continue
			}
			p := t.Partitions[r.Partition]
			switch {
			case p.Target != nil:
				if err := h.stepMove(ctx, st, t.Name, p); err != nil {
					h.log.Warn().Err(err).Str("topic", t.Name).Int32("partition", p.Index).Msg("reassignment step failed; will retry")
				}
			case balance && len(p.Replica) > 0 && p.Replica[0] != h.cfg.NodeID && h.caughtUp(p.ShardID, p.Replica[0]):
				_ = h.nh.RequestLeaderTransfer(p.ShardID, p.Replica[0])
			}
		}
	}
}

// stepMove takes one step of p's move to p.Target: add a missing node as a
// learner, else promote a caught-up learner, else remove a replica not in
// the target (handing leadership over first when it is this node).
func (h *Host) stepMove(ctx context.Context, st *meta.State, topic string, p *meta.Partition) error {
	voting, nonVoting, err := h.shardMembers(ctx, p.ShardID)
	if err != nil {
		return err
	}
	change := func(node uint64, op string) error {
		return h.ProposeMeta(ctx, meta.Command{ReplicaChange: &meta.ReplicaChange{Topic: topic, Partition: p.Index, Node: node, Op: op}})
	}
	raftAddr := func(id uint64) string {
		if n, ok := st.Nodes[id]; ok {
			return n.RaftAddr
		}
		return ""
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, n := range p.Target {
		if p.Hosts(n) {
			continue
		}
		if _, ok := nonVoting[n]; !ok {
			if err := h.nh.SyncRequestAddNonVoting(cctx, p.ShardID, n, raftAddr(n), 0); err != nil {
				return err
			}
		}
		h.log.Info().Str("topic", topic).Int32("partition", p.Index).Uint64("node", n).Msg("reassignment: added learner")
		return change(n, meta.ChangeLearner)
	}
	for _, n := range p.Learners {
		if _, ok := voting[n]; !ok {
			if !h.caughtUp(p.ShardID, n) {
				continue
			}
			if err := h.nh.SyncRequestAddReplica(cctx, p.ShardID, n, raftAddr(n), 0); err != nil {
				return err
			}
		}
		h.log.Info().Str("topic", topic).Int32("partition", p.Index).Uint64("node", n).Msg("reassignment: promoted learner")
		return change(n, meta.ChangePromote)
	}
	if len(p.Learners) > 0 {
		return nil // wait for them to catch up
	}
	for _, n := range p.Replica {
		if slices.Contains(p.Target, n) {
			continue
		}
		if n == h.cfg.NodeID {
			// A leader does not remove itself: hand over to an in-sync
			// target replica, which continues the move.
			for _, to := range p.Target {
				if h.caughtUp(p.ShardID, to) {
					return h.nh.RequestLeaderTransfer(p.ShardID, to)
				}
			}
			return nil
		}
		_, isVoting := voting[n]
		_, isNonVoting := nonVoting[n]
		if isVoting || isNonVoting {
			if err := h.nh.SyncRequestDeleteReplica(cctx, p.ShardID, n, 0); err != nil {
				return err
			}
		}
		h.log.Info().Str("topic", topic).Int32("partition", p.Index).Uint64("node", n).Msg("reassignment: removed replica")
		return change(n, meta.ChangeRemove)
	}
	return nil
}

// shardMembers returns a shard's voting and non-voting members as this
// node's replica knows them (it leads, so it knows the latest).
func (h *Host) shardMembers(ctx context.Context, shard uint64) (voting, nonVoting map[uint64]string, err error) {
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := h.nh.SyncGetShardMembership(mctx, shard)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	return m.Nodes, m.NonVotings, nil
}
