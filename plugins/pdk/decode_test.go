package pdk

import (
	"bytes"
	"testing"

	"github.com/eddybroker/eddy/plugins/abi"
)

func sampleBatch() []abi.Record {
	return []abi.Record{
		{OffsetDelta: 0, Timestamp: 1700000000000, Key: []byte("k1"), Value: []byte("v1")},
		{OffsetDelta: 1, Timestamp: -1, Key: nil, Value: nil},
		{OffsetDelta: 2, Timestamp: 5, Key: []byte{}, Value: []byte{}, Headers: []abi.Header{
			{Key: "a", Value: []byte("1")},
			{Key: "", Value: nil},
			{Key: "a", Value: []byte{}},
		}},
	}
}

// readAll decodes block with pdk's reader into abi records, copying.
func readAll(block []byte) ([]abi.Record, error) {
	var b batchReader
	if err := b.reset(block); err != nil {
		return nil, err
	}
	var out []abi.Record
	var r Record
	for b.next(&r) {
		ar := abi.Record{OffsetDelta: r.OffsetDelta, Timestamp: r.Timestamp, Key: clone(r.Key), Value: clone(r.Value)}
		for _, h := range r.Headers {
			ar.Headers = append(ar.Headers, abi.Header{Key: string(h.Key), Value: clone(h.Value)})
		}
		out = append(out, ar)
	}
	return out, b.done()
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func equalRecords(t *testing.T, got, want []abi.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.OffsetDelta != w.OffsetDelta || g.Timestamp != w.Timestamp ||
			!sameNullable(g.Key, w.Key) || !sameNullable(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: got %+v, want %+v", i, g, w)
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameNullable(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: got %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

func sameNullable(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestBatchReaderRoundTrip(t *testing.T) {
	want := sampleBatch()
	got, err := readAll(abi.AppendBatch(nil, want))
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, got, want)
}

func TestBatchReaderEmpty(t *testing.T) {
	got, err := readAll(abi.AppendBatch(nil, nil))
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no records, no error", got, err)
	}
}

func TestBatchReaderTruncated(t *testing.T) {
	block := abi.AppendBatch(nil, sampleBatch())
	for n := range len(block) {
		if _, err := readAll(block[:n]); err == nil {
			t.Errorf("%d of %d bytes: no error", n, len(block))
		}
	}
}

func TestBatchReaderTrailingBytes(t *testing.T) {
	block := append(abi.AppendBatch(nil, sampleBatch()), 0)
	if _, err := readAll(block); err == nil {
		t.Fatal("a trailing byte was accepted")
	}
}

func TestBatchReaderHugeCount(t *testing.T) {
	block := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	if _, err := readAll(block); err == nil {
		t.Fatal("a count of 2^32-1 in 8 bytes was accepted")
	}
}

// FuzzBatchReader checks pdk's reader against abi.BatchReader: the same
// records from any block both accept, and no panic on any input.
func FuzzBatchReader(f *testing.F) {
	f.Add(abi.AppendBatch(nil, sampleBatch()))
	f.Add(abi.AppendBatch(nil, nil))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, block []byte) {
		got, err := readAll(block)
		ar, aerr := abi.NewBatchReader(block)
		var want []abi.Record
		if aerr == nil {
			var r abi.Record
			for ar.Next(&r) {
				c := r
				c.Headers = append([]abi.Header(nil), r.Headers...)
				want = append(want, c)
			}
			aerr = ar.Err()
		}
		if err != nil {
			return // stricter than abi on counts and trailing bytes
		}
		if aerr != nil {
			t.Fatalf("pdk accepted a block abi rejects (%v)", aerr)
		}
		equalRecords(t, got, want)
	})
}
