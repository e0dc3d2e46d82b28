package sdk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RejectedRecord is one record a topic's validator refused: its index in
// the batch and the plugin's reason.
type RejectedRecord struct {
	Index  int
	Reason string
}

// RejectedError: the partition's validator refused records, so nothing of
// the batch was written. Records holds the reasons (KIP-467's per-record
// errors); Message the broker's summary.
type RejectedError struct {
	Topic     string
	Partition int32
	Message   string
	Records   []RejectedRecord
}

func (e *RejectedError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s/%d: %v: %s", e.Topic, e.Partition, kerr.InvalidRecord.Message, e.Message)
	}
	return fmt.Sprintf("%s/%d: %v", e.Topic, e.Partition, kerr.InvalidRecord)
}

// Unwrap makes errors.Is(err, kerr.InvalidRecord) hold.
func (e *RejectedError) Unwrap() error { return kerr.InvalidRecord }

// ProduceChecked writes records to one partition as a single batch in one
// request (acks=all, no retries, not idempotent) and, when the topic's
// validator refuses any of them, returns a *RejectedError naming each
// refused record and why. franz-go's producer reports only
// INVALID_RECORD; this is the way to learn the reasons, for tools and
// tests. It returns the batch's first offset.
func (c *Client) ProduceChecked(ctx context.Context, topic string, partition int32, records []*kgo.Record) (int64, error) {
	if len(records) == 0 {
		return -1, errors.New("sdk: no records")
	}
	batch := encodeBatch(records)
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	var last error
	for attempt := 0; attempt < 20; attempt++ {
		leader, topicID, err := c.partitionLeader(ctx, topic, partition)
		if err != nil {
			last = err
			if !sleepCtx(ctx, 100*time.Millisecond) {
				break
			}
			continue
		}
		req.Topics[0].TopicID = topicID // Produce v13+ names topics by id
		resp, err := c.kgo.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			return -1, fmt.Errorf("sdk: produce to %s/%d: %w", topic, partition, err)
		}
		pr := resp.(*kmsg.ProduceResponse)
		if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
			return -1, fmt.Errorf("sdk: produce to %s/%d: malformed response", topic, partition)
		}
		p := pr.Topics[0].Partitions[0]
		kerrv := kerr.ErrorForCode(p.ErrorCode)
		switch {
		case kerrv == nil:
			return p.BaseOffset, nil
		case errors.Is(kerrv, kerr.InvalidRecord):
			rej := &RejectedError{Topic: topic, Partition: partition}
			if p.ErrorMessage != nil {
				rej.Message = *p.ErrorMessage
			}
			for _, er := range p.ErrorRecords {
				reason := ""
				if er.ErrorMessage != nil {
					reason = *er.ErrorMessage
				}
				// The broker prefixes "record N: "; keep the plugin's words.
				if _, rest, ok := strings.Cut(reason, ": "); ok && strings.HasPrefix(reason, "record ") {
					reason = rest
				}
				rej.Records = append(rej.Records, RejectedRecord{Index: int(er.RelativeOffset), Reason: reason})
			}
			return -1, rej
		case kerr.IsRetriable(kerrv):
			last = errCodeMessage(kerrv, p.ErrorMessage)
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return -1, last
			}
		default:
			return -1, fmt.Errorf("sdk: produce to %s/%d: %w", topic, partition, errCodeMessage(kerrv, p.ErrorMessage))
		}
	}
	return -1, fmt.Errorf("sdk: produce to %s/%d: %w", topic, partition, last)
}

// partitionLeader asks the cluster (not kgo's cache, which holds only the
// topics kgo produces to) for a partition's leader and the topic's id.
func (c *Client) partitionLeader(ctx context.Context, topic string, partition int32) (int32, [16]byte, error) {
	md, err := c.admin.Metadata(ctx, topic)
	if err != nil {
		return -1, [16]byte{}, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	t, ok := md.Topics[topic]
	if !ok || t.Err != nil {
		return -1, [16]byte{}, fmt.Errorf("metadata of %s: %v", topic, t.Err)
	}
	p, ok := t.Partitions[partition]
	switch {
	case !ok:
		return -1, t.ID, fmt.Errorf("%s has no partition %d", topic, partition)
	case p.Leader < 0:
		return -1, t.ID, fmt.Errorf("%s/%d has no leader yet", topic, partition)
	}
	return p.Leader, t.ID, nil
}

func errCodeMessage(err error, msg *string) error {
	if msg != nil && *msg != "" {
		return fmt.Errorf("%w: %s", err, *msg)
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// encodeBatch builds an uncompressed RecordBatch v2 of records.
func encodeBatch(records []*kgo.Record) []byte {
	now := time.Now().UnixMilli()
	first := now
	if !records[0].Timestamp.IsZero() {
		first = records[0].Timestamp.UnixMilli()
	}
	maxTs := first
	var body []byte
	for i, r := range records {
		ts := first
		if !r.Timestamp.IsZero() {
			ts = r.Timestamp.UnixMilli()
		}
		maxTs = max(maxTs, ts)
		kr := kmsg.Record{TimestampDelta64: ts - first, OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		enc := kr.AppendTo(nil)
		kr.Length = int32(len(enc) - 1) // the zero length took one byte
		body = kr.AppendTo(body)
	}
	b := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(records) - 1),
		FirstTimestamp:  first,
		MaxTimestamp:    maxTs,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(records)),
		Records:         body,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	crc := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(raw[17:], crc)
	return raw
}
