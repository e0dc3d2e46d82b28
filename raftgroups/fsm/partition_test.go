package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/raftgroups/partlog"
	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

func openPartition(t *testing.T, dir string) (*Partition, uint64) {
	t.Helper()
	p := NewPartition(PartitionConfig{Dir: dir, Logger: zerolog.Nop()})
	idx, err := p.Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, idx
}

// appendEntry is a committed append of one batch of n records.
func appendEntry(index uint64, epoch int32, n int) sm.Entry {
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = []byte(fmt.Sprintf("r%d-%d", index, i))
	}
	cmd := EncodeAppend(nil, AppendCommand{LeaderEpoch: epoch, AppendTimeMs: 1000 + int64(index), Batches: partlogtest.Values(1000, vals...)})
	return sm.Entry{Index: index, Cmd: cmd}
}

func apply(t *testing.T, p *Partition, entries ...sm.Entry) []sm.Entry {
	t.Helper()
	out, err := p.Update(entries)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readAllBytes returns the whole log's bytes from its start.
func readAllBytes(t *testing.T, p *Partition) []byte {
	t.Helper()
	l, err := p.Log()
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Read(l.StartOffset(), 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPartitionAssignsOffsetsInOrder(t *testing.T) {
	p, idx := openPartition(t, t.TempDir())
	if idx != 0 {
		t.Fatalf("fresh partition opened at index %d", idx)
	}
	out := apply(t, p, appendEntry(1, 3, 2), appendEntry(2, 3, 5), appendEntry(3, 4, 1))
	for i, want := range []int64{0, 2, 7} {
		got, err := DecodeResult(out[i].Result.Value, out[i].Result.Data)
		if err != nil || got != want {
			t.Fatalf("entry %d: base offset %d (%v), want %d", i, got, err, want)
		}
	}
	if e, off := p.EndOffsetForEpoch(3); e != 3 || off != 7 {
		t.Fatalf("end of epoch 3: (%d, %d), want (3, 7)", e, off)
	}
	// A stale leader's epoch never moves epochs backwards.
	apply(t, p, appendEntry(4, 2, 1))
	if got := p.EpochAt(8); got != 4 {
		t.Fatalf("epoch at offset 8 is %d, want 4", got)
	}
}

func TestPartitionRefusesBadCommands(t *testing.T) {
	p, _ := openPartition(t, t.TempDir())
	apply(t, p, appendEntry(1, 1, 3))
	out := apply(t, p,
		sm.Entry{Index: 2, Cmd: nil},
		sm.Entry{Index: 3, Cmd: []byte{99}},
		sm.Entry{Index: 4, Cmd: EncodeAppend(nil, AppendCommand{Batches: []byte("not a batch")})},
		sm.Entry{Index: 5, Cmd: EncodeAdvanceStart(10)},
	)
	for i, wantCode := range []int{CodeMalformed, CodeMalformed, CodeMalformed, CodeOffsetOutOfRange} {
		_, err := DecodeResult(out[i].Result.Value, out[i].Result.Data)
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Code != wantCode {
			t.Fatalf("entry %d: %v, want code %d", i, err, wantCode)
		}
	}
	if l, _ := p.Log(); l.EndOffset() != 3 {
		t.Fatalf("refused commands changed the log: end %d", l.EndOffset())
	}
	if p.Applied() != 5 {
		t.Fatalf("applied index %d, want 5: refusals still advance it", p.Applied())
	}
}

// TestPartitionReopenCutsBackToCheckpoint: what was applied after the last
// Sync is cut on reopen, and replaying the same entries rebuilds the same
// bytes; Dragonboat does exactly this after a crash.
func TestPartitionReopenCutsBackToCheckpoint(t *testing.T) {
	dir := t.TempDir()
	p, _ := openPartition(t, dir)
	entries := []sm.Entry{appendEntry(1, 1, 4), appendEntry(2, 1, 4), appendEntry(3, 2, 4), appendEntry(4, 2, 4)}
	apply(t, p, entries[:2]...)
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	apply(t, p, entries[2:]...)
	want := readAllBytes(t, p)
	// A crash: the log is abandoned without Close, which would checkpoint.
	l, _ := p.Log()
	l.Close()

	p2, idx := openPartition(t, dir)
	if idx != 2 {
		t.Fatalf("reopened at index %d, want the checkpoint's 2", idx)
	}
	if l, _ := p2.Log(); l.EndOffset() != 8 {
		t.Fatalf("reopened log ends at %d, want 8", l.EndOffset())
	}
	apply(t, p2, entries[2:]...)
	if got := readAllBytes(t, p2); !bytes.Equal(got, want) {
		t.Fatal("replaying the entries after the checkpoint did not rebuild identical bytes")
	}
	if e, off := p2.EndOffsetForEpoch(1); e != 1 || off != 8 {
		t.Fatalf("epoch cache after replay: (%d, %d)", e, off)
	}
}

// TestPartitionReopenAfterRetentionPastCheckpoint: retention deleted the
// segments after the checkpoint; reopening must still cut back cleanly.
func TestPartitionReopenAfterRetentionPastCheckpoint(t *testing.T) {
	dir := t.TempDir()
	p, _ := openPartition(t, dir)
	apply(t, p, appendEntry(1, 1, 3))
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	apply(t, p, appendEntry(2, 1, 3), sm.Entry{Index: 3, Cmd: EncodeAdvanceStart(6)})
	l, _ := p.Log() // crash: no checkpointing Close
	l.Close()
	p2, idx := openPartition(t, dir)
	if idx != 1 {
		t.Fatalf("reopened at %d", idx)
	}
	apply(t, p2, appendEntry(2, 1, 3), sm.Entry{Index: 3, Cmd: EncodeAdvanceStart(6)})
	l, _ = p2.Log()
	if l.StartOffset() != 6 || l.EndOffset() != 6 {
		t.Fatalf("after replay: start %d end %d, want 6 and 6", l.StartOffset(), l.EndOffset())
	}
}

func TestPartitionSnapshotRoundTrip(t *testing.T) {
	src, _ := openPartition(t, t.TempDir())
	apply(t, src, appendEntry(1, 1, 10), appendEntry(2, 2, 10), sm.Entry{Index: 3, Cmd: EncodeAdvanceStart(5)}, appendEntry(4, 3, 1))
	ctx, err := src.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Appends after PrepareSnapshot are not part of the snapshot.
	apply(t, src, appendEntry(5, 3, 7))
	var buf bytes.Buffer
	if err := src.SaveSnapshot(ctx, &buf, make(chan struct{})); err != nil {
		t.Fatal(err)
	}

	dst, _ := openPartition(t, t.TempDir())
	apply(t, dst, appendEntry(1, 1, 99)) // state to be replaced
	if err := dst.RecoverFromSnapshot(bytes.NewReader(buf.Bytes()), make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if cp, ok, err := readCheckpoint(dst.cfg.Dir); err != nil || !ok || cp.Index != 4 {
		t.Fatalf("recovery checkpoint: %+v %v %v, want index 4", cp, ok, err)
	}
	l, _ := dst.Log()
	if l.StartOffset() != 5 || l.EndOffset() != 21 || dst.Applied() != 4 {
		t.Fatalf("recovered start %d end %d applied %d, want 5, 21, 4", l.StartOffset(), l.EndOffset(), dst.Applied())
	}
	if e, off := dst.EndOffsetForEpoch(2); e != 2 || off != 20 {
		t.Fatalf("recovered epochs: end of epoch 2 is (%d, %d)", e, off)
	}
	// The recovered replica continues identically from the snapshot.
	apply(t, dst, appendEntry(5, 3, 7))
	if got, want := readAllBytes(t, dst), readAllBytes(t, src); !bytes.Equal(got, want) {
		t.Fatal("replica recovered from the snapshot differs from its source after the same entry")
	}
	dst.Close()
	if _, idx := openPartition(t, dst.cfg.Dir); idx != 5 {
		t.Fatalf("reopened recovered replica at index %d, want 5", idx)
	}
	if _, err := dst.Log(); !errors.Is(err, ErrPartitionClosed) {
		t.Fatalf("closed partition: %v", err)
	}
}

func TestPartitionCorruptCheckpointIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := writeFileAtomic(dir+"/"+checkpointFile, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	p := NewPartition(PartitionConfig{Dir: dir, Log: partlog.Config{}, Logger: zerolog.Nop()})
	if _, err := p.Open(nil); err == nil {
		t.Fatal("opened with a corrupt checkpoint")
	}
}

func TestPartitionCloseCheckpoints(t *testing.T) {
	dir := t.TempDir()
	p, _ := openPartition(t, dir)
	apply(t, p, appendEntry(1, 1, 2), appendEntry(2, 1, 2))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, idx := openPartition(t, dir); idx != 2 {
		t.Fatalf("reopened after a clean close at index %d, want 2 (nothing to replay)", idx)
	}
}
