package abi

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzRetainInput feeds the retention input a guest receives
// (SplitRetainInput, then the batch reader) arbitrary bytes: it must not
// panic, and an input that reads fully is the canonical encoding of what
// was read, so host and guest agree on every record.
func FuzzRetainInput(f *testing.F) {
	f.Add(AppendRetainInput(nil, 1_700_000_000_000, sampleRecords()))
	f.Fuzz(func(t *testing.T, block []byte) {
		now, batch, err := SplitRetainInput(block)
		if err != nil {
			if len(block) >= 8 {
				t.Fatalf("%d bytes refused: %v", len(block), err)
			}
			return
		}
		rs, err := readAll(t, batch)
		if err != nil {
			return
		}
		again := AppendRetainInput(nil, now, rs)
		if !bytes.HasPrefix(block, again) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, block[:min(len(block), len(again))])
		}
	})
}

// FuzzAnswers feeds the decoders of a guest's answers (the host side of
// the ABI) arbitrary blocks for want records: what decodes has exactly
// want entries, in range, and is the canonical encoding of the block's
// head, so a plugin cannot make the host see more or other than it said.
func FuzzAnswers(f *testing.F) {
	f.Add(AppendPartitions(nil, []int32{0, 2, 1}), uint16(3), int32(3))
	f.Add(AppendExpired(nil, []bool{true, false, true}), uint16(3), int32(1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(0), int32(0))
	f.Fuzz(func(t *testing.T, block []byte, want uint16, partitions int32) {
		n := int(want)
		if ps, err := ParsePartitions(block, n, partitions); err == nil {
			if len(ps) != n {
				t.Fatalf("%d partitions for %d records", len(ps), n)
			}
			for _, p := range ps {
				if p < 0 || p >= partitions {
					t.Fatalf("partition %d of %d", p, partitions)
				}
			}
			if enc := AppendPartitions(nil, ps); !bytes.HasPrefix(block, enc) {
				t.Fatalf("partitions %v are not what the block says", ps)
			}
		}
		if es, err := ParseExpired(block, n); err == nil {
			if len(es) != n {
				t.Fatalf("%d flags for %d records", len(es), n)
			}
			if enc := AppendExpired(nil, es); !bytes.HasPrefix(block, enc) {
				t.Fatalf("flags %v are not what the block says", es)
			}
		}
	})
}

var writeABICorpus = flag.Bool("write-fuzz-corpus", false, "rewrite the generated seed corpora under testdata/fuzz")

// TestWriteABICorpus writes the seed corpora of the ABI decoders' fuzz
// targets (with -write-fuzz-corpus): real blocks as hosts and guests
// encode them, and truncations of each.
func TestWriteABICorpus(t *testing.T) {
	batch := AppendBatch(nil, sampleRecords())
	blocks := map[string]map[string][]byte{
		"FuzzBatchReader": {"batch": batch, "batch-truncated": batch[:len(batch)-5], "empty": AppendBatch(nil, nil)},
		"FuzzRetainInput": {"retain": AppendRetainInput(nil, 1_700_000_000_000, sampleRecords()), "retain-now-only": AppendRetainInput(nil, 5, nil)},
		"FuzzParseConfig": {"config": AppendConfig(nil, []string{"schema", "mode"}, map[string]string{"schema": `{"type":"object"}`, "mode": "strict"})},
	}
	for _, b := range blocks["FuzzBatchReader"] {
		if _, err := readAll(t, b); err != nil && len(b) == len(batch) {
			t.Fatal(err)
		}
	}
	if !*writeABICorpus {
		return
	}
	for target, seeds := range blocks {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if err := os.WriteFile(filepath.Join(dir, "gen-"+name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
