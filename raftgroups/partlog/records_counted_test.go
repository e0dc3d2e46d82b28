package partlog

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// DecodeRecordsCounted reports exactly what decompression produced, so a
// caller can charge it to a budget shared by several batches.
func TestDecodeRecordsCountedReportsInflatedBytes(t *testing.T) {
	recs := sampleRecs()
	var raw []byte
	for i, r := range recs {
		raw = appendRecord(raw, r, i)
	}
	for _, c := range allCodecs {
		t.Run(c.name, func(t *testing.T) {
			b := encodeBatch(t, batchSpec{codec: c.codec, xerial: c.xerial, recs: recs})
			n := 0
			inflated, err := DecodeRecordsCounted(b, 1<<20, func(Record) error { n++; return nil })
			require.NoError(t, err)
			require.Equal(t, len(recs), n)
			if c.codec == CodecNone {
				require.Zero(t, inflated, "nothing is inflated for an uncompressed batch")
			} else {
				require.Equal(t, len(raw), inflated)
			}
		})
	}
}
