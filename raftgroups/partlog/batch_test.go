package partlog

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseBatchHeader(t *testing.T) {
	valid := encodeBatch(t, batchSpec{baseOffset: 42, baseTs: 1000, producerID: 7, attrs: attrTransactional, recs: sampleRecs()})
	h, err := ParseBatchHeader(valid)
	require.NoError(t, err)
	require.Equal(t, int64(42), h.BaseOffset)
	require.Equal(t, len(valid), h.Size())
	require.Equal(t, int8(2), h.Magic)
	require.Equal(t, int32(len(sampleRecs())), h.RecordCount)
	require.Equal(t, int64(42+len(sampleRecs())-1), h.LastOffset())
	require.Equal(t, int64(7), h.ProducerID)
	require.Equal(t, int64(1000), h.BaseTimestamp)
	require.Equal(t, int64(1000+1<<40), h.MaxTimestamp)
	require.True(t, h.Transactional())
	require.False(t, h.Control())
	require.False(t, h.LogAppendTime())
	require.Equal(t, CodecNone, h.Compression())

	withMagic := func(m byte) []byte { b := slices.Clone(valid); b[offMagic] = m; return b }
	withLength := func(n uint32) []byte {
		b := slices.Clone(valid)
		binary.BigEndian.PutUint32(b[offLength:], n)
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorruptBatch},
		{"16 bytes", valid[:16], ErrCorruptBatch},
		{"60 bytes", valid[:60], ErrCorruptBatch},
		{"magic 1", withMagic(1), ErrUnsupportedMagic},
		{"magic 0 short", withMagic(0)[:20], ErrUnsupportedMagic},
		{"length below header", withLength(48), ErrCorruptBatch},
		{"negative length", withLength(0x80000000), ErrCorruptBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBatchHeader(tc.in)
			require.ErrorIs(t, err, tc.want)
		})
	}
	// Header-only: a batch cut after its header still parses.
	_, err = ParseBatchHeader(valid[:BatchHeaderSize])
	require.NoError(t, err)
}

func TestValidateBatches(t *testing.T) {
	a := encodeBatch(t, batchSpec{recs: sampleRecs()})
	b := simpleBatch(t, 3, 10, 5, "b")
	z := encodeBatch(t, batchSpec{codec: CodecZstd, recs: sampleRecs()})
	two := slices.Concat(a, b, z)

	hs, err := ValidateBatches(two, 0)
	require.NoError(t, err)
	require.Len(t, hs, 3)
	require.Equal(t, int32(3), hs[1].RecordCount)
	require.Equal(t, CodecZstd, hs[2].Compression())

	mutate := func(src []byte, f func(b []byte)) []byte {
		b := slices.Clone(src)
		f(b)
		return b
	}
	put32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint32(b[off:], v) }
	}
	refix := func(f func([]byte)) func([]byte) { return func(b []byte) { f(b); fixCRC(b) } }
	for _, tc := range []struct {
		name    string
		in      []byte
		max     int
		want    error
		message string
	}{
		{"empty", nil, 0, ErrCorruptBatch, "no record batch"},
		{"truncated header", a[:30], 0, ErrCorruptBatch, "header truncated"},
		{"truncated body", a[:len(a)-1], 0, ErrCorruptBatch, "runs past the data"},
		{"trailing partial batch", append(slices.Clone(a), b[:20]...), 0, ErrCorruptBatch, "batch 1 at byte"},
		{"bad crc", mutate(a, func(b []byte) { b[len(b)-1] ^= 1 }), 0, ErrCorruptBatch, "crc32c mismatch: header 0x"},
		{"bad crc second batch", mutate(two, func(b []byte) { b[len(a)+70] ^= 1 }), 0, ErrCorruptBatch, "batch 1 at byte"},
		{"magic 1", mutate(a, func(b []byte) { b[offMagic] = 1 }), 0, ErrUnsupportedMagic, "magic 1"},
		{"too large", a, len(a) - 1, ErrBatchTooLarge, "limit"},
		{"exactly max", a, len(a), nil, ""},
		{"record count zero", mutate(a, refix(put32(offRecordCount, 0))), 0, ErrCorruptBatch, "recordCount 0"},
		{"count mismatch", mutate(a, refix(put32(offRecordCount, 5))), 0, ErrCorruptBatch, "does not match lastOffsetDelta"},
		{"negative last delta", mutate(a, refix(put32(offLastOffsetDelta, 0xffffffff))), 0, ErrCorruptBatch, "negative lastOffsetDelta"},
		{"count beyond bytes", mutate(b, refix(func(b []byte) {
			binary.BigEndian.PutUint32(b[offRecordCount:], 1000)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 999)
		})), 0, ErrCorruptBatch, "cannot fit"},
		{"codec 5", mutate(a, refix(func(b []byte) { b[offAttributes+1] |= 5 })), 0, ErrUnsupportedCompression, "codec id 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ValidateBatches(tc.in, tc.max)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, err.Error(), tc.message)
		})
	}
}

func TestRewriteBatch(t *testing.T) {
	orig := encodeBatch(t, batchSpec{baseTs: 1000, recs: sampleRecs()})
	for _, tc := range []struct {
		name       string
		appendTime int64
	}{
		{"create time", -1},
		{"log append time", 5555},
		{"log append time zero", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := slices.Clone(orig)
			require.NoError(t, RewriteBatch(b, 1234, 9, tc.appendTime))
			hs, err := ValidateBatches(b, 0)
			require.NoError(t, err, "the rewritten batch must keep a valid CRC")
			h := hs[0]
			require.Equal(t, int64(1234), h.BaseOffset)
			require.Equal(t, int32(9), h.PartitionLeaderEpoch)
			want, _ := ParseBatchHeader(orig)
			if tc.appendTime < 0 {
				require.False(t, h.LogAppendTime())
				require.Equal(t, want.CRC, h.CRC)
				require.Equal(t, want.MaxTimestamp, h.MaxTimestamp)
				return
			}
			require.True(t, h.LogAppendTime())
			require.Equal(t, tc.appendTime, h.MaxTimestamp)
			require.Equal(t, want.BaseTimestamp, h.BaseTimestamp)
			require.NoError(t, DecodeRecords(b, 1<<20, func(r Record) error {
				require.Equal(t, tc.appendTime, r.Timestamp)
				return nil
			}))
		})
	}
	require.ErrorIs(t, RewriteBatch(orig[:len(orig)-1], 0, 0, 0), ErrCorruptBatch)
	require.ErrorIs(t, RewriteBatch(orig[:10], 0, 0, 0), ErrCorruptBatch)
}

// TestKmsgCompat checks the codec against franz-go's, in both directions.
func TestKmsgCompat(t *testing.T) {
	var records []byte
	for i, r := range sampleRecs() {
		kr := kmsg.Record{TimestampDelta64: r.tsDelta, OffsetDelta: int32(i), Key: r.key, Value: r.value}
		for _, h := range r.headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		body := kr.AppendTo(nil)
		kr.Length = int32(len(body) - 1) // the zero Length encoded as one varint byte
		records = kr.AppendTo(records)
	}
	kb := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(sampleRecs()) - 1),
		FirstTimestamp: 1000, MaxTimestamp: 1000 + 1<<40, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(sampleRecs())), Records: records,
	}
	kb.Length = int32(minBatchLength + len(records))
	b := kb.AppendTo(nil)
	fixCRC(b)
	require.Equal(t, encodeBatch(t, batchSpec{baseTs: 1000, producerID: -1, recs: sampleRecs()}), b, "test encoder and kmsg must agree")

	_, err := ValidateBatches(b, 0)
	require.NoError(t, err)
	var got []Record
	require.NoError(t, DecodeRecords(b, 1<<20, func(r Record) error {
		r.Headers = slices.Clone(r.Headers)
		got = append(got, r)
		return nil
	}))
	require.Len(t, got, len(sampleRecs()))
	for i, r := range sampleRecs() {
		require.Equal(t, int64(i), got[i].Offset)
		require.Equal(t, 1000+r.tsDelta, got[i].Timestamp)
		require.Equal(t, r.key == nil, got[i].Key == nil)
		require.Equal(t, r.value == nil, got[i].Value == nil)
	}

	var back kmsg.RecordBatch
	require.NoError(t, back.ReadFrom(b))
	require.Equal(t, int32(len(b)-12), back.Length)
	h, _ := ParseBatchHeader(b)
	require.Equal(t, int32(h.CRC), back.CRC)
}
