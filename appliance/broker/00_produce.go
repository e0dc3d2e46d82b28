package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddybroker/eddy/raftgroups"
	"github.com/eddybroker/eddy/raftgroups/fsm"
	"github.com/eddybroker/eddy/raftgroups/meta"
	"github.com/eddybroker/eddy/raftgroups/partlog"
	"github.com/eddybroker/eddy/transport"
)

// Produce, versions 3–13 (v13 names topics by id).
//
// Each partition's batches are validated (framing, magic 2, CRC32C, size
// against max.message.bytes) and proposed to the partition's Raft shard as
// the frame arrives, so requests on one connection are committed in order.
// The response waits until every proposal is committed and applied:
// acks=1 and acks=all both mean a Raft majority has the batch. acks=0 gets
// no response at all.

// produceTimeoutBounds clamp the client's timeout: zero (common with
// acks=0) must still give Raft time to commit.
const (
	minProduceTimeout = time.Second
	maxProduceTimeout = 5 * time.Minute
)

type pendingPartition struct {
	resp    *kmsg.ProduceResponseTopicPartition
	shardID uint64
	prop    *raftgroups.Proposal
	bytes   int
	records int
	batches int
}

func (b *Broker) serveProduce(ctx context.Context, rc *reqCtx, req *kmsg.ProduceRequest, body []byte) transport.Responder {
	// Records alias the frame; everything that outlives this call is
	// copied into the Raft command below.
	if err := req.ReadFrom(body); err != nil {
		return b.malformed(rc, err)
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	timeout = min(max(timeout, minProduceTimeout), maxProduceTimeout)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var pending []pendingPartition
	now := time.Now().UnixMilli()
	st := b.host.Meta()
	for _, rt := range req.Topics {
		respTopic := kmsg.NewProduceResponseTopic()
		respTopic.Topic, respTopic.TopicID = rt.Topic, rt.TopicID
		// Sized up front: pending keeps pointers into this slice.
		respTopic.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		var topic *meta.Topic
		var topicErr error
		if req.Version >= 13 {
			if t, ok := st.TopicByID(rt.TopicID); !ok {
				topicErr = kerr.UnknownTopicID
			} else if topicErr = b.checkTopic(rc, opWrite, t.Name); topicErr == nil {
				topic = t
			}
		} else if topicErr = b.checkTopic(rc, opWrite, rt.Topic); topicErr != nil {
			// Refused before looking the topic up: whether it exists is
			// not this principal's business.
		} else if t, ok := st.Topics[rt.Topic]; ok {
			topic = t
		} else if b.cfg.AutoCreateTopics {
			if topicErr = b.checkCreateTopic(rc, rt.Topic); topicErr == nil {
				topic, topicErr = b.autoCreate(ctx, rt.Topic)
				st = b.host.Meta()
			}
		} else {
			topicErr = fmt.Errorf("%w: topic %q does not exist and auto-creation is off", kerr.UnknownTopicOrPartition, rt.Topic)
		}
		for _, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition = rp.Partition
			p.BaseOffset, p.LogAppendTime, p.LogStartOffset = -1, -1, -1
			respTopic.Partitions = append(respTopic.Partitions, p)
			pp := &respTopic.Partitions[len(respTopic.Partitions)-1]
			if topicErr != nil {
				b.setProduceError(rc, pp, kafkaCode(topicErr), topicErr)
				continue
			}
			pend, err := b.proposeBatches(ctx, rc, req, topic, rp, now, timeout)
			if err != nil {
				b.setProduceError(rc, pp, kafkaCode(err), err)
				setRecordErrors(pp, err)
				continue
			}
			pend.resp = pp
			if topic.Config(meta.ConfigMessageTimestampType, b.host.TopicDefaults()) == meta.TimestampLogAppendTime {
				pp.LogAppendTime = now
			}
			pending = append(pending, pend)
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
	if req.Acks == 0 {
		// No response is expected; the proposals still complete.
		b.m.Requests.WithLabelValues(rc.api).Inc()
		return func(context.Context) ([]byte, error) { return nil, nil }
	}
	b.inflight.Add(1)
	return func(ctx context.Context) ([]byte, error) {
		defer b.inflight.Add(-1)
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for i := range pending {
			pp := &pending[i]
			base, err := pp.prop.Wait(wctx)
			if err != nil {
				b.setProduceError(rc, pp.resp, errorCode(err), err)
				continue
			}
			pp.resp.BaseOffset = base
			if part, err := b.host.Partition(pp.shardID); err == nil {
				if l, err := part.Log(); err == nil {
					pp.resp.LogStartOffset = l.StartOffset()
				}
			}
			b.m.ProduceBytes.Add(float64(pp.bytes))
			b.m.ProduceRecords.Add(float64(pp.records))
			b.m.ProduceBatches.Add(float64(pp.batches))
		}
		return b.finish(rc, resp), nil
	}
}

// kafkaCode is errorCode that also understands *kerr.Error values used
// directly as errors.
func kafkaCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return errorCode(err)
}

func (b *Broker) setProduceError(rc *reqCtx, p *kmsg.ProduceResponseTopicPartition, code int16, err error) {
	p.ErrorCode = code
	p.ErrorMessage = errMessage(err)
	b.countError(rc, code)
}

// errTransactionsUnsupported: eddy deduplicates idempotent producers but
// has no transaction coordinator.
var errTransactionsUnsupported = fmt.Errorf("%w: transactions are not supported by eddy (idempotent producers are)", kerr.InvalidTxnState)

// proposeBatches validates one partition's batches and proposes them.
func (b *Broker) proposeBatches(ctx context.Context, rc *reqCtx, req *kmsg.ProduceRequest, topic *meta.Topic,
	rp kmsg.ProduceRequestTopicPartition, nowMs int64, timeout time.Duration) (pendingPartition, error) {
	part := partitionOf(topic, rp.Partition)
	if part == nil {
		return pendingPartition{}, fmt.Errorf("%w: topic %q has %d partitions, there is no partition %d",
			kerr.UnknownTopicOrPartition, topic.Name, len(topic.Partitions), rp.Partition)
	}
	if req.TransactionID != nil {
		return pendingPartition{}, errTransactionsUnsupported
	}
	maxBytes := topic.Int64Config(meta.ConfigMaxMessageBytes, b.host.TopicDefaults())
	headers, err := partlog.ValidateBatches(rp.Records, int(maxBytes))
	if err != nil {
		return pendingPartition{}, fmt.Errorf("%s/%d: %w", topic.Name, rp.Partition, err)
	}
	if len(headers) == 0 {
		return pendingPartition{}, fmt.Errorf("%w: no record batch for %s/%d", partlog.ErrCorruptBatch, topic.Name, rp.Partition)
	}
	records := 0
	for _, h := range headers {
		if h.Transactional() || h.Control() {
			return pendingPartition{}, errTransactionsUnsupported
		}
		records += int(h.RecordCount)
	}
	if err := b.checkRecordCounts(rc, headers, records); err != nil {
		return pendingPartition{}, fmt.Errorf("%s/%d: %w", topic.Name, rp.Partition, err)
	}
	leader, term, ok := b.host.Leader(part.ShardID)
	if !ok {
		return pendingPartition{}, fmt.Errorf("%w: %s/%d has no leader yet", raftgroups.ErrUnavailable, topic.Name, rp.Partition)
	}
	if leader != b.host.NodeID() {
		return pendingPartition{}, raftgroups.ErrNotLeader
	}
	// After the leader check: a client at the wrong node should move on,
	// not wait for this node's disk.
	if err := b.checkDiskSpace(rc, len(rp.Records)); err != nil {
		return pendingPartition{}, err
	}
	if topic.Configs[meta.ConfigValidator] != "" || topic.Configs[meta.ConfigPartitioner] != "" {
		decoded := pluginRecordsCapped(rp.Records, headers, b.maxDecompressed())
		err := b.enforcePartitioner(ctx, topic, rp.Partition, decoded)
		if err == nil {
			err = b.validate(ctx, topic, decoded)
		}
		if err != nil {
			if errors.Is(err, partlog.ErrDecompressedTooLarge) {
				b.limitHit(rc, limitDecompressed, err)
			}
			return pendingPartition{}, err
		}
	}
	cmd := fsm.EncodeAppend(make([]byte, 0, 16+len(rp.Records)), fsm.AppendCommand{
		LeaderEpoch:   int32(term),
		AppendTimeMs:  nowMs,
		LogAppendTime: topic.Config(meta.ConfigMessageTimestampType, b.host.TopicDefaults()) == meta.TimestampLogAppendTime,
		Batches:       rp.Records,
	})
	prop, err := b.host.ProposeAppend(part.ShardID, cmd, timeout)
	if err != nil {
		return pendingPartition{}, err
	}
	return pendingPartition{shardID: part.ShardID, prop: prop, bytes: len(rp.Records), records: records, batches: len(headers)}, nil
}

// oversizedProduce answers a produce frame over the size limit with
// MESSAGE_TOO_LARGE for every partition named in the part of the request
// that was read (usually all of them: a frame is large because of its
// records, which come after each partition's index). acks=0 gets no answer.
func (b *Broker) oversizedProduce(rc *reqCtx, head []byte, size int) transport.Responder {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(rc.hdr.version)
	if req.IsFlexible() {
		if err := skipHeaderTags(head, &rc.hdr); err != nil {
			return failConn(fmt.Errorf("broker: oversized produce of %d bytes with a truncated header", size))
		}
	}
	acks, names := scanProduceHead(head[rc.hdr.bodyOffset:], rc.hdr.version)
	if acks == 0 {
		return func(context.Context) ([]byte, error) { return nil, nil }
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	err := fmt.Errorf("%w: the request is %d bytes, over the broker's limit; lower the producer's batch size", kerr.MessageTooLarge, size)
	for _, tp := range names {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = tp.topic, tp.topicID
		for _, part := range tp.partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition = part
			p.BaseOffset, p.LogAppendTime, p.LogStartOffset = -1, -1, -1
			b.setProduceError(rc, &p, kerr.MessageTooLarge.Code, err)
			rt.Partitions = append(rt.Partitions, p)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return ready(b.finish(rc, resp))
}

type headTopic struct {
	topic      string
	topicID    [16]byte
	partitions []int32
}

// scanProduceHead reads a produce request body as far as the bytes go,
// collecting acks and the topic-partitions it names. Record bytes beyond
// the head are skipped by their declared length, without reading them.
func scanProduceHead(b []byte, version int16) (acks int16, topics []headTopic) {
	flexible := version >= 9
	r := headReader{b: b, ok: true}
	if flexible {
		r.skipCompact()
	} else {
		r.skip(int(r.int16()))
	}
	acks = r.int16()
	r.skip(4) // timeout
	nTopics := r.arrayLen(flexible)
	for i := 0; i < nTopics && r.ok; i++ {
		var t headTopic
		switch {
		case version >= 13:
			copy(t.topicID[:], r.take(16))
		case flexible:
			t.topic = string(r.take(r.compactLen()))
		default:
			t.topic = string(r.take(int(r.int16())))
		}
		nParts := r.arrayLen(flexible)
		for j := 0; j < nParts && r.ok; j++ {
			p := r.int32()
			if !r.ok {
				break
			}
			t.partitions = append(t.partitions, p)
			if flexible {
				r.skipCompact()
				r.skipTags()
			} else {
				r.skip(int(r.int32()))
			}
		}
		if flexible {
			r.skipTags()
		}
		if t.topic != "" || t.topicID != [16]byte{} {
			topics = append(topics, t)
		}
	}
	if !r.ok && len(topics) == 0 {
		acks = -1
	}
	return acks, topics
}

// headReader is a forgiving cursor: once it runs out of bytes every read
// returns zero and ok turns false.
type headReader struct {
	b  []byte
	ok bool
}

func (r *headReader) take(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.ok, r.b = false, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *headReader) skip(n int) {
	if n > 0 {
		r.take(n)
	}
}

func (r *headReader) int16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *headReader) int32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *headReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.ok, r.b = false, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// compactLen reads a compact length (stored plus one).
func (r *headReader) compactLen() int { return int(r.uvarint()) - 1 }

func (r *headReader) skipCompact() { r.skip(r.compactLen()) }

func (r *headReader) arrayLen(flexible bool) int {
	if flexible {
		return r.compactLen()
	}
	return int(r.int32())
}

func (r *headReader) skipTags() {
	n := r.uvarint()
	for i := uint64(0); i < n && r.ok; i++ {
		r.uvarint()
		r.skip(int(r.uvarint()))
	}
}
