package partlog

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

var allCodecs = []struct {
	name   string
	codec  Codec
	xerial bool
}{
	{"none", CodecNone, false},
	{"gzip", CodecGzip, false},
	{"snappy raw", CodecSnappy, false},
	{"snappy xerial", CodecSnappy, true},
	{"lz4", CodecLZ4, false},
	{"zstd", CodecZstd, false},
}

func decodeAll(t *testing.T, b []byte, limit int) ([]Record, error) {
	t.Helper()
	var out []Record
	err := DecodeRecords(b, limit, func(r Record) error {
		r.Headers = slices.Clone(r.Headers)
		out = append(out, r)
		return nil
	})
	return out, err
}

func TestDecodeRecordsCodecs(t *testing.T) {
	recs := sampleRecs()
	for _, c := range allCodecs {
		t.Run(c.name, func(t *testing.T) {
			b := encodeBatch(t, batchSpec{baseOffset: 100, baseTs: 7000, codec: c.codec, xerial: c.xerial, recs: recs})
			_, err := ValidateBatches(b, 0)
			require.NoError(t, err)
			got, err := decodeAll(t, b, 1<<20)
			require.NoError(t, err)
			require.Len(t, got, len(recs))
			for i, want := range recs {
				r := got[i]
				require.Equal(t, int64(100+i), r.Offset)
				require.Equal(t, 7000+want.tsDelta, r.Timestamp)
				require.Equal(t, want.key, r.Key)
				require.Equal(t, want.key == nil, r.Key == nil, "null key must stay null")
				require.Equal(t, want.value, r.Value)
				require.Equal(t, want.value == nil, r.Value == nil, "null value must stay null")
				if len(want.headers) == 0 {
					require.Nil(t, r.Headers)
				} else {
					require.Equal(t, want.headers, r.Headers)
				}
			}
		})
	}
}

func TestDecodeRecordsLimit(t *testing.T) {
	recs := sampleRecs()
	var raw []byte
	for i, r := range recs {
		raw = appendRecord(raw, r, i)
	}
	for _, c := range allCodecs[1:] {
		t.Run(c.name, func(t *testing.T) {
			b := encodeBatch(t, batchSpec{codec: c.codec, xerial: c.xerial, recs: recs})
			_, err := decodeAll(t, b, len(raw)-1)
			require.ErrorIs(t, err, ErrDecompressedTooLarge)
			_, err = decodeAll(t, b, 0)
			require.ErrorIs(t, err, ErrDecompressedTooLarge)
			got, err := decodeAll(t, b, len(raw))
			require.NoError(t, err, "exactly the limit is allowed")
			require.Len(t, got, len(recs))
		})
	}
}

// A small compressed batch that inflates to a lot must be refused without
// allocating anywhere near what it inflates to.
func TestDecodeRecordsBomb(t *testing.T) {
	recs := make([]testRec, 50000)
	for i := range recs {
		recs[i] = testRec{value: make([]byte, 1000)}
	}
	for _, c := range allCodecs[1:] {
		t.Run(c.name, func(t *testing.T) {
			b := encodeBatch(t, batchSpec{codec: c.codec, xerial: c.xerial, recs: recs})
			require.Less(t, len(b), 4<<20)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := decodeAll(t, b, 1<<20)
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, ErrDecompressedTooLarge)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "inflates to 50 MB; the limit is 1 MiB")
		})
	}
}

func TestDecodeRecordsLogAppendTime(t *testing.T) {
	b := encodeBatch(t, batchSpec{baseTs: 10, recs: sampleRecs()})
	require.NoError(t, RewriteBatch(b, 50, 1, 999))
	got, err := decodeAll(t, b, 1<<20)
	require.NoError(t, err)
	for i, r := range got {
		require.Equal(t, int64(999), r.Timestamp)
		require.Equal(t, int64(50+i), r.Offset)
	}
}

func TestDecodeRecordsCorrupt(t *testing.T) {
	good := encodeBatch(t, batchSpec{recs: sampleRecs()})
	// Every truncation of the records section, with the header patched to
	// match, must fail cleanly.
	for cut := BatchHeaderSize; cut < len(good); cut++ {
		b := slices.Clone(good[:cut])
		putLen(b, cut)
		_, err := decodeAll(t, b, 1<<20)
		require.Error(t, err, "cut at %d", cut)
	}
	// Every single-byte change in the records section either fails or still
	// yields exactly recordCount records.
	for i := BatchHeaderSize; i < len(good); i += 7 {
		b := slices.Clone(good)
		b[i] ^= 0x55
		got, err := decodeAll(t, b, 1<<20)
		if err == nil {
			require.Len(t, got, len(sampleRecs()))
		}
	}
	// Trailing bytes after the last record.
	b := append(slices.Clone(good), 0, 0)
	putLen(b, len(b))
	_, err := decodeAll(t, b, 1<<20)
	require.ErrorIs(t, err, ErrCorruptBatch)
	require.Contains(t, err.Error(), "after the last")

	// An error from fn comes back as is.
	stop := errors.New("stop")
	require.Equal(t, stop, DecodeRecords(good, 1<<20, func(Record) error { return stop }))
}

func putLen(b []byte, size int) {
	b[offLength] = byte((size - 12) >> 24)
	b[offLength+1] = byte((size - 12) >> 16)
	b[offLength+2] = byte((size - 12) >> 8)
	b[offLength+3] = byte(size - 12)
}

func TestFindTimestamp(t *testing.T) {
	recs := []testRec{{value: []byte("a"), tsDelta: 0}, {value: []byte("b"), tsDelta: 30}, {value: []byte("c"), tsDelta: 10}, {value: []byte("d"), tsDelta: 40}}
	b := encodeBatch(t, batchSpec{baseOffset: 10, baseTs: 100, codec: CodecLZ4, recs: recs})
	for _, tc := range []struct {
		ts, min        int64
		wantOff, wantT int64
		ok             bool
	}{
		{0, 0, 10, 100, true},
		{101, 0, 11, 130, true},
		{130, 0, 11, 130, true},
		{131, 0, 13, 140, true},
		{105, 12, 12, 110, true},
		{105, 13, 13, 140, true},
		{141, 0, 0, 0, false},
	} {
		off, ts, ok, err := FindTimestamp(b, tc.ts, tc.min, 1<<20)
		require.NoError(t, err)
		require.Equal(t, tc.ok, ok, "ts %d", tc.ts)
		require.Equal(t, tc.wantOff, off, "ts %d", tc.ts)
		require.Equal(t, tc.wantT, ts, "ts %d", tc.ts)
	}
}

func TestXerialMultiChunk(t *testing.T) {
	// Bigger than xerial's 32 KiB chunk, so the stream has several chunks.
	recs := []testRec{{value: bytes.Repeat([]byte("abcdefgh"), 20000)}, {value: []byte("tail")}}
	b := encodeBatch(t, batchSpec{codec: CodecSnappy, xerial: true, recs: recs})
	got, err := decodeAll(t, b, 1<<20)
	require.NoError(t, err)
	require.Equal(t, recs[0].value, got[0].Value)
	require.Equal(t, recs[1].value, got[1].Value)
}
