package fsm

import (
	"bytes"
	"errors"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

func idemEntry(index uint64, pid int64, epoch int16, seq int32, n int) sm.Entry {
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = []byte{byte(seq), byte(i)}
	}
	return sm.Entry{Index: index, Cmd: EncodeAppend(nil, AppendCommand{LeaderEpoch: 1, AppendTimeMs: 5000, Batches: partlogtest.Idempotent(pid, epoch, seq, 1000, vals...)})}
}

func result(t *testing.T, e sm.Entry) (int64, int) {
	t.Helper()
	v, err := DecodeResult(e.Result.Value, e.Result.Data)
	var ce *CommandError
	if errors.As(err, &ce) {
		return -1, ce.Code
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, 0
}

func TestIdempotentSequences(t *testing.T) {
	p, _ := openPartition(t, t.TempDir())
	tests := []struct {
		name     string
		entry    sm.Entry
		wantBase int64
		wantCode int
	}{
		{"first batch", idemEntry(1, 7, 0, 0, 3), 0, 0},
		{"next batch", idemEntry(2, 7, 0, 3, 2), 3, 0},
		{"retry of the first is a duplicate", idemEntry(3, 7, 0, 0, 3), 0, 0},
		{"retry of the second is a duplicate", idemEntry(4, 7, 0, 3, 2), 3, 0},
		{"a gap is out of order", idemEntry(5, 7, 0, 9, 1), -1, CodeOutOfOrderSequence},
		{"another producer is independent", idemEntry(6, 8, 0, 0, 1), 5, 0},
		{"unknown producer not at 0", idemEntry(7, 9, 0, 4, 1), -1, CodeUnknownProducerID},
		{"new epoch starts at 0", idemEntry(8, 7, 1, 0, 1), 6, 0},
		{"old epoch is fenced", idemEntry(9, 7, 0, 5, 1), -1, CodeInvalidProducerEpoch},
		{"new epoch must start at 0", idemEntry(10, 7, 2, 3, 1), -1, CodeOutOfOrderSequence},
	}
	for _, tt := range tests {
		out := apply(t, p, tt.entry)
		base, code := result(t, out[0])
		if base != tt.wantBase || code != tt.wantCode {
			t.Fatalf("%s: base %d code %d, want %d and %d", tt.name, base, code, tt.wantBase, tt.wantCode)
		}
	}
	if l, _ := p.Log(); l.EndOffset() != 7 {
		t.Fatalf("log end %d, want 7: duplicates and refusals must not be written", l.EndOffset())
	}
}

// TestIdempotenceSurvivesRestartAndSnapshot: producer state is in the
// checkpoint and the snapshot, so a duplicate after a restart or on a
// replica restored from a snapshot is still recognised.
func TestIdempotenceSurvivesRestartAndSnapshot(t *testing.T) {
	dir := t.TempDir()
	p, _ := openPartition(t, dir)
	apply(t, p, idemEntry(1, 42, 0, 0, 4), idemEntry(2, 42, 0, 4, 4))
	if err := p.Close(); err != nil { // checkpoints
		t.Fatal(err)
	}
	p2, _ := openPartition(t, dir)
	if base, code := result(t, apply(t, p2, idemEntry(3, 42, 0, 4, 4))[0]); base != 4 || code != 0 {
		t.Fatalf("duplicate after restart: base %d code %d", base, code)
	}
	// A crash after the checkpoint: replaying rebuilds the same state.
	apply(t, p2, idemEntry(4, 42, 0, 8, 1))
	ctx, err := p2.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p2.SaveSnapshot(ctx, &buf, make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	p3, _ := openPartition(t, t.TempDir())
	if err := p3.RecoverFromSnapshot(&buf, make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if base, code := result(t, apply(t, p3, idemEntry(5, 42, 0, 8, 1))[0]); base != 8 || code != 0 {
		t.Fatalf("duplicate on a replica restored from a snapshot: base %d code %d", base, code)
	}
	if base, code := result(t, apply(t, p3, idemEntry(6, 42, 0, 9, 1))[0]); base != 9 || code != 0 {
		t.Fatalf("next batch on the restored replica: base %d code %d", base, code)
	}
}
