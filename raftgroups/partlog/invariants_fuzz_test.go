package partlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzBatchInvariants checks the promises the produce path relies on, not
// only that nothing panics:
//   - the CRC is checked: every batch ValidateBatches accepts carries the
//     CRC-32C of its bytes from attributes on (computed here with the
//     standard library), and flipping any one bit of them gets the request
//     refused;
//   - every count is bounded by the bytes left: recordCount is at least one
//     and matches lastOffsetDelta, an uncompressed batch has room for that
//     many records, and decoding yields at most recordCount records whose
//     keys, values and headers fit in the bytes the batch holds or was
//     allowed to inflate to;
//   - decompression is capped: what a compressed batch inflates to never
//     exceeds the caller's limit (ErrDecompressedTooLarge instead), and
//     decoding one batch allocates in proportion to that limit and the
//     batch, whatever sizes its compressed data declares.
//
// The seeds in testdata/fuzz/FuzzBatchInvariants (TestWriteBatchCorpus)
// are valid and invalid batches in every codec, including decompression
// bombs.
func FuzzBatchInvariants(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, 1<<20, uint32(0), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int, flip uint32, fix bool) {
		limit = min(max(limit, 0), 8<<20)
		b = slices.Clone(b)
		if fix {
			fixCRCs(b)
		}
		hs, err := ValidateBatches(b, 0)
		if err == nil {
			checkValidated(t, b, hs, flip)
		} else if !isSentinel(err) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
		checkDecodeBounded(t, b, limit)
	})
}

var castagnoliStd = crc32.MakeTable(crc32.Castagnoli)

func checkValidated(t *testing.T, b []byte, hs []BatchHeader, flip uint32) {
	pos := 0
	for i, h := range hs {
		size := h.Size()
		batch := b[pos : pos+size]
		if got := crc32.Checksum(batch[offAttributes:], castagnoliStd); got != h.CRC {
			t.Fatalf("batch %d accepted with CRC %#08x, its bytes have %#08x", i, h.CRC, got)
		}
		if h.RecordCount < 1 || int64(h.RecordCount) != int64(h.LastOffsetDelta)+1 {
			t.Fatalf("batch %d accepted with recordCount %d, lastOffsetDelta %d", i, h.RecordCount, h.LastOffsetDelta)
		}
		if h.Compression() == CodecNone && int64(h.RecordCount)*minRecordSize > int64(size-BatchHeaderSize) {
			t.Fatalf("batch %d accepted with %d records in %d bytes", i, h.RecordCount, size-BatchHeaderSize)
		}
		// Any one flipped bit the CRC covers is caught (CRC-32C detects
		// every single-bit error).
		covered := size - offAttributes
		at := pos + offAttributes + int(flip%uint32(covered))
		bad := slices.Clone(b)
		bad[at] ^= 1 << (flip >> 29)
		if _, err := ValidateBatches(bad, 0); err == nil {
			t.Fatalf("batch %d: bit %d of byte %d flipped, still accepted", i, flip>>29, at)
		}
		pos += size
	}
}

// checkDecodeBounded decodes the batch at the start of b with limit and
// checks counts, sizes and allocations.
func checkDecodeBounded(t *testing.T, b []byte, limit int) {
	h, herr := ParseBatchHeader(b)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, payload := 0, 0
	err := DecodeRecords(b, limit, func(r Record) error {
		n++
		payload += len(r.Key) + len(r.Value)
		for _, hd := range r.Headers {
			payload += len(hd.Key) + len(hd.Value)
		}
		return nil
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		if !isSentinel(err) {
			t.Fatalf("decode error %v wraps no sentinel", err)
		}
	} else {
		if herr != nil {
			t.Fatalf("decoded a batch whose header does not parse: %v", herr)
		}
		if n != int(h.RecordCount) {
			t.Fatalf("decoded %d records, header says %d", n, h.RecordCount)
		}
		room := h.Size() - BatchHeaderSize
		if h.Compression() != CodecNone {
			room = limit
		}
		if payload > room {
			t.Fatalf("%d records carry %d bytes, but the batch had room for %d (codec %s, limit %d)", n, payload, room, h.Compression(), limit)
		}
	}
	// Output at most limit, grown geometrically (so up to about twice
	// that in total), plus the batch and a decoder's fixed state.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(3*limit+4*len(b)+decoderOverhead) {
		t.Fatalf("decoding a %d-byte batch with limit %d allocated %d bytes", len(b), limit, alloc)
	}
}

// decoderOverhead bounds what building a decompressor costs (they are
// pooled, but a fuzz worker may need a new one at any time): an LZ4 frame
// may declare 4 MiB blocks, for which pierrec/lz4 takes two 4 MiB buffers
// from its own pool. It is a fixed cost per decoder, not per byte.
const decoderOverhead = 10 << 20

// seedLimit is the decompression limit of the generated seeds: small, so
// that bombs past it stay small too.
const seedLimit = 64 << 10

var writeBatchCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite the generated seed corpus under testdata/fuzz")

// batchCorpus returns named valid and invalid batches in every codec.
func batchCorpus(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	bomb := bytes.Repeat([]byte{0}, 2*seedLimit) // inflates past the seeds' limit
	for _, c := range allCodecs {
		name := strings.ReplaceAll(c.name, " ", "-")
		valid := encodeBatch(t, batchSpec{baseTs: 1000, codec: c.codec, xerial: c.xerial, recs: sampleRecs()})
		seeds["valid-"+name] = valid
		if c.codec != CodecNone {
			seeds["bomb-"+name] = encodeBatch(t, batchSpec{codec: c.codec, xerial: c.xerial, recs: []testRec{{value: bomb}}})
		}
		badCRC := slices.Clone(valid)
		badCRC[len(badCRC)-1] ^= 0x40
		seeds["bad-crc-"+name] = badCRC
		seeds["truncated-"+name] = valid[:len(valid)-7]
		counts := slices.Clone(valid)
		binary.BigEndian.PutUint32(counts[offRecordCount:], 1<<30)
		binary.BigEndian.PutUint32(counts[offLastOffsetDelta:], 1<<30-1)
		fixCRC(counts)
		seeds["huge-count-"+name] = counts
		seeds["two-batches-"+name] = slices.Concat(valid, simpleBatch(t, 2, 10, 5, "x"))
	}
	magic1 := simpleBatch(t, 1, 4, 0, "m")
	magic1[offMagic] = 1
	seeds["magic-1"] = magic1
	codec7 := simpleBatch(t, 1, 4, 0, "c")
	binary.BigEndian.PutUint16(codec7[offAttributes:], 7)
	fixCRC(codec7)
	seeds["codec-7"] = codec7
	return seeds
}

// TestWriteBatchCorpus regenerates testdata/fuzz/FuzzBatchInvariants
// (go test -run TestWriteBatchCorpus ./raftgroups/partlog/ -args
// -write-fuzz-corpus); without the flag it checks the seeds fail and pass
// as their names say.
func TestWriteBatchCorpus(t *testing.T) {
	seeds := batchCorpus(t)
	for name, b := range seeds {
		_, verr := ValidateBatches(b, 0)
		derr := DecodeRecords(b, seedLimit, func(Record) error { return nil })
		switch {
		case strings.HasPrefix(name, "valid-"), strings.HasPrefix(name, "two-batches-"):
			if verr != nil || derr != nil {
				t.Fatalf("%s: %v / %v", name, verr, derr)
			}
		case strings.HasPrefix(name, "bomb-"):
			if verr != nil || !errors.Is(derr, ErrDecompressedTooLarge) {
				t.Fatalf("%s: %v / %v", name, verr, derr)
			}
		default:
			// Compressed batches' counts are checked once inflated.
			if verr == nil && derr == nil {
				t.Fatalf("%s validates and decodes", name)
			}
		}
	}
	if !*writeBatchCorpus {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzBatchInvariants")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nint(%d)\nuint32(%d)\nbool(false)\n", strconv.Quote(string(b)), seedLimit, 0)
		if err := os.WriteFile(filepath.Join(dir, "gen-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
