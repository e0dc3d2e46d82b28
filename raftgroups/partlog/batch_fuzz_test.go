package partlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// fuzzSeeds are real batches of every shape the codec handles.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, c := range allCodecs {
		seeds = append(seeds, encodeBatch(f, batchSpec{baseOffset: 5, baseTs: 1000, codec: c.codec, xerial: c.xerial, recs: sampleRecs()[:5]}))
	}
	small := simpleBatch(f, 3, 8, 77, "f")
	lat := slices.Clone(small)
	if err := RewriteBatch(lat, 100, 2, 5000); err != nil {
		f.Fatal(err)
	}
	control := encodeBatch(f, batchSpec{attrs: attrControl | attrTransactional, recs: []testRec{{key: []byte{0, 0, 0, 1}, value: []byte{0, 0, 0, 0, 0, 0}}}})
	seeds = append(seeds, small, lat, control, slices.Concat(small, lat, control), small[:BatchHeaderSize+3])
	return seeds
}

// isSentinel reports whether err wraps one of the errors a caller maps to
// a Kafka code.
func isSentinel(err error) bool {
	for _, s := range []error{ErrCorruptBatch, ErrUnsupportedMagic, ErrBatchTooLarge, ErrUnsupportedCompression, ErrDecompressedTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fixCRCs recomputes the CRC of every batch it can frame, so the fuzzer can
// reach the checks behind the CRC.
func fixCRCs(b []byte) {
	for p := 0; len(b)-p >= BatchHeaderSize; {
		size := batchLengthOverhead + int64(int32(binary.BigEndian.Uint32(b[p+offLength:])))
		if size < BatchHeaderSize || size > int64(len(b)-p) {
			return
		}
		fixCRC(b[p:])
		p += int(size)
	}
}

func FuzzParseBatchHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseBatchHeader(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(b) < BatchHeaderSize || h.Magic != 2 || h.Length < minBatchLength || h.Size() != 12+int(h.Length) {
			t.Fatalf("accepted an impossible header %+v from %d bytes", h, len(b))
		}
		if h2, err := ParseBatchHeader(b[:BatchHeaderSize]); err != nil || h2 != h {
			t.Fatalf("header depends on bytes after it: %+v vs %+v (%v)", h, h2, err)
		}
	})
}

func FuzzValidateBatches(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, 0, false)
		f.Add(s, len(s)-1, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, maxBatch int, fix bool) {
		b = slices.Clone(b)
		if fix {
			fixCRCs(b)
		}
		hs, err := ValidateBatches(b, maxBatch)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		total := 0
		for i, h := range hs {
			batch := b[total : total+h.Size()]
			total += h.Size()
			if h.RecordCount < 1 || int64(h.RecordCount) != int64(h.LastOffsetDelta)+1 {
				t.Fatalf("batch %d: accepted counts %d/%d", i, h.RecordCount, h.LastOffsetDelta)
			}
			if maxBatch > 0 && h.Size() > maxBatch {
				t.Fatalf("batch %d: accepted %d bytes over max %d", i, h.Size(), maxBatch)
			}
			n := checkDecode(t, batch, h)

			// Stamping it as the log does keeps it valid and decodable alike.
			stamped := slices.Clone(batch)
			if err := RewriteBatch(stamped, 1000, 4, 777); err != nil {
				t.Fatalf("rewrite a valid batch: %v", err)
			}
			if _, err := ValidateBatches(stamped, 0); err != nil {
				t.Fatalf("rewritten batch no longer validates: %v", err)
			}
			m := 0
			err := DecodeRecords(stamped, 1<<20, func(r Record) error {
				if r.Timestamp != 777 || r.Offset < 1000 || r.Offset > 1000+int64(h.LastOffsetDelta) {
					return fmt.Errorf("record %+v after rewrite", r)
				}
				m++
				return nil
			})
			if (err == nil) != (n >= 0) || (err == nil && m != n) {
				t.Fatalf("rewrite changed decoding: %d records then %d (%v)", n, m, err)
			}
		}
		if total != len(b) {
			t.Fatalf("validated %d of %d bytes", total, len(b))
		}
	})
}

// checkDecode decodes a validated batch and checks the records against its
// header; it returns the record count, or -1 if decoding failed.
func checkDecode(t *testing.T, batch []byte, h BatchHeader) int {
	n, prev := 0, h.BaseOffset-1
	err := DecodeRecords(batch, 1<<20, func(r Record) error {
		if r.Offset <= prev || r.Offset > h.LastOffset() {
			return fmt.Errorf("offset %d after %d, last %d", r.Offset, prev, h.LastOffset())
		}
		if h.LogAppendTime() && r.Timestamp != h.MaxTimestamp {
			return fmt.Errorf("log append time batch, record timestamp %d", r.Timestamp)
		}
		prev = r.Offset
		n++
		return nil
	})
	if err != nil {
		if !isSentinel(err) {
			t.Fatalf("decode error %v wraps no sentinel", err)
		}
		return -1
	}
	if n != int(h.RecordCount) {
		t.Fatalf("decoded %d records, header says %d", n, h.RecordCount)
	}
	return n
}

func FuzzDecodeRecords(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, 1<<20)
		f.Add(s, 100)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit = min(max(limit, -1), 4<<20)
		orig := slices.Clone(b)
		var h BatchHeader
		n := 0
		err := DecodeRecords(b, limit, func(r Record) error {
			if n == 0 {
				h, _ = ParseBatchHeader(b)
			}
			if r.Offset < h.BaseOffset || r.Offset > h.LastOffset() {
				return fmt.Errorf("offset %d outside [%d, %d]", r.Offset, h.BaseOffset, h.LastOffset())
			}
			for _, hd := range r.Headers {
				if hd.Value != nil && len(hd.Value) > len(b)+limit {
					return fmt.Errorf("header value of %d bytes", len(hd.Value))
				}
			}
			n++
			return nil
		})
		if !bytes.Equal(orig, b) {
			t.Fatal("DecodeRecords modified its input")
		}
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if n != int(h.RecordCount) {
			t.Fatalf("decoded %d records, header says %d", n, h.RecordCount)
		}
	})
}
