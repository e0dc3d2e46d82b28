package fsm

import (
	"fmt"
	"math"

	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// Idempotent producers (KIP-98): each batch from a producer id carries the
// producer's epoch and the sequence number of its first record. The
// partition remembers, per producer, its epoch and its last few batches,
// and applies three rules in Update, deterministically on every replica:
// a batch seen before is a duplicate (answered with its original offset,
// not written again); a batch that skips sequence numbers is refused
// (OUT_OF_ORDER_SEQUENCE_NUMBER); a batch from an older epoch is fenced
// (INVALID_PRODUCER_EPOCH).

// maxCachedBatches is how many recent batches per producer are kept for
// duplicate detection: Kafka clients keep at most five requests in flight.
const maxCachedBatches = 5

// producerExpiryMs forgets a producer idle this long (by the leader's
// append clock), as Kafka's producer.id.expiration.ms (1 day) does.
const producerExpiryMs = 24 * 60 * 60 * 1000

// expiryEvery is how often (in Raft entries) idle producers are swept;
// the entry index makes it the same on every replica.
const expiryEvery = 1024

// producerState is what a partition remembers of one producer.
type producerState struct {
	Epoch        int16       `json:"epoch"`
	Batches      []batchMeta `json:"batches"`
	LastAppendMs int64       `json:"last_append_ms"`
}

// batchMeta is one recent batch of a producer: its sequence range and
// where it was written.
type batchMeta struct {
	FirstSeq   int32 `json:"first_seq"`
	LastSeq    int32 `json:"last_seq"`
	BaseOffset int64 `json:"base_offset"`
}

// producers maps producer id to state.
type producers map[int64]*producerState

func (ps producers) clone() producers {
	out := make(producers, len(ps))
	for id, s := range ps {
		c := *s
		c.Batches = append([]batchMeta(nil), s.Batches...)
		out[id] = &c
	}
	return out
}

// seqAfter is the sequence number following seq; sequences wrap at int32.
func seqAfter(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// lastSeq is the sequence number of a batch's last record.
func lastSeq(h partlog.BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// sequenceVerdict is what check decided for one batch.
type sequenceVerdict struct {
	duplicate  bool
	baseOffset int64 // of the original, when duplicate
}

// check applies the sequence rules to batch h without changing ps. A
// batch without a producer id passes.
func (ps producers) check(h partlog.BatchHeader) (sequenceVerdict, *CommandError) {
	if h.ProducerID < 0 {
		return sequenceVerdict{}, nil
	}
	st, ok := ps[h.ProducerID]
	switch {
	case !ok:
		if h.BaseSequence != 0 {
			return sequenceVerdict{}, &CommandError{Code: CodeUnknownProducerID,
				Message: fmt.Sprintf("producer %d is unknown to this partition (expired or never seen) and sent sequence %d, not 0", h.ProducerID, h.BaseSequence)}
		}
		return sequenceVerdict{}, nil
	case h.ProducerEpoch < st.Epoch:
		return sequenceVerdict{}, &CommandError{Code: CodeInvalidProducerEpoch,
			Message: fmt.Sprintf("producer %d epoch %d is older than the current %d: fenced", h.ProducerID, h.ProducerEpoch, st.Epoch)}
	case h.ProducerEpoch > st.Epoch:
		if h.BaseSequence != 0 {
			return sequenceVerdict{}, &CommandError{Code: CodeOutOfOrderSequence,
				Message: fmt.Sprintf("producer %d starts epoch %d at sequence %d, not 0", h.ProducerID, h.ProducerEpoch, h.BaseSequence)}
		}
		return sequenceVerdict{}, nil
	}
	last := lastSeq(h)
	for _, b := range st.Batches {
		if b.FirstSeq == h.BaseSequence && b.LastSeq == last {
			return sequenceVerdict{duplicate: true, baseOffset: b.BaseOffset}, nil
		}
	}
	if len(st.Batches) > 0 {
		if want := seqAfter(st.Batches[len(st.Batches)-1].LastSeq); h.BaseSequence != want {
			return sequenceVerdict{}, &CommandError{Code: CodeOutOfOrderSequence,
				Message: fmt.Sprintf("producer %d sent sequence %d, expected %d", h.ProducerID, h.BaseSequence, want)}
		}
	}
	return sequenceVerdict{}, nil
}

// record notes a batch written at base by producer h.ProducerID.
func (ps producers) record(h partlog.BatchHeader, base, appendMs int64) {
	if h.ProducerID < 0 {
		return
	}
	st, ok := ps[h.ProducerID]
	if !ok || h.ProducerEpoch > st.Epoch {
		st = &producerState{Epoch: h.ProducerEpoch}
		ps[h.ProducerID] = st
	}
	st.Batches = append(st.Batches, batchMeta{FirstSeq: h.BaseSequence, LastSeq: lastSeq(h), BaseOffset: base})
	if n := len(st.Batches); n > maxCachedBatches {
		st.Batches = append(st.Batches[:0], st.Batches[n-maxCachedBatches:]...)
	}
	st.LastAppendMs = appendMs
}

// expire forgets producers idle since before nowMs-producerExpiryMs.
func (ps producers) expire(nowMs int64) {
	for id, st := range ps {
		if nowMs-st.LastAppendMs > producerExpiryMs {
			delete(ps, id)
		}
	}
}

// truncate forgets batches at or after offset (the log was cut there).
func (ps producers) truncate(offset int64) {
	for id, st := range ps {
		kept := st.Batches[:0]
		for _, b := range st.Batches {
			if b.BaseOffset < offset {
				kept = append(kept, b)
			}
		}
		st.Batches = kept
		if len(kept) == 0 {
			delete(ps, id)
		}
	}
}
