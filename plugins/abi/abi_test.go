package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func sampleRecords() []Record {
	return []Record{
		{OffsetDelta: 0, Timestamp: 1_700_000_000_000, Key: []byte("k"), Value: []byte("v")},
		{OffsetDelta: 1, Timestamp: -1, Key: nil, Value: nil},
		{OffsetDelta: 2, Key: []byte{}, Value: []byte{}},
		{OffsetDelta: 3, Key: []byte("key"), Value: bytes.Repeat([]byte("x"), 300), Headers: []Header{
			{Key: "a", Value: []byte("1")},
			{Key: "", Value: nil},
			{Key: "c", Value: []byte{}},
		}},
	}
}

func readAll(t testing.TB, block []byte) ([]Record, error) {
	t.Helper()
	br, err := NewBatchReader(block)
	if err != nil {
		return nil, err
	}
	var out []Record
	for {
		var r Record
		if !br.Next(&r) {
			break
		}
		out = append(out, r)
	}
	if br.Err() == nil && len(out) != br.Count() {
		t.Fatalf("read %d records of %d without an error", len(out), br.Count())
	}
	return out, br.Err()
}

func equalRecords(a, b []Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.OffsetDelta != y.OffsetDelta || x.Timestamp != y.Timestamp ||
			!equalNullable(x.Key, y.Key) || !equalNullable(x.Value, y.Value) || len(x.Headers) != len(y.Headers) {
			return false
		}
		for j := range x.Headers {
			if x.Headers[j].Key != y.Headers[j].Key || !equalNullable(x.Headers[j].Value, y.Headers[j].Value) {
				return false
			}
		}
	}
	return true
}

// equalNullable tells null (nil) from empty.
func equalNullable(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestBatchRoundTrip(t *testing.T) {
	rs := sampleRecords()
	block := AppendBatch([]byte("prefix"), rs)[len("prefix"):]
	got, err := readAll(t, block)
	if err != nil {
		t.Fatal(err)
	}
	if !equalRecords(got, rs) {
		t.Fatalf("got %+v, want %+v", got, rs)
	}
	if got[1].Key != nil || got[2].Key == nil {
		t.Fatal("null and empty keys must stay apart")
	}

	empty := AppendBatch(nil, nil)
	if got, err := readAll(t, empty); err != nil || len(got) != 0 {
		t.Fatalf("empty batch: %v, %v", got, err)
	}
}

func TestBatchTruncated(t *testing.T) {
	block := AppendBatch(nil, sampleRecords())
	for n := range len(block) {
		if _, err := readAll(t, block[:n]); !errors.Is(err, ErrShort) {
			t.Fatalf("batch cut to %d of %d bytes: err %v, want ErrShort", n, len(block), err)
		}
	}
}

func TestBatchHugeCounts(t *testing.T) {
	// A header count that cannot fit is refused before any allocation.
	block := binary.LittleEndian.AppendUint32(nil, 1)
	block = AppendRecord(block, Record{})
	binary.LittleEndian.PutUint32(block[len(block)-4:], 0xFFFFFFFF)
	if _, err := readAll(t, block); !errors.Is(err, ErrShort) {
		t.Fatalf("err %v, want ErrShort", err)
	}
}

func TestVerdicts(t *testing.T) {
	vs := []Verdict{{}, {Reject: true, Code: 7, Reason: "too long"}, {}, {Reject: true, Code: 1}}
	block := AppendVerdicts(nil, vs)
	got, err := ParseVerdicts(block, len(vs), 100)
	if err != nil {
		t.Fatal(err)
	}
	if !equalVerdicts(got, vs) {
		t.Fatalf("got %+v, want %+v", got, vs)
	}
	cut, err := ParseVerdicts(block, len(vs), 3)
	if err != nil || cut[1].Reason != "too" {
		t.Fatalf("reason cut to 3: %+v, %v", cut, err)
	}
	for n := range len(block) {
		if _, err := ParseVerdicts(block[:n], len(vs), 100); err == nil {
			t.Fatalf("verdicts cut to %d of %d bytes parsed", n, len(block))
		}
	}
	if _, err := ParseVerdicts(block, 3, 100); err == nil || !strings.Contains(err.Error(), "4 verdicts for 3 records") {
		t.Fatalf("count mismatch: %v", err)
	}
	bad := bytes.Clone(block)
	bad[4] = 2
	if _, err := ParseVerdicts(bad, 4, 100); err == nil {
		t.Fatal("verdict byte 2 parsed")
	}
	// A reason for an accepted record, or past the batch.
	for _, idx := range []uint32{0, 4, 0xFFFFFFFF} {
		bad := AppendVerdicts(nil, []Verdict{{}, {Reject: true}})
		binary.LittleEndian.PutUint32(bad[4+2:], idx)
		if _, err := ParseVerdicts(bad, 2, 100); err == nil {
			t.Fatalf("reason for record %d parsed", idx)
		}
	}
}

func equalVerdicts(a, b []Verdict) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPartitions(t *testing.T) {
	block := AppendPartitions(nil, []int32{0, 3, 1})
	got, err := ParsePartitions(block, 3, 4)
	if err != nil || len(got) != 3 || got[1] != 3 {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := ParsePartitions(block, 3, 3); err == nil {
		t.Fatal("partition 3 of 3 parsed")
	}
	if _, err := ParsePartitions(AppendPartitions(nil, []int32{-1}), 1, 3); err == nil {
		t.Fatal("partition -1 parsed")
	}
	if _, err := ParsePartitions(block, 2, 4); err == nil {
		t.Fatal("3 partitions for 2 records parsed")
	}
	for n := range len(block) {
		if _, err := ParsePartitions(block[:n], 3, 4); err == nil {
			t.Fatalf("partitions cut to %d bytes parsed", n)
		}
	}
}

func TestExpired(t *testing.T) {
	block := AppendExpired(nil, []bool{true, false, true})
	got, err := ParseExpired(block, 3)
	if err != nil || !got[0] || got[1] || !got[2] {
		t.Fatalf("got %v, %v", got, err)
	}
	for n := range len(block) {
		if _, err := ParseExpired(block[:n], 3); err == nil {
			t.Fatalf("retention answer cut to %d bytes parsed", n)
		}
	}
	bad := bytes.Clone(block)
	bad[5] = 2
	if _, err := ParseExpired(bad, 3); err == nil {
		t.Fatal("flag 2 parsed")
	}
}

func TestRetainInput(t *testing.T) {
	rs := sampleRecords()
	block := AppendRetainInput(nil, 1234, rs)
	now, batch, err := SplitRetainInput(block)
	if err != nil || now != 1234 {
		t.Fatalf("now %d, %v", now, err)
	}
	got, err := readAll(t, batch)
	if err != nil || !equalRecords(got, rs) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, _, err := SplitRetainInput(block[:7]); !errors.Is(err, ErrShort) {
		t.Fatalf("short: %v", err)
	}
}

func TestConfig(t *testing.T) {
	cfg := map[string]string{"a": "1", "empty": "", "": "no key"}
	block := AppendConfig(nil, []string{"", "a", "empty"}, cfg)
	got, err := ParseConfig(block)
	if err != nil || len(got) != 3 || got["a"] != "1" || got[""] != "no key" {
		t.Fatalf("got %v, %v", got, err)
	}
	for n := range len(block) {
		if _, err := ParseConfig(block[:n]); err == nil {
			t.Fatalf("config cut to %d bytes parsed", n)
		}
	}
}

func TestPackResult(t *testing.T) {
	for _, tc := range []struct{ ptr, n uint32 }{{0, 0}, {65536, 12}, {1<<31 - 1, 0xFFFFFFFF}} {
		ptr, n, status := UnpackResult(PackResult(tc.ptr, tc.n))
		if ptr != tc.ptr || n != tc.n || status != StatusOK {
			t.Fatalf("%v: got %d, %d, %d", tc, ptr, n, status)
		}
	}
	if _, _, status := UnpackResult(StatusPanic); status != StatusPanic {
		t.Fatalf("status %d", status)
	}
	// The limit of the packing: a pointer at or above 2 GiB makes the i64
	// negative, so it reads as a status. Hosts keep guest memory under
	// 2 GiB.
	if _, _, status := UnpackResult(PackResult(1<<31, 8)); status == StatusOK {
		t.Fatal("a pointer at 2 GiB unpacked as a pointer")
	}
}

func TestStatusText(t *testing.T) {
	for code := int32(StatusInitFailed); code <= StatusOK; code++ {
		if strings.HasPrefix(StatusText(code), "status ") {
			t.Fatalf("status %d has no name", code)
		}
	}
	if StatusText(-99) != "status -99" {
		t.Fatal(StatusText(-99))
	}
}

// FuzzBatchReader: any block reads without panicking, and a block that
// reads fully is the canonical encoding of what was read.
func FuzzBatchReader(f *testing.F) {
	f.Add(AppendBatch(nil, sampleRecords()))
	f.Add(AppendBatch(nil, nil))
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0})
	f.Fuzz(func(t *testing.T, block []byte) {
		rs, err := readAll(t, block)
		if err != nil {
			return
		}
		again := AppendBatch(nil, rs)
		if !bytes.Equal(again, block[:len(again)]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, block[:len(again)])
		}
	})
}

// FuzzParseVerdicts: any block parses or fails without panicking; what
// parses has the asked-for count and cut reasons, and survives a round
// trip.
func FuzzParseVerdicts(f *testing.F) {
	f.Add(AppendVerdicts(nil, []Verdict{{}, {Reject: true, Code: 3, Reason: "no"}}), 2, 10)
	f.Add(AppendVerdicts(nil, nil), 0, 0)
	f.Add([]byte{2, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 2, 5)
	f.Fuzz(func(t *testing.T, block []byte, want, maxReason int) {
		if want < 0 || want > 1<<16 || maxReason < 0 {
			return
		}
		vs, err := ParseVerdicts(block, want, maxReason)
		if err != nil {
			return
		}
		if len(vs) != want {
			t.Fatalf("%d verdicts for %d records", len(vs), want)
		}
		for i, v := range vs {
			if len(v.Reason) > maxReason {
				t.Fatalf("reason %d is %d bytes, max %d", i, len(v.Reason), maxReason)
			}
			if !v.Reject && (v.Code != 0 || v.Reason != "") {
				t.Fatalf("accepted record %d has a reason", i)
			}
		}
		again, err := ParseVerdicts(AppendVerdicts(nil, vs), want, maxReason)
		if err != nil || !equalVerdicts(again, vs) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, vs)
		}
	})
}

func FuzzParsePartitions(f *testing.F) {
	f.Add(AppendPartitions(nil, []int32{0, 1, 2}), 3, int32(3))
	f.Fuzz(func(t *testing.T, block []byte, want int, partitions int32) {
		if want < 0 || want > 1<<16 {
			return
		}
		ps, err := ParsePartitions(block, want, partitions)
		if err != nil {
			return
		}
		if len(ps) != want {
			t.Fatalf("%d partitions for %d records", len(ps), want)
		}
		for _, p := range ps {
			if p < 0 || p >= partitions {
				t.Fatalf("partition %d of %d", p, partitions)
			}
		}
	})
}

func FuzzParseExpired(f *testing.F) {
	f.Add(AppendExpired(nil, []bool{true, false}), 2)
	f.Fuzz(func(t *testing.T, block []byte, want int) {
		if want < 0 || want > 1<<16 {
			return
		}
		es, err := ParseExpired(block, want)
		if err == nil && len(es) != want {
			t.Fatalf("%d flags for %d records", len(es), want)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add(AppendConfig(nil, []string{"a", "b"}, map[string]string{"a": "1", "b": ""}))
	f.Fuzz(func(t *testing.T, block []byte) {
		cfg, err := ParseConfig(block)
		if err != nil {
			return
		}
		keys := make([]string, 0, len(cfg))
		for k := range cfg {
			keys = append(keys, k)
		}
		again, err := ParseConfig(AppendConfig(nil, keys, cfg))
		if err != nil || len(again) != len(cfg) {
			t.Fatalf("round trip: %v, %v; want %v", again, err, cfg)
		}
		for k, v := range cfg {
			if again[k] != v {
				t.Fatalf("key %q: %q, want %q", k, again[k], v)
			}
		}
	})
}
