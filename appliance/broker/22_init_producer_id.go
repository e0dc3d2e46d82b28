package broker

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId, versions 0–4, for idempotent producers (not
// transactions: a transactional id is refused).
//
// A new producer gets an id no node has handed out before (from this
// node's block, allocated through the meta shard) and epoch 0. A producer
// that re-initialises with its id and epoch (v3+, KIP-360, after a
// sequence error) gets the next epoch, which resets its sequences on
// every partition; at the last epoch it gets a new id instead.

func (b *Broker) handleInitProducerID(ctx context.Context, rc *reqCtx, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.InvalidTxnState.Code
		if !b.allowed(rc, opWrite, rtTxnID, *req.TransactionalID) {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		}
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	// An idempotent producer needs IDEMPOTENT_WRITE on the cluster, or
	// (Kafka 3.0+) WRITE on at least one topic.
	if b.authzOn() && !b.allowedCluster(rc, opIdempotentWrite) && !b.cfg.Authorizer.AllowedAny(rc.subject(), opWrite, rtTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp
	}
	id, err := b.host.NewProducerID(ctx)
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		b.countError(rc, resp.ErrorCode)
		b.log.Warn().Err(err).Msg("could not allocate a producer id")
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
