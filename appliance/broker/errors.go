package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/fsm"
	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// errorCode is the one place in-process errors become Kafka error codes.
// The message that goes with a code, where the API has one, is err's text.
func errorCode(err error) int16 {
	var ce *fsm.CommandError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, raftgroups.ErrNotLeader),
		errors.Is(err, raftgroups.ErrUnknownShard),
		errors.Is(err, fsm.ErrPartitionClosed):
		// The client's metadata is stale: it should refresh and retry.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, raftgroups.ErrUnavailable):
		return kerr.LeaderNotAvailable.Code
	case errors.Is(err, raftgroups.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, partlog.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, partlog.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, partlog.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, partlog.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.As(err, &ce):
		switch ce.Code {
		case fsm.CodeOffsetOutOfRange:
			return kerr.OffsetOutOfRange.Code
		case fsm.CodeOutOfOrderSequence:
			return kerr.OutOfOrderSequenceNumber.Code
		case fsm.CodeInvalidProducerEpoch:
			return kerr.InvalidProducerEpoch.Code
		case fsm.CodeUnknownProducerID:
			return kerr.UnknownProducerID.Code
		}
		return kerr.CorruptMessage.Code
	}
	switch meta.CodeOf(err) {
	case meta.ErrTopicExists:
		return kerr.TopicAlreadyExists.Code
	case meta.ErrUnknownTopic:
		return kerr.UnknownTopicOrPartition.Code
	case meta.ErrInvalidTopic:
		return kerr.InvalidTopicException.Code
	case meta.ErrInvalidReplicas:
		return kerr.InvalidReplicaAssignment.Code
	case meta.ErrInvalidConfigs:
		return kerr.InvalidConfig.Code
	case meta.ErrInvalidParts:
		return kerr.InvalidPartitions.Code
	case meta.ErrInvalidCommand, meta.ErrInvalidACL:
		return kerr.InvalidRequest.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage returns a pointer to err's text for the ErrorMessage fields,
// or nil when there is no error.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

func strPtr(s string) *string { return &s }
