package pdk

import (
	"errors"
	"strings"
	"testing"

	"github.com/eddybroker/eddy/plugins/abi"
)

// withHandlers clears the registered handlers for one test.
func withHandlers(t *testing.T) {
	t.Helper()
	saved := handlers
	handlers.init, handlers.validate, handlers.partition, handlers.retain = nil, nil, nil, nil
	t.Cleanup(func() { handlers = saved })
}

// put writes in into the input buffer and returns its length.
func put(t testing.TB, in []byte) int32 {
	t.Helper()
	buf := inputBuffer(int32(len(in)))
	if len(buf) < len(in) {
		t.Fatalf("input buffer of %d bytes for %d", len(buf), len(in))
	}
	copy(buf, in)
	return int32(len(in))
}

func wantStatus(t *testing.T, got, want int32, msgPart string) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d (%s), want %d (%s); last error %q", got, abi.StatusText(got), want, abi.StatusText(want), lastError())
	}
	if !strings.Contains(string(lastError()), msgPart) {
		t.Fatalf("last error %q does not mention %q", lastError(), msgPart)
	}
}

func TestInputBuffer(t *testing.T) {
	if inputBuffer(-1) != nil {
		t.Error("a negative size got a buffer")
	}
	if inputBuffer(maxInput+1) != nil {
		t.Error("a size over maxInput got a buffer")
	}
	small := inputBuffer(0)
	if len(small) < minInput {
		t.Errorf("got %d bytes, want at least %d", len(small), minInput)
	}
	big := inputBuffer(minInput*3 + 1)
	if len(big) < minInput*3+1 {
		t.Errorf("got %d bytes, want at least %d", len(big), minInput*3+1)
	}
	if again := inputBuffer(10); &again[0] != &big[0] {
		t.Error("a smaller request reallocated the buffer")
	}
}

func TestNoHook(t *testing.T) {
	withHandlers(t)
	n := put(t, abi.AppendBatch(nil, nil))
	_, st := validateBatch(n)
	wantStatus(t, st, abi.StatusNoHook, "validate")
	_, st = partitionBatch(n, 3)
	wantStatus(t, st, abi.StatusNoHook, "partition")
	_, st = retainRecords(put(t, abi.AppendRetainInput(nil, 0, nil)))
	wantStatus(t, st, abi.StatusNoHook, "retain")
	wantStatus(t, initPlugin(put(t, abi.AppendConfig(nil, nil, nil))), abi.StatusNoHook, "init")
}

func TestValidate(t *testing.T) {
	withHandlers(t)
	OnValidate(func(r Record) Verdict {
		if r.Value == nil {
			return Reject(7, "value: null")
		}
		if v, ok := r.Header("a"); ok && len(v) == 0 {
			return Reject(8, "header a: empty")
		}
		return Accept()
	})
	recs := sampleBatch()
	out, st := validateBatch(put(t, abi.AppendBatch(nil, recs)))
	wantStatus(t, st, abi.StatusOK, "")
	vs, err := abi.ParseVerdicts(out, len(recs), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []Verdict{{}, {Reject: true, Code: 7, Reason: "value: null"}, {Reject: true, Code: 8, Reason: "header a: empty"}}
	for i := range want {
		if vs[i] != want[i] {
			t.Errorf("record %d: got %+v, want %+v", i, vs[i], want[i])
		}
	}
}

func TestValidateBadInput(t *testing.T) {
	withHandlers(t)
	OnValidate(func(Record) Verdict { return Accept() })
	block := abi.AppendBatch(nil, sampleBatch())
	_, st := validateBatch(put(t, block[:len(block)-1]))
	wantStatus(t, st, abi.StatusBadInput, "record 2")
	_, st = validateBatch(int32(len(guest.input) + 1))
	wantStatus(t, st, abi.StatusBadInput, "outside")
	_, st = validateBatch(-1)
	wantStatus(t, st, abi.StatusBadInput, "outside")
}

func TestValidatePanic(t *testing.T) {
	withHandlers(t)
	OnValidate(func(r Record) Verdict {
		if r.Index == 1 {
			panic(errors.New("boom"))
		}
		return Accept()
	})
	_, st := validateBatch(put(t, abi.AppendBatch(nil, sampleBatch())))
	wantStatus(t, st, abi.StatusPanic, "validate: record 1: panic: boom")
	// The instance stays usable.
	OnValidate(func(Record) Verdict { return Accept() })
	_, st = validateBatch(put(t, abi.AppendBatch(nil, sampleBatch())))
	wantStatus(t, st, abi.StatusOK, "")
}

func TestPartition(t *testing.T) {
	withHandlers(t)
	OnPartition(func(r Record, n int) int { return int(r.OffsetDelta) % n })
	recs := sampleBatch()
	out, st := partitionBatch(put(t, abi.AppendBatch(nil, recs)), 2)
	wantStatus(t, st, abi.StatusOK, "")
	ps, err := abi.ParsePartitions(out, len(recs), 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{0, 1, 0}; ps[0] != want[0] || ps[1] != want[1] || ps[2] != want[2] {
		t.Fatalf("got %v, want %v", ps, want)
	}
	_, st = partitionBatch(put(t, abi.AppendBatch(nil, recs)), 0)
	wantStatus(t, st, abi.StatusBadInput, "0 partitions")

	OnPartition(func(Record, int) int { return 5 })
	_, st = partitionBatch(put(t, abi.AppendBatch(nil, recs)), 2)
	wantStatus(t, st, abi.StatusHandlerError, "record 0: handler chose partition 5 of 2")
}

func TestRetain(t *testing.T) {
	withHandlers(t)
	var sawNow int64
	OnRetain(func(r Record, now int64) bool {
		sawNow = now
		return r.Timestamp < 0
	})
	recs := sampleBatch()
	out, st := retainRecords(put(t, abi.AppendRetainInput(nil, 42, recs)))
	wantStatus(t, st, abi.StatusOK, "")
	es, err := abi.ParseExpired(out, len(recs))
	if err != nil {
		t.Fatal(err)
	}
	if es[0] || !es[1] || es[2] || sawNow != 42 {
		t.Fatalf("got %v now %d, want [false true false] now 42", es, sawNow)
	}
	_, st = retainRecords(put(t, []byte{1, 2, 3}))
	wantStatus(t, st, abi.StatusBadInput, "retain")
}

func TestInit(t *testing.T) {
	withHandlers(t)
	var got Config
	OnInit(func(c Config) error {
		got = c
		if _, err := c.Required("x"); err != nil {
			return err
		}
		return c.CheckKeys("x", "y")
	})
	cfg := map[string]string{"x": "1", "y": ""}
	wantStatus(t, initPlugin(put(t, abi.AppendConfig(nil, []string{"x", "y"}, cfg))), abi.StatusOK, "")
	if got["x"] != "1" || len(got) != 2 {
		t.Fatalf("got config %v, want %v", got, cfg)
	}
	wantStatus(t, initPlugin(put(t, abi.AppendConfig(nil, []string{"y"}, cfg))), abi.StatusInitFailed, `"x" is required`)
	cfg["z"] = "typo"
	wantStatus(t, initPlugin(put(t, abi.AppendConfig(nil, []string{"x", "z"}, cfg))), abi.StatusInitFailed, `unknown key "z"`)
	wantStatus(t, initPlugin(put(t, []byte{9, 0, 0, 0})), abi.StatusBadInput, "config")

	OnInit(func(Config) error { panic("init boom") })
	wantStatus(t, initPlugin(put(t, abi.AppendConfig(nil, nil, nil))), abi.StatusPanic, "init boom")
}

// TestNoAllocPerRecord: with handlers that do not allocate, a call
// allocates nothing once the buffers have grown.
func TestNoAllocPerRecord(t *testing.T) {
	withHandlers(t)
	OnValidate(func(r Record) Verdict {
		if _, ok := r.Header("a"); ok {
			return Accept()
		}
		return Accept()
	})
	OnPartition(func(r Record, n int) int { return len(r.Key) % n })
	OnRetain(func(r Record, now int64) bool { return r.Timestamp < now })
	recs := make([]abi.Record, 0, 1000)
	for range 333 {
		recs = append(recs, sampleBatch()...)
	}
	batch := abi.AppendBatch(nil, recs)
	retain := abi.AppendRetainInput(nil, 1, recs)
	for name, f := range map[string]func(){
		"validate":  func() { validateBatch(put(t, batch)) },
		"partition": func() { partitionBatch(put(t, batch), 3) },
		"retain":    func() { retainRecords(put(t, retain)) },
	} {
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("%s: %v allocations per call of %d records, want 0", name, n, len(recs))
		}
	}
}

func BenchmarkValidate1000x1KiB(b *testing.B) {
	saved := handlers
	defer func() { handlers = saved }()
	OnValidate(func(r Record) Verdict {
		if len(r.Value) == 0 {
			return Reject(1, "empty")
		}
		return Accept()
	})
	recs := make([]abi.Record, 1000)
	for i := range recs {
		recs[i] = abi.Record{OffsetDelta: int64(i), Key: []byte("key"), Value: make([]byte, 1024),
			Headers: []abi.Header{{Key: "h", Value: []byte("v")}}}
	}
	batch := abi.AppendBatch(nil, recs)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, st := validateBatch(put(b, batch)); st != abi.StatusOK {
			b.Fatal(abi.StatusText(st))
		}
	}
}

func TestLongReasonIsCut(t *testing.T) {
	withHandlers(t)
	long := "a" + strings.Repeat("é", maxReason) // the cut at maxReason falls inside an é
	OnValidate(func(Record) Verdict { return Reject(1, long) })
	recs := make([]abi.Record, 1000)
	out, st := validateBatch(put(t, abi.AppendBatch(nil, recs)))
	wantStatus(t, st, abi.StatusOK, "")
	if len(out) > 1<<20 {
		t.Errorf("1,000 rejections take %d bytes, over the host's 1 MiB", len(out))
	}
	vs, err := abi.ParseVerdicts(out, len(recs), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if r := vs[0].Reason; r != long[:maxReason-1] {
		t.Errorf("reason cut to %d bytes, want %d (the rune boundary before %d)", len(r), maxReason-1, maxReason)
	}
}

func TestLongErrorIsCut(t *testing.T) {
	withHandlers(t)
	OnValidate(func(Record) Verdict { panic(strings.Repeat("x", 10*maxLastError)) })
	_, st := validateBatch(put(t, abi.AppendBatch(nil, sampleBatch())))
	wantStatus(t, st, abi.StatusPanic, "panic: xxx")
	if n := len(lastError()); n != maxLastError {
		t.Errorf("last error of %d bytes, want %d", n, maxLastError)
	}
}
