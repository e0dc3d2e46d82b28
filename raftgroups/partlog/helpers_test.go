package partlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/require"

	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

// testRec is a record as a test writes it; tsDelta is relative to the
// batch's base timestamp.
type testRec struct {
	key, value []byte
	headers    []Header
	tsDelta    int64
}

// batchSpec describes a batch for the test encoder.
type batchSpec struct {
	baseOffset int64
	baseTs     int64
	codec      Codec
	xerial     bool // snappy in Java's framing
	attrs      int16
	producerID int64
	recs       []testRec
}

// appendRecord encodes one record the way Kafka clients do.
func appendRecord(dst []byte, r testRec, offsetDelta int) []byte {
	hs := make([]partlogtest.Header, len(r.headers))
	for i, h := range r.headers {
		hs[i] = partlogtest.Header(h)
	}
	return partlogtest.AppendRecord(dst, partlogtest.Record{Key: r.key, Value: r.value, Headers: hs, TimestampDelta: r.tsDelta}, offsetDelta)
}

func compressForTest(t testing.TB, c Codec, xerialFraming bool, raw []byte) []byte {
	t.Helper()
	switch c {
	case CodecNone:
		return raw
	case CodecGzip:
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, err := w.Write(raw)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return b.Bytes()
	case CodecSnappy:
		if xerialFraming {
			return xerial.Encode(nil, raw)
		}
		return snappy.Encode(nil, raw)
	case CodecLZ4:
		var b bytes.Buffer
		w := lz4.NewWriter(&b)
		_, err := w.Write(raw)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return b.Bytes()
	case CodecZstd:
		enc, err := zstd.NewWriter(nil)
		require.NoError(t, err)
		defer enc.Close()
		return enc.EncodeAll(raw, nil)
	}
	t.Fatalf("codec %d", c)
	return nil
}

// encodeBatch builds a valid RecordBatch v2 for spec.
func encodeBatch(t testing.TB, spec batchSpec) []byte {
	t.Helper()
	var raw []byte
	maxTs := spec.baseTs
	for i, r := range spec.recs {
		raw = appendRecord(raw, r, i)
		maxTs = max(maxTs, spec.baseTs+r.tsDelta)
	}
	records := compressForTest(t, spec.codec, spec.xerial, raw)
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(records))
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(spec.baseOffset))
	binary.BigEndian.PutUint32(b[offLength:], uint32(minBatchLength+len(records)))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(spec.attrs)|uint16(spec.codec))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(len(spec.recs)-1))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(spec.baseTs))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(spec.producerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(len(spec.recs)))
	b = append(b, records...)
	fixCRC(b)
	return b
}

// fixCRC recomputes the CRC of the batch at the start of b.
func fixCRC(b []byte) { partlogtest.SetCRC(b) }

// simpleBatch builds an uncompressed batch of n records with valueSize-byte
// values derived from tag, all with timestamp ts.
func simpleBatch(t testing.TB, n, valueSize int, ts int64, tag string) []byte {
	t.Helper()
	recs := make([]testRec, n)
	for i := range recs {
		v := bytes.Repeat([]byte{byte(i)}, valueSize)
		copy(v, fmt.Sprintf("%s/%d", tag, i))
		recs[i] = testRec{key: []byte(fmt.Sprintf("k%d", i)), value: v}
	}
	return encodeBatch(t, batchSpec{baseTs: ts, recs: recs})
}

// sampleRecs is a mix of the record shapes a decoder must get right.
func sampleRecs() []testRec {
	return []testRec{
		{key: []byte("k0"), value: []byte("v0")},
		{key: nil, value: []byte("null key")},
		{key: []byte("null value"), value: nil},
		{key: []byte{}, value: []byte{}, tsDelta: 5},
		{key: []byte("hdrs"), value: bytes.Repeat([]byte("x"), 300), tsDelta: -3,
			headers: []Header{{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "c", Value: []byte{}}}},
		{key: []byte("big"), value: bytes.Repeat([]byte("0123456789"), 2000), tsDelta: 1 << 40},
	}
}
