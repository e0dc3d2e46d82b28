package broker

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eddybroker/eddy/raftgroups/partlog"
	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

// gzipped returns a valid gzip-compressed batch of one record holding
// value: zeros compress about a thousandfold.
func gzipped(t *testing.T, value []byte) []byte {
	t.Helper()
	plain := partlogtest.Values(1, value)
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(plain[partlog.BatchHeaderSize:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := append(bytes.Clone(plain[:partlog.BatchHeaderSize]), z.Bytes()...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint16(out[21:], uint16(partlog.CodecGzip))
	partlogtest.SetCRC(out)
	return out
}

// TestPluginDecodeSharesOneDecompressionBudget: the records a plugin sees
// are decoded with one budget for all of a partition's batches, so many
// small compressed batches cannot each inflate to the whole limit.
func TestPluginDecodeSharesOneDecompressionBudget(t *testing.T) {
	const limit = 1 << 20
	one := gzipped(t, make([]byte, 600<<10)) // ~600 KiB inflated, ~1 KiB sent
	two := append(bytes.Clone(one), one...)
	for _, tc := range []struct {
		name    string
		batches []byte
		ok      bool
	}{
		{"one batch within the budget", one, true},
		{"two batches over it together", two, false},
		{"one batch over it alone", gzipped(t, make([]byte, 2<<20)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers, err := partlog.ValidateBatches(tc.batches, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes on the wire", len(tc.batches))
			records, err := pluginRecordsCapped(tc.batches, headers, limit)()
			if tc.ok {
				if err != nil || len(records) != 1 {
					t.Fatalf("got %d records, %v", len(records), err)
				}
				return
			}
			if !errors.Is(err, kerr.MessageTooLarge) || !errors.Is(err, partlog.ErrDecompressedTooLarge) ||
				!strings.Contains(err.Error(), "limits.max_decompressed_bytes") {
				t.Fatalf("got %v, want MESSAGE_TOO_LARGE naming limits.max_decompressed_bytes", err)
			}
			if code := kafkaCode(err); code != kerr.MessageTooLarge.Code {
				t.Fatalf("Kafka error code %d, want MESSAGE_TOO_LARGE", code)
			}
		})
	}
}
