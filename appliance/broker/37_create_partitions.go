package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/meta"
)

// CreatePartitions, versions 0–3. Count is the new total; partitions can
// only be added. New partitions get their own Raft shards.

func (b *Broker) handleCreatePartitions(ctx context.Context, rc *reqCtx, req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	wait := time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond
	for _, rt := range req.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		err := b.checkTopic(rc, opAlter, rt.Topic)
		if err == nil {
			err = b.createPartitions(ctx, rt, req.ValidateOnly, wait)
		}
		if err != nil {
			out.ErrorCode, out.ErrorMessage = kafkaCode(err), errMessage(err)
			b.countError(rc, out.ErrorCode)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp
}

func (b *Broker) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool, wait time.Duration) error {
	t, ok := b.host.Meta().Topics[rt.Topic]
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, rt.Topic)
	}
	have := int32(len(t.Partitions))
	if rt.Count <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger, got %d", kerr.InvalidPartitions, rt.Topic, have, rt.Count)
	}
	if rt.Count > meta.MaxPartitions {
		return fmt.Errorf("%w: at most %d partitions per topic", kerr.InvalidPartitions, meta.MaxPartitions)
	}
	add := int(rt.Count - have)
	var replicas [][]uint64
	if rt.Assignment != nil {
		if len(rt.Assignment) != add {
			return fmt.Errorf("%w: %d assignments given for %d new partitions", kerr.InvalidReplicaAssignment, len(rt.Assignment), add)
		}
		for _, a := range rt.Assignment {
			ids := make([]uint64, len(a.Replicas))
			for i, r := range a.Replicas {
				if r < 0 {
					return fmt.Errorf("%w: broker id %d", kerr.InvalidReplicaAssignment, r)
				}
				ids[i] = uint64(r)
			}
			replicas = append(replicas, ids)
		}
	} else {
		st, err := b.host.SyncMeta(ctx)
		if err != nil {
			return err
		}
		replicas, err = meta.PlaceReplicas(b.liveNodes(st), int(have), add, len(t.Partitions[0].Replica), meta.PlacementSeed(t.Name))
		if err != nil {
			return fmt.Errorf("%w: %v", kerr.InvalidReplicationFactor, err)
		}
	}
	if validateOnly {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, max(wait, 5*time.Second))
	defer cancel()
	if err := b.host.ProposeMeta(cctx, meta.Command{CreatePartitions: &meta.CreatePartitions{Topic: rt.Topic, Replicas: replicas}}); err != nil {
		return err
	}
	if t, ok := b.host.Meta().Topics[rt.Topic]; ok && wait > 0 {
		wctx, cancel := context.WithTimeout(cctx, wait)
		b.waitLeaders(wctx, t)
		cancel()
	}
	b.log.Info().Str("topic", rt.Topic).Int32("partitions", rt.Count).Msg("added partitions")
	return nil
}
