package broker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups/fsm"
	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// Fetch, versions 4–18 (v13+ names topics by id).
//
// Batches are returned exactly as stored, from the local replica's applied
// log, which only ever holds committed entries, so its end is the high
// watermark. The response waits (long-poll) until MinBytes are available,
// MaxWaitMillis passes, or a partition has an error. Fetch sessions
// (KIP-227) are not kept: a client asking for one gets session id 0 and
// keeps sending full fetches, which every client supports.

// fetchPart is one requested partition being served.
type fetchPart struct {
	resp     *kmsg.FetchResponseTopicPartition
	part     *fsm.Partition
	offset   int64
	maxBytes int
	// follower: served by a replica that is not the leader (KIP-392).
	follower bool
}

func (b *Broker) handleFetch(ctx context.Context, rc *reqCtx, req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		// We never hand out a session, so an incremental fetch refers to
		// one this broker does not know; the client falls back to a full
		// fetch.
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		b.countError(rc, resp.ErrorCode)
		return resp
	}
	st := b.host.Meta()
	var parts []fetchPart
	for _, rt := range req.Topics {
		respTopic := kmsg.NewFetchResponseTopic()
		respTopic.Topic, respTopic.TopicID = rt.Topic, rt.TopicID
		var topic *meta.Topic
		topicErr := kerr.UnknownTopicOrPartition
		if req.Version >= 13 {
			topic, _ = st.TopicByID(rt.TopicID)
			topicErr = kerr.UnknownTopicID
			if topic != nil && !b.allowed(rc, opRead, rtTopic, topic.Name) {
				topic, topicErr = nil, kerr.TopicAuthorizationFailed
			}
		} else if b.allowed(rc, opRead, rtTopic, rt.Topic) {
			topic = st.Topics[rt.Topic]
		} else {
			topicErr = kerr.TopicAuthorizationFailed
		}
		respTopic.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			p := &respTopic.Partitions[i]
			*p = kmsg.NewFetchResponseTopicPartition()
			p.Partition = rp.Partition
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
			// Never null: librdkafka rejects a null record set.
			p.RecordBatches = []byte{}
			if topic == nil {
				p.ErrorCode = topicErr.Code
				b.countError(rc, p.ErrorCode)
				continue
			}
			fp, err := b.fetchPartition(st, topic, rp, req)
			if err != nil {
				p.ErrorCode = kafkaCode(err)
				b.countError(rc, p.ErrorCode)
				continue
			}
			if fp.part == nil {
				// Redirected to a replica in the consumer's rack.
				p.PreferredReadReplica = int32(fp.offset)
				continue
			}
			fp.resp = p
			parts = append(parts, fp)
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
	b.fillFetch(ctx, rc, req, parts)
	return resp
}

// fetchPartition checks one partition can be served from this node. A
// leader may instead redirect a consumer to an in-sync replica in the
// consumer's rack: then the returned part is nil and offset carries the
// preferred replica's node id.
func (b *Broker) fetchPartition(st *meta.State, topic *meta.Topic, rp kmsg.FetchRequestTopicPartition, req *kmsg.FetchRequest) (fetchPart, error) {
	mp := partitionOf(topic, rp.Partition)
	if mp == nil {
		return fetchPart{}, kerr.UnknownTopicOrPartition
	}
	part, err := b.host.Partition(mp.ShardID)
	if err != nil {
		return fetchPart{}, err
	}
	leader, term, ok := b.host.Leader(mp.ShardID)
	if ok {
		if err := checkLeaderEpoch(rp.CurrentLeaderEpoch, term); err != nil {
			return fetchPart{}, err
		}
	}
	self := b.host.NodeID()
	follower := !ok || leader != self
	// Consumers read from followers from Fetch v11 on (KIP-392); older
	// ones expect the leader.
	if follower && req.Version < 11 {
		return fetchPart{}, kerr.NotLeaderForPartition
	}
	if !follower && req.Version >= 11 && req.Rack != "" {
		if id := b.preferredReplica(st, mp, leader, req.Rack); id != 0 && id != self {
			return fetchPart{offset: int64(id)}, nil
		}
	}
	return fetchPart{part: part, offset: rp.FetchOffset, maxBytes: int(rp.PartitionMaxBytes), follower: follower}, nil
}

// preferredReplica picks the replica to read from for a consumer in rack:
// the leader when it is in that rack, else the first in-sync replica on a
// live node there; 0 when none is.
func (b *Broker) preferredReplica(st *meta.State, mp *meta.Partition, leader uint64, rack string) uint64 {
	if n := st.Nodes[leader]; n != nil && n.Rack == rack {
		return leader
	}
	for _, id := range b.cfg.View.InSync(mp.ShardID, leader, mp.Replica) {
		if n := st.Nodes[id]; n != nil && n.Rack == rack && b.cfg.View.Alive(id) {
			return id
		}
	}
	return 0
}

// checkLeaderEpoch applies KIP-320 fencing: a client that knows an older
// epoch must refresh metadata; one that knows a newer epoch than this
// replica must retry until this replica catches up. -1 skips the check.
func checkLeaderEpoch(clientEpoch int32, term uint64) error {
	switch {
	case clientEpoch < 0:
		return nil
	case int64(clientEpoch) < int64(term):
		return kerr.FencedLeaderEpoch
	case int64(clientEpoch) > int64(term):
		return kerr.UnknownLeaderEpoch
	}
	return nil
}

// fillFetch reads the partitions, waiting for data as the request allows.
func (b *Broker) fillFetch(ctx context.Context, rc *reqCtx, req *kmsg.FetchRequest, parts []fetchPart) {
	maxBytes := int(req.MaxBytes)
	if req.Version < 3 || maxBytes <= 0 {
		maxBytes = 1 << 30
	}
	deadline := rc.received.Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		// Take the change channels before reading, so an append between
		// the read and the wait still wakes us.
		waits := make([]<-chan struct{}, len(parts))
		for i, fp := range parts {
			waits[i] = fp.part.Changed()
		}
		total, failed := 0, false
		for i := range parts {
			n, err := b.readPartition(&parts[i], maxBytes-total, total == 0)
			if err != nil {
				parts[i].resp.ErrorCode = kafkaCode(err)
				b.countError(rc, parts[i].resp.ErrorCode)
				failed = true
			}
			total += n
		}
		if failed || total >= int(req.MinBytes) || len(parts) == 0 || !time.Now().Before(deadline) {
			b.m.FetchBytes.Add(float64(total))
			return
		}
		if !waitAny(ctx, deadline, waits) {
			// Deadline or cancellation: answer with what there is (nothing).
			for i := range parts {
				parts[i].resp.RecordBatches = parts[i].resp.RecordBatches[:0]
			}
			b.refreshWatermarks(parts)
			return
		}
	}
}

// readPartition fills fp.resp from the log: whole batches from the one
// holding the fetch offset, within the partition's and the request's
// remaining byte budget. The first partition with data always gets at
// least one batch, even an oversized one (KIP-74), so a consumer can
// never get stuck behind a batch larger than its limits.
func (b *Broker) readPartition(fp *fetchPart, budget int, first bool) (int, error) {
	l, err := fp.part.Log()
	if err != nil {
		return 0, err
	}
	fp.resp.LogStartOffset = l.StartOffset()
	limit := min(fp.maxBytes, budget)
	if limit <= 0 && !first {
		fp.resp.HighWatermark = l.EndOffset()
		fp.resp.LastStableOffset = fp.resp.HighWatermark
		return 0, nil
	}
	data, err := l.Read(fp.offset, max(limit, 1), fp.resp.RecordBatches[:0])
	// The high watermark is read after the data, so it is never below the
	// last offset returned.
	fp.resp.HighWatermark = l.EndOffset()
	fp.resp.LastStableOffset = fp.resp.HighWatermark
	fp.resp.LogStartOffset = l.StartOffset()
	if err != nil {
		if errors.Is(err, partlog.ErrOffsetOutOfRange) {
			if fp.follower && fp.offset > fp.resp.HighWatermark {
				// The leader may have it: this replica is behind. Kafka's
				// retriable answer, so the consumer waits rather than
				// resetting its position.
				return 0, fmt.Errorf("%w: offset %d is beyond this follower's end %d", kerr.OffsetNotAvailable, fp.offset, fp.resp.HighWatermark)
			}
			return 0, fmt.Errorf("%w: offset %d is outside [%d, %d]", err, fp.offset, fp.resp.LogStartOffset, fp.resp.HighWatermark)
		}
		return 0, err
	}
	if data == nil {
		data = []byte{}
	}
	if len(data) > limit && !first {
		// Only the first partition may go over budget.
		fp.resp.RecordBatches = data[:0]
		return 0, nil
	}
	fp.resp.RecordBatches = data
	return len(data), nil
}

func (b *Broker) refreshWatermarks(parts []fetchPart) {
	for _, fp := range parts {
		if l, err := fp.part.Log(); err == nil {
			fp.resp.HighWatermark = l.EndOffset()
			fp.resp.LastStableOffset = fp.resp.HighWatermark
			fp.resp.LogStartOffset = l.StartOffset()
		}
	}
}

// waitAny blocks until one of chans is closed (true), or the deadline
// passes or ctx ends (false).
func waitAny(ctx context.Context, deadline time.Time, chans []<-chan struct{}) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	if len(chans) == 1 {
		select {
		case <-chans[0]:
			return true
		case <-timer.C:
		case <-ctx.Done():
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 2
}
