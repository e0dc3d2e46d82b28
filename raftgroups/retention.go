package raftgroups

import (
	"context"
	"time"

	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// RetentionPolicy decides, on the leader, how far a partition's log may be
// deleted beyond what retention.ms and retention.bytes allow: the offset
// the log may start at, or -1 for no opinion. The broker runs topics'
// retention plugins through it.
type RetentionPolicy func(ctx context.Context, t *meta.Topic, l *partlog.Log, nowMs int64) (int64, error)

// SetRetentionPolicy installs the policy the retention loop consults.
func (h *Host) SetRetentionPolicy(p RetentionPolicy) { h.retentionPolicy.Store(&p) }

// retentionLoop runs on every node and acts for the partitions this node
// leads: the leader decides what is past retention with its clock and
// proposes the new start offset, so all replicas delete the same prefix.
func (h *Host) retentionLoop() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.enforceRetention(time.Now().UnixMilli())
		}
	}
}

// EnforceRetention checks every led partition once, now. Tests and the
// admin API call it; the loop calls it periodically.
func (h *Host) EnforceRetention() { h.enforceRetention(time.Now().UnixMilli()) }

func (h *Host) enforceRetention(nowMs int64) {
	st := h.Meta()
	h.mu.RLock()
	reps := make([]*replica, 0, len(h.replicas))
	for _, r := range h.replicas {
		reps = append(reps, r)
	}
	h.mu.RUnlock()
	for _, r := range reps {
		t, ok := st.Topics[r.topic]
		part := r.part.Load()
		if !ok || part == nil {
			continue
		}
		if leader, _, ok := h.Leader(r.shardID); !ok || leader != h.cfg.NodeID {
			continue
		}
		l, err := part.Log()
		if err != nil {
			continue
		}
		ms := t.Int64Config(meta.ConfigRetentionMs, h.cfg.TopicDefaults)
		bytes := t.Int64Config(meta.ConfigRetentionBytes, h.cfg.TopicDefaults)
		to := l.RetentionPoint(nowMs, ms, bytes)
		if pol := h.retentionPolicy.Load(); pol != nil && (*pol) != nil && t.Configs[meta.ConfigRetention] != "" {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			pto, err := (*pol)(ctx, t, l, nowMs)
			cancel()
			if err != nil {
				h.log.Warn().Err(err).Str("topic", r.topic).Int32("partition", r.index).Msg("retention plugin failed; keeping the records it did not rule on")
			}
			to = max(to, pto)
		}
		if to <= l.StartOffset() {
			continue
		}
		p, err := h.ProposeAdvanceStart(r.shardID, to, 10*time.Second)
		if err != nil {
			h.log.Warn().Err(err).Str("topic", r.topic).Int32("partition", r.index).Msg("retention proposal failed")
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start, err := p.Wait(ctx)
		cancel()
		if err != nil {
			h.log.Warn().Err(err).Str("topic", r.topic).Int32("partition", r.index).Msg("retention proposal failed")
			continue
		}
		h.log.Info().Str("topic", r.topic).Int32("partition", r.index).Int64("log_start_offset", start).Msg("retention deleted old segments")
	}
}
