package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/fsm"
	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// ListOffsets, versions 1–11.
//
// Special timestamps: -1 latest (the high watermark), -2 earliest (the log
// start offset), -3 the record with the largest timestamp (v7+), -4
// earliest local (same as earliest: eddy has no tiered storage), -5
// earliest pending upload (none: -1). A real timestamp finds the first
// record at or after it, looking inside the batch the time index points to.

const (
	listLatest         = -1
	listEarliest       = -2
	listMaxTimestamp   = -3
	listEarliestLocal  = -4
	listPendingUpload  = -5
	maxDecompressBytes = 64 << 20
)

func (b *Broker) handleListOffsets(_ context.Context, rc *reqCtx, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	st := b.host.Meta()
	for _, rt := range req.Topics {
		respTopic := kmsg.NewListOffsetsResponseTopic()
		respTopic.Topic = rt.Topic
		topic := st.Topics[rt.Topic]
		authErr := b.checkTopic(rc, opDescribe, rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			p.Offset, p.Timestamp, p.LeaderEpoch = -1, -1, -1
			err := authErr
			if err == nil {
				err = b.listOffset(topic, rp, &p)
			}
			if err != nil {
				p.ErrorCode = kafkaCode(err)
				b.countError(rc, p.ErrorCode)
			}
			respTopic.Partitions = append(respTopic.Partitions, p)
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
	return resp
}

func (b *Broker) listOffset(topic *meta.Topic, rp kmsg.ListOffsetsRequestTopicPartition, out *kmsg.ListOffsetsResponseTopicPartition) error {
	part, err := b.ledPartition(topic, rp.Partition, rp.CurrentLeaderEpoch)
	if err != nil {
		return err
	}
	l, err := part.Log()
	if err != nil {
		return err
	}
	switch ts := rp.Timestamp; {
	case ts == listLatest:
		out.Offset = l.EndOffset()
		out.LeaderEpoch = part.EpochAt(out.Offset)
	case ts == listEarliest || ts == listEarliestLocal:
		out.Offset = l.StartOffset()
		out.LeaderEpoch = part.EpochAt(out.Offset)
	case ts == listPendingUpload:
		// No tiered storage: nothing is pending upload.
	case ts == listMaxTimestamp:
		if l.EndOffset() > l.StartOffset() {
			return findByTimestamp(part, l, l.MaxTimestamp(), true, out)
		}
	case ts >= 0:
		return findByTimestamp(part, l, ts, false, out)
	default:
		return fmt.Errorf("%w: unknown special timestamp %d", kerr.InvalidRequest, ts)
	}
	return nil
}

// findByTimestamp sets out to the first record with a timestamp at or
// after ts (with exact, equal to ts). No such record leaves -1/-1, as Kafka
// answers.
func findByTimestamp(part *fsm.Partition, l *partlog.Log, ts int64, exact bool, out *kmsg.ListOffsetsResponseTopicPartition) error {
	batchOffset, _, ok, err := l.OffsetForTimestamp(ts)
	if err != nil || !ok {
		return err
	}
	start := l.StartOffset()
	var buf []byte
	// CreateTime timestamps need not grow with offsets, so the match may be
	// a few batches on; bound the walk so one request stays cheap.
	for off, i := max(batchOffset, start), 0; off < l.EndOffset() && i < 1000; i++ {
		data, err := l.Read(off, 1, buf[:0])
		if err != nil {
			return err
		}
		buf = data
		h, err := partlog.ParseBatchHeader(data)
		if err != nil {
			return err
		}
		found, foundTs, ok, err := partlog.FindTimestamp(data[:h.Size()], ts, start, maxDecompressBytes)
		if err != nil {
			return err
		}
		if ok && (!exact || foundTs == ts) {
			out.Offset, out.Timestamp = found, foundTs
			out.LeaderEpoch = part.EpochAt(found)
			return nil
		}
		off = h.LastOffset() + 1
	}
	return nil
}
