package fsm

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/rs/zerolog"

	"github.com/eddybroker/eddy/raftgroups/partlog"
)

// ErrPartitionClosed is returned by reads of a replica that was stopped.
var ErrPartitionClosed = errors.New("fsm: partition replica closed")

// PartitionConfig configures one partition replica's state machine.
type PartitionConfig struct {
	// Dir holds the replica: the segment files under log/ and checkpoint.json.
	Dir    string
	Log    partlog.Config
	Logger zerolog.Logger
}

// Partition is the state machine of one partition replica: an append-only
// partlog.Log whose offsets are assigned in Update, in Raft order, so every
// replica holds byte-identical batches at identical offsets.
//
// Update, Sync, PrepareSnapshot, RecoverFromSnapshot and Close are called
// by Dragonboat one at a time; the read methods (Log, Changed,
// EndOffsetForEpoch, …) may be called concurrently by fetch handlers.
type Partition struct {
	cfg PartitionConfig
	log atomic.Pointer[partlog.Log]

	// logCfg is the segment config to apply at the next Update; topic
	// configs change outside this shard's log, and segment boundaries are
	// local layout, not replicated state.
	logCfg atomic.Pointer[partlog.Config]

	mu        sync.Mutex // guards epochs, producers, applied, changed
	epochs    epochCache
	producers producers
	applied   uint64
	changed   chan struct{}
	closed    atomic.Bool
	// duplicates counts batches recognised as resends of written ones.
	duplicates atomic.Int64
}

var _ sm.IOnDiskStateMachine = (*Partition)(nil)

// NewPartition returns an unopened partition state machine; Dragonboat
// calls Open.
func NewPartition(cfg PartitionConfig) *Partition {
	return &Partition{cfg: cfg, changed: make(chan struct{})}
}

func (p *Partition) logDir() string { return filepath.Join(p.cfg.Dir, "log") }

// Open opens the log, cuts it back to the last checkpoint and returns the
// checkpoint's Raft index; Dragonboat replays every later entry.
func (p *Partition) Open(stopc <-chan struct{}) (uint64, error) {
	if err := os.MkdirAll(p.cfg.Dir, 0o755); err != nil {
		return 0, fmt.Errorf("open partition %s: %w", p.cfg.Dir, err)
	}
	cp, _, err := readCheckpoint(p.cfg.Dir)
	if err != nil {
		return 0, fmt.Errorf("open partition %s: %w", p.cfg.Dir, err)
	}
	l, err := partlog.Open(p.logDir(), p.cfg.Log, p.cfg.Logger)
	if err != nil {
		return 0, fmt.Errorf("open partition %s: %w", p.cfg.Dir, err)
	}
	if err := p.rollBackTo(l, cp); err != nil {
		l.Close()
		return 0, fmt.Errorf("open partition %s: %w", p.cfg.Dir, err)
	}
	partlog.CrashPoint("fsm.open.rolled-back")
	p.mu.Lock()
	p.epochs = cp.Epochs.clone()
	p.epochs.truncateFrom(cp.EndOffset)
	p.producers = cp.Producers.clone()
	if p.producers == nil {
		p.producers = producers{}
	}
	p.producers.truncate(cp.EndOffset)
	p.applied = cp.Index
	p.mu.Unlock()
	p.log.Store(l)
	return cp.Index, nil
}

// rollBackTo makes the log match checkpoint cp. Anything appended after the
// checkpoint is cut: Dragonboat replays those entries and Update rewrites
// them identically.
func (p *Partition) rollBackTo(l *partlog.Log, cp checkpoint) error {
	end := l.EndOffset()
	switch {
	case end < cp.EndOffset:
		return fmt.Errorf("log ends at offset %d but the checkpoint at raft index %d says %d: synced data is missing", end, cp.Index, cp.EndOffset)
	case end > cp.EndOffset:
		// When retention after the checkpoint already deleted the segments
		// the cut lands in, Truncate leaves an empty log at the checkpoint's
		// end; replay re-applies that retention, so the state is the same.
		if err := l.Truncate(cp.EndOffset); err != nil {
			return err
		}
		p.cfg.Logger.Info().Int64("from", cp.EndOffset).Int64("to", end).Uint64("index", cp.Index).
			Msg("cut partition log back to its checkpoint; raft replays the rest")
	}
	if cp.StartOffset > l.StartOffset() {
		if err := l.AdvanceStart(cp.StartOffset); err != nil {
			return err
		}
	}
	return nil
}

// Update applies committed commands in order. A command that cannot be
// applied is refused in its result; only storage failures are returned as
// errors (they stop the replica rather than let it diverge).
func (p *Partition) Update(entries []sm.Entry) ([]sm.Entry, error) {
	l := p.log.Load()
	if c := p.logCfg.Swap(nil); c != nil {
		if err := l.SetConfig(*c); err != nil {
			p.cfg.Logger.Warn().Err(err).Msg("ignoring invalid segment config")
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	partlog.CrashPoint("fsm.update.begin")
	for i := range entries {
		e := &entries[i]
		if len(e.Cmd) == 0 {
			e.Result = refused(CodeMalformed, "empty command")
			continue
		}
		var err error
		switch e.Cmd[0] {
		case kindAppend:
			e.Result, err = p.applyAppend(l, e.Cmd)
		case kindAdvanceStart:
			e.Result, err = p.applyAdvanceStart(l, e.Cmd)
		default:
			e.Result = refused(CodeMalformed, fmt.Sprintf("unknown command kind %d", e.Cmd[0]))
		}
		if err != nil {
			return nil, fmt.Errorf("partition %s at raft index %d: %w", p.cfg.Dir, e.Index, err)
		}
		partlog.CrashPoint("fsm.update.applied")
		if e.Index%expiryEvery == 0 {
			if cmd, err := decodeAppend(e.Cmd); err == nil {
				p.producers.expire(cmd.AppendTimeMs)
			}
		}
	}
	if n := len(entries); n > 0 {
		p.applied = entries[n-1].Index
	}
	close(p.changed)
	p.changed = make(chan struct{})
	return entries, nil
}

func refused(code int, msg string) sm.Result {
	return sm.Result{Value: resultFailed | uint64(code), Data: []byte(msg)}
}

func (p *Partition) applyAppend(l *partlog.Log, cmdBytes []byte) (sm.Result, error) {
	cmd, err := decodeAppend(cmdBytes)
	if err != nil {
		return refused(CodeMalformed, err.Error()), nil
	}
	// The leader validated every batch (CRC included) before proposing;
	// splitting again is cheap and keeps a bad entry from reaching disk.
	headers, err := splitBatches(cmd.Batches)
	if err != nil {
		return refused(CodeMalformed, err.Error()), nil
	}
	appendTime := int64(-1)
	if cmd.LogAppendTime {
		appendTime = cmd.AppendTimeMs
	}
	// Check every batch's sequence before writing any, on a scratch copy
	// when there are several: a refused command writes nothing.
	verdicts := make([]sequenceVerdict, len(headers))
	check := p.producers
	if len(headers) > 1 {
		check = p.producers.clone()
	}
	for i, h := range headers {
		v, cerr := check.check(h)
		if cerr != nil {
			return refused(cerr.Code, cerr.Message), nil
		}
		verdicts[i] = v
		if len(headers) > 1 && !v.duplicate {
			check.record(h, 0, cmd.AppendTimeMs)
		}
	}
	first := int64(-1)
	pos := 0
	for i, h := range headers {
		batch := cmd.Batches[pos : pos+h.Size()]
		pos += h.Size()
		base := verdicts[i].baseOffset
		if verdicts[i].duplicate {
			p.duplicates.Add(1)
		} else {
			epoch := p.epochs.assign(cmd.LeaderEpoch, l.EndOffset())
			var err error
			if base, err = l.Append(batch, epoch, appendTime, cmd.AppendTimeMs); err != nil {
				return sm.Result{}, err
			}
			p.producers.record(h, base, cmd.AppendTimeMs)
		}
		if first < 0 {
			first = base
		}
	}
	return sm.Result{Value: uint64(first)}, nil
}

// splitBatches frames the batches of an append command. The leader
// validated them (CRC included) before proposing, so headers suffice.
func splitBatches(b []byte) ([]partlog.BatchHeader, error) {
	var out []partlog.BatchHeader
	for len(b) > 0 {
		h, err := partlog.ParseBatchHeader(b)
		if err != nil {
			return nil, err
		}
		if h.Size() > len(b) {
			return nil, fmt.Errorf("%w: batch of %d bytes with %d left", partlog.ErrCorruptBatch, h.Size(), len(b))
		}
		out = append(out, h)
		b = b[h.Size():]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: append without batches", partlog.ErrCorruptBatch)
	}
	return out, nil
}

func (p *Partition) applyAdvanceStart(l *partlog.Log, cmdBytes []byte) (sm.Result, error) {
	off, err := decodeAdvanceStart(cmdBytes)
	if err != nil {
		return refused(CodeMalformed, err.Error()), nil
	}
	if off > l.EndOffset() {
		return refused(CodeOffsetOutOfRange, fmt.Sprintf("offset %d is beyond the log end %d", off, l.EndOffset())), nil
	}
	if off > l.StartOffset() {
		if err := l.AdvanceStart(off); err != nil {
			return sm.Result{}, err
		}
	}
	// Even when the log start is there already: after a crash the start
	// is durable ahead of the checkpointed epochs, and replaying this
	// command must trim them as it did on the replicas that did not crash.
	p.epochs.trimBefore(off)
	return sm.Result{Value: uint64(l.StartOffset())}, nil
}

// Lookup is unused: readers use Log directly, which is cheaper than an
// interface round trip per fetch.
func (p *Partition) Lookup(any) (any, error) {
	return nil, errors.New("fsm: partition has no lookup queries; read Log() instead")
}

// Sync makes everything applied so far durable and records it in the
// checkpoint. Dragonboat calls it before taking a snapshot, after which it
// may compact its own log up to the checkpointed index.
func (p *Partition) Sync() error {
	l := p.log.Load()
	if err := l.Sync(); err != nil {
		return fmt.Errorf("sync partition %s: %w", p.cfg.Dir, err)
	}
	partlog.CrashPoint("fsm.sync.log-synced")
	p.mu.Lock()
	cp := checkpoint{Index: p.applied, StartOffset: l.StartOffset(), EndOffset: l.EndOffset(), Epochs: p.epochs.clone(), Producers: p.producers.clone()}
	p.mu.Unlock()
	if err := writeCheckpoint(p.cfg.Dir, cp); err != nil {
		return fmt.Errorf("sync partition %s: %w", p.cfg.Dir, err)
	}
	return nil
}

// partitionSnapshot is the point-in-time view PrepareSnapshot captures.
type partitionSnapshot struct {
	header snapshotHeader
	log    *partlog.Snapshot
}

type snapshotHeader struct {
	Version   int        `json:"version"`
	Index     uint64     `json:"index"`
	Epochs    epochCache `json:"epochs"`
	Producers producers  `json:"producers,omitempty"`
}

const snapshotVersion = 1

// PrepareSnapshot captures the segment files as they are now; SaveSnapshot
// streams them while Update goes on.
func (p *Partition) PrepareSnapshot() (any, error) {
	snap, err := p.log.Load().Snapshot()
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot %s: %w", p.cfg.Dir, err)
	}
	p.mu.Lock()
	h := snapshotHeader{Version: snapshotVersion, Index: p.applied, Epochs: p.epochs.clone(), Producers: p.producers.clone()}
	p.mu.Unlock()
	return &partitionSnapshot{header: h, log: snap}, nil
}

// SaveSnapshot streams a length-prefixed JSON header and then the segments.
func (p *Partition) SaveSnapshot(ctx any, w io.Writer, done <-chan struct{}) error {
	ps, ok := ctx.(*partitionSnapshot)
	if !ok {
		return fmt.Errorf("fsm: snapshot context is %T", ctx)
	}
	defer ps.log.Close()
	hb, err := json.Marshal(ps.header)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(hb)))
	if _, err := w.Write(n[:]); err != nil {
		return snapshotWriteErr(err)
	}
	if _, err := w.Write(hb); err != nil {
		return snapshotWriteErr(err)
	}
	if _, err := ps.log.WriteTo(&stoppableWriter{w: w, done: done}); err != nil {
		return snapshotWriteErr(err)
	}
	return nil
}

func snapshotWriteErr(err error) error {
	if errors.Is(err, sm.ErrSnapshotStopped) {
		return sm.ErrSnapshotStopped
	}
	return sm.ErrSnapshotStreaming
}

// stoppableWriter aborts a snapshot stream once the replica is stopping.
type stoppableWriter struct {
	w    io.Writer
	done <-chan struct{}
}

func (s *stoppableWriter) Write(b []byte) (int, error) {
	select {
	case <-s.done:
		return 0, sm.ErrSnapshotStopped
	default:
	}
	return s.w.Write(b)
}

// maxSnapshotHeader bounds the header a peer can make us allocate.
const maxSnapshotHeader = 16 << 20

// RecoverFromSnapshot replaces the replica's log with the one streamed
// from another replica and checkpoints it at the snapshot's index.
func (p *Partition) RecoverFromSnapshot(r io.Reader, done <-chan struct{}) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var n [4]byte
	if _, err := io.ReadFull(br, n[:]); err != nil {
		return fmt.Errorf("recover snapshot %s: header: %w", p.cfg.Dir, err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxSnapshotHeader {
		return fmt.Errorf("recover snapshot %s: header of %d bytes is too large", p.cfg.Dir, size)
	}
	hb := make([]byte, size)
	if _, err := io.ReadFull(br, hb); err != nil {
		return fmt.Errorf("recover snapshot %s: header: %w", p.cfg.Dir, err)
	}
	var h snapshotHeader
	if err := json.Unmarshal(hb, &h); err != nil || h.Version != snapshotVersion {
		return fmt.Errorf("recover snapshot %s: bad header (version %d): %v", p.cfg.Dir, h.Version, err)
	}
	if old := p.log.Load(); old != nil {
		old.Close()
	}
	l, err := partlog.Restore(p.logDir(), br, p.cfg.Log, p.cfg.Logger)
	if err != nil {
		return fmt.Errorf("recover snapshot %s: %w", p.cfg.Dir, err)
	}
	partlog.CrashPoint("fsm.recover.restored")
	cp := checkpoint{Index: h.Index, StartOffset: l.StartOffset(), EndOffset: l.EndOffset(), Epochs: h.Epochs, Producers: h.Producers}
	if err := writeCheckpoint(p.cfg.Dir, cp); err != nil {
		l.Close()
		return fmt.Errorf("recover snapshot %s: %w", p.cfg.Dir, err)
	}
	p.log.Store(l)
	p.mu.Lock()
	p.epochs = h.Epochs.clone()
	p.producers = h.Producers.clone()
	if p.producers == nil {
		p.producers = producers{}
	}
	p.applied = h.Index
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	return nil
}

// Close checkpoints and closes the log; reads after Close fail with
// ErrPartitionClosed. The checkpoint spares a clean restart from replaying
// the Raft log; it is safe because everything applied is already committed
// in Dragonboat's log. A crash skips it, and Open copes.
func (p *Partition) Close() error {
	l := p.log.Load()
	if l == nil || p.closed.Load() {
		return nil
	}
	err := p.Sync()
	if err != nil {
		if _, serr := os.Stat(p.cfg.Dir); errors.Is(serr, fs.ErrNotExist) {
			// The replica was removed and its files deleted: there is
			// nothing left to checkpoint. Failing here would make
			// Dragonboat panic the whole node.
			err = nil
		}
	}
	p.closed.Store(true)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return err
}

// Closed reports whether Close ran: Dragonboat is done with the replica.
func (p *Partition) Closed() bool { return p.closed.Load() }

// Log returns the replica's current log for reading, or ErrPartitionClosed.
// The log may be replaced by a snapshot recovery: do not keep it across
// requests.
func (p *Partition) Log() (*partlog.Log, error) {
	l := p.log.Load()
	if l == nil || p.closed.Load() {
		return nil, ErrPartitionClosed
	}
	return l, nil
}

// SetLogConfig changes segment rolling for future appends.
func (p *Partition) SetLogConfig(c partlog.Config) { p.logCfg.Store(&c) }

// Changed returns a channel closed after the next applied Update; fetch
// long-polls wait on it.
func (p *Partition) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch for this replica.
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l, err := p.Log()
	if err != nil {
		return -1, -1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epochs.endOffsetFor(epoch, l.EndOffset())
}

// Applied returns the Raft index of the last applied command.
func (p *Partition) Applied() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// EpochAt returns the leader epoch that wrote offset (the latest epoch for
// the log end), or -1 when unknown.
func (p *Partition) EpochAt(offset int64) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epochs.epochAt(offset)
}

// Duplicates counts the batches this replica recognised as resends of
// batches already written (and did not write again) since it opened.
func (p *Partition) Duplicates() int64 { return p.duplicates.Load() }
