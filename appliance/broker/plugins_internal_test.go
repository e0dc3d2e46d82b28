package broker

import (
	"fmt"
	"testing"

	"github.com/eddybroker/eddy/raftgroups/partlog"
	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

// pluginBatches is two uncompressed batches of n records each, every
// record with a key, a 100-byte value and (when withHeaders) two headers.
func pluginBatches(tb testing.TB, n int, withHeaders bool) ([]byte, []partlog.BatchHeader) {
	var out []byte
	for b := range 2 {
		rs := make([]partlogtest.Record, n)
		for i := range rs {
			rs[i] = partlogtest.Record{Key: fmt.Appendf(nil, "k%d-%d", b, i), Value: make([]byte, 100), TimestampDelta: int64(i)}
			if withHeaders {
				rs[i].Headers = []partlogtest.Header{{Key: "a", Value: []byte{byte(i)}}, {Key: "b", Value: nil}}
			}
		}
		out = append(out, partlogtest.Batch(1000, rs...)...)
	}
	headers, err := partlog.ValidateBatches(out, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return out, headers
}

// TestDecodeForPluginHeaders: each record keeps its own headers, also when
// records share one backing array for them.
func TestDecodeForPluginHeaders(t *testing.T) {
	batches, headers := pluginBatches(t, 300, true)
	records, err := decodeForPlugin(batches, headers, maxValidateDecompressed)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(records), 600; got != want {
		t.Fatalf("got %d records, want %d", got, want)
	}
	for i, r := range records {
		if got, want := r.OffsetDelta, int64(i%300); got != want {
			t.Fatalf("record %d: offset delta %d, want %d", i, got, want)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != "a" || len(r.Headers[0].Value) != 1 || r.Headers[0].Value[0] != byte(i%300) ||
			r.Headers[1].Key != "b" || r.Headers[1].Value != nil {
			t.Fatalf("record %d: headers %+v", i, r.Headers)
		}
	}
	batches, headers = pluginBatches(t, 3, false)
	records, err = decodeForPlugin(batches, headers, maxValidateDecompressed)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range records {
		if len(r.Headers) != 0 {
			t.Fatalf("record %d: headers %+v, want none", i, r.Headers)
		}
	}
}

// BenchmarkDecodeForPlugin: decoding a produce of 2 × 500 records for a
// validator, the work the produce path adds for a topic with a plugin.
func BenchmarkDecodeForPlugin(b *testing.B) {
	for _, withHeaders := range []bool{false, true} {
		b.Run(fmt.Sprintf("headers=%v", withHeaders), func(b *testing.B) {
			batches, headers := pluginBatches(b, 500, withHeaders)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeForPlugin(batches, headers, maxValidateDecompressed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
