package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/eddybroker/eddy/raftgroups/partlog"
	"github.com/eddybroker/eddy/raftgroups/partlog/crashdisk"
	"github.com/eddybroker/eddy/raftgroups/partlog/partlogtest"
)

// Crash consistency of a partition replica: the partition log plus the
// checkpoint that says which Raft index it reflects. After any crash, Open
// must report an index no lower than the last completed Sync (Dragonboat
// may have compacted its log up to there, and panics if a state machine
// reports less than a snapshot it took), the log must be exactly what the
// first index entries produced (offsets contiguous, no record from a later
// entry), and replaying the rest of the Raft log must give a replica
// byte-identical to one that never crashed, with the same epochs and
// producer state in its checkpoint.

var crashLogCfg = partlog.Config{SegmentBytes: 2500, IndexIntervalBytes: 200}

// raftLog is a generated run of committed entries and what a replica holds
// after applying each prefix of it.
type raftLog struct {
	entries    []sm.Entry // entries[i].Index == i+1
	start, end []int64    // log bounds after the first i entries
	batches    []written  // every batch ever written, in offset order
	final      checkpoint // the never-crashed replica's checkpoint at the end
	finalBytes []byte
}

type written struct {
	base, last int64
	b          []byte
}

// genRaftLog builds n entries (plain and idempotent appends, leader
// changes, resends, refused commands, retention) and applies them to a
// replica that never crashes, recording what it holds after each.
func genRaftLog(t *testing.T, rng *rand.Rand, n int) *raftLog {
	t.Helper()
	ref := NewPartition(PartitionConfig{Dir: crashdisk.TempDir(t), Log: crashLogCfg, Logger: zerolog.Nop()})
	_, err := ref.Open(nil)
	require.NoError(t, err)
	defer ref.Close()
	rl := &raftLog{start: []int64{0}, end: []int64{0}}
	epoch := int32(1)
	seqs := map[int64]int32{}
	var sent [][]byte // idempotent batches already sent, for resends
	for i := 1; i <= n; i++ {
		l, _ := ref.Log()
		var cmd []byte
		now := int64(10_000 + 10*i)
		if rng.IntN(15) == 0 {
			epoch++ // a new leader
		}
		vals := make([][]byte, 1+rng.IntN(5))
		for j := range vals {
			vals[j] = bytes.Repeat([]byte{byte(i), byte(j)}, 5+rng.IntN(100))
		}
		switch r := rng.IntN(100); {
		case r < 55:
			cmd = EncodeAppend(nil, AppendCommand{LeaderEpoch: epoch, AppendTimeMs: now, Batches: partlogtest.Values(now, vals...)})
		case r < 85:
			pid := int64(1000 + rng.IntN(3))
			b := partlogtest.Idempotent(pid, 0, seqs[pid], now, vals...)
			seqs[pid] += int32(len(vals))
			sent = append(sent, b)
			cmd = EncodeAppend(nil, AppendCommand{LeaderEpoch: epoch, AppendTimeMs: now, Batches: b})
		case r < 90 && len(sent) > 0: // a producer's retry: recognised, not written
			cmd = EncodeAppend(nil, AppendCommand{LeaderEpoch: epoch, AppendTimeMs: now, Batches: sent[len(sent)-1-rng.IntN(min(len(sent), 4))]})
		case r < 93: // out of order: refused
			cmd = EncodeAppend(nil, AppendCommand{LeaderEpoch: epoch, AppendTimeMs: now, Batches: partlogtest.Idempotent(1000, 0, seqs[1000]+7, now, vals...)})
		default:
			cmd = EncodeAdvanceStart(l.StartOffset() + rng.Int64N(l.EndOffset()-l.StartOffset()+1))
		}
		e := sm.Entry{Index: uint64(i), Cmd: cmd}
		rl.entries = append(rl.entries, e)
		before := l.EndOffset()
		_, err := ref.Update([]sm.Entry{e})
		require.NoError(t, err)
		l, _ = ref.Log()
		if l.EndOffset() > before {
			b, err := l.Read(before, 1<<30, nil)
			require.NoError(t, err)
			for len(b) > 0 {
				h, err := partlog.ParseBatchHeader(b)
				require.NoError(t, err)
				rl.batches = append(rl.batches, written{base: h.BaseOffset, last: h.LastOffset(), b: b[:h.Size()]})
				b = b[h.Size():]
			}
		}
		rl.start = append(rl.start, l.StartOffset())
		rl.end = append(rl.end, l.EndOffset())
	}
	require.NoError(t, ref.Sync())
	cp, ok, err := readCheckpoint(ref.cfg.Dir)
	require.NoError(t, err)
	require.True(t, ok)
	rl.final = cp
	rl.finalBytes = readAllBytes(t, ref)
	return rl
}

// expected is the bytes of the batches holding [start, end).
func (rl *raftLog) expected(start, end int64) []byte {
	var out []byte
	for _, w := range rl.batches {
		if w.last >= start && w.base < end {
			out = append(out, w.b...)
		}
	}
	return out
}

// apply applies entries [from, to) (0-based) in one Update, as Dragonboat
// batches them.
func (rl *raftLog) apply(t *testing.T, p *Partition, from, to int) {
	t.Helper()
	if from >= to {
		return
	}
	_, err := p.Update(slices.Clone(rl.entries[from:to]))
	require.NoError(t, err)
}

// checkAt checks a replica just opened after a crash: it reflects exactly
// the first idx entries, except that retention committed later (up to
// entry hi) may already have moved its start, which is durable at once.
func (rl *raftLog) checkAt(t *testing.T, p *Partition, idx, hi uint64) {
	t.Helper()
	l, err := p.Log()
	require.NoError(t, err)
	require.Equal(t, idx, p.Applied())
	require.Equal(t, rl.end[idx], l.EndOffset(), "log end after reopening at index %d", idx)
	start := l.StartOffset()
	lo, up := rl.start[idx], rl.start[idx]
	for i := idx; i <= hi; i++ {
		up = max(up, rl.start[i])
	}
	require.True(t, start >= lo && start <= min(up, l.EndOffset()),
		"log start %d after reopening at index %d: want [%d, %d]", start, idx, lo, up)
	got, err := l.Read(start, 1<<30, nil)
	require.NoError(t, err)
	require.Equal(t, rl.expected(start, l.EndOffset()), got, "log bytes after reopening at index %d", idx)
}

// replayAndCompare replays the entries after idx, as Dragonboat does after
// Open, in random batches, and compares the result with the replica that
// never crashed.
func (rl *raftLog) replayAndCompare(t *testing.T, p *Partition, idx uint64, rng *rand.Rand) {
	t.Helper()
	for i := int(idx); i < len(rl.entries); {
		k := min(1+rng.IntN(8), len(rl.entries)-i)
		rl.apply(t, p, i, i+k)
		i += k
	}
	require.NoError(t, p.Sync())
	cp, ok, err := readCheckpoint(p.cfg.Dir)
	require.NoError(t, err)
	require.True(t, ok)
	want, _ := json.Marshal(rl.final)
	got, _ := json.Marshal(cp)
	require.JSONEq(t, string(want), string(got), "checkpoint after replay")
	require.Equal(t, rl.finalBytes, readAllBytes(t, p), "log after replay")
}

// openCrashed opens the replica in dir after a crash and checks it
// reports an index in [lo, hi]; the caller closes it.
func openCrashed(t *testing.T, dir string, lo, hi uint64) (*Partition, uint64) {
	t.Helper()
	p := NewPartition(PartitionConfig{Dir: dir, Log: crashLogCfg, Logger: zerolog.Nop()})
	idx, err := p.Open(nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, idx, lo, "reopened below the last completed Sync")
	require.LessOrEqual(t, idx, hi, "reopened above what was applied")
	return p, idx
}

// abandon drops a replica as a crash does: no checkpoint, files closed.
func abandon(p *Partition) {
	if l, err := p.Log(); err == nil {
		l.Close()
	}
	p.closed.Store(true)
}

// tracker tells a crashdisk.Disk what a partition made durable while
// entries were applied: Sync everything, a roll the sealed segment and
// the directory names before the next one, retention the start file and
// the directory.
type tracker struct {
	t    *testing.T
	disk *crashdisk.Disk
	sub  string // the partition's log dir relative to the disk root
	p    *Partition
}

func (tr *tracker) segments() []partlog.SegmentInfo {
	l, err := tr.p.Log()
	require.NoError(tr.t, err)
	return l.Segments()
}

func (tr *tracker) afterUpdate(before []partlog.SegmentInfo, advanced bool) {
	t := tr.t
	after := tr.segments()
	newest := after[len(after)-1].BaseOffset
	if newest != before[len(before)-1].BaseOffset && !advanced {
		var sealed []string
		for _, s := range after[:len(after)-1] {
			if s.BaseOffset >= before[len(before)-1].BaseOffset {
				sealed = append(sealed, segFiles(tr.sub, s.BaseOffset)...)
			}
		}
		require.NoError(t, tr.disk.SyncedFiles(sealed...))
		names, err := os.ReadDir(filepath.Join(tr.disk.Root(), tr.sub))
		require.NoError(t, err)
		var keep []string
		for _, e := range names {
			p := filepath.Join(tr.sub, e.Name())
			if !slices.Contains(segFiles(tr.sub, newest), p) {
				keep = append(keep, p)
			}
		}
		require.NoError(t, tr.disk.SyncedNames(keep...))
	}
	if advanced {
		start := filepath.Join(tr.sub, "log-start-offset")
		if _, err := os.Stat(filepath.Join(tr.disk.Root(), start)); err == nil {
			require.NoError(t, tr.disk.SyncedFiles(start))
		}
		require.NoError(t, tr.disk.SyncedDir(tr.sub))
	}
}

func segFiles(sub string, base int64) []string {
	name := fmt.Sprintf("%020d", base)
	return []string{filepath.Join(sub, name+".log"), filepath.Join(sub, name+".index"), filepath.Join(sub, name+".timeindex")}
}

// TestPartitionCrashPowerLoss applies a generated Raft log with Syncs at
// random points (as Dragonboat's snapshots call it), loses power at a
// random point, and checks the reopened replica and its replay.
// EDDY_CRASH_ITERATIONS runs more; EDDY_CRASH_SEED replays one.
func TestPartitionCrashPowerLoss(t *testing.T) {
	seed := crashdisk.Seed(t)
	iterations := crashdisk.Iterations(t, 10)
	states, replayed := 0, 0
	defer func() { t.Logf("%d runs, %d crash states reopened, %d entries replayed", iterations, states, replayed) }()
	for it := range iterations {
		rng := rand.New(rand.NewPCG(seed, uint64(it)))
		rl := genRaftLog(t, rng, 50+rng.IntN(80))
		root := crashdisk.TempDir(t)
		dir := filepath.Join(root, "p")
		p := NewPartition(PartitionConfig{Dir: dir, Log: crashLogCfg, Logger: zerolog.Nop()})
		_, err := p.Open(nil)
		require.NoError(t, err)
		disk, err := crashdisk.New(root)
		require.NoError(t, err)
		tr := &tracker{t: t, disk: disk, sub: filepath.Join("p", "log"), p: p}
		stop := rng.IntN(len(rl.entries) + 1)
		applied, synced := 0, 0
		var trace []string
		for applied < stop {
			k := min(1+rng.IntN(6), stop-applied)
			// Retention alone in its Update, so the directory sync it
			// makes is modelled exactly.
			for j := applied; j < applied+k; j++ {
				if rl.entries[j].Cmd[0] == kindAdvanceStart {
					k = max(j-applied, 1)
					break
				}
			}
			advanced := rl.entries[applied].Cmd[0] == kindAdvanceStart
			before := tr.segments()
			rl.apply(t, p, applied, applied+k)
			tr.afterUpdate(before, advanced)
			applied += k
			trace = append(trace, fmt.Sprintf("apply→%d", applied))
			if rng.IntN(6) == 0 {
				require.NoError(t, p.Sync())
				require.NoError(t, disk.Synced())
				synced = applied
				trace = append(trace, "sync")
			}
		}
		for c := range 2 {
			dst := filepath.Join(root, fmt.Sprint("crash", c))
			desc, err := disk.Crash(rng, dst)
			require.NoError(t, err)
			ok := t.Run(fmt.Sprintf("run%d/crash%d", it, c), func(t *testing.T) {
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("applied %d of %d entries: %s\ncrash: %s", applied, len(rl.entries), strings.Join(trace, ", "), desc)
					}
				})
				p2, idx := openCrashed(t, filepath.Join(dst, "p"), uint64(synced), uint64(applied))
				defer p2.Close()
				rl.checkAt(t, p2, idx, uint64(applied))
				rl.replayAndCompare(t, p2, idx, rng)
				states++
				replayed += len(rl.entries) - int(idx)
			})
			if !ok {
				break
			}
		}
		abandon(p)
		if t.Failed() {
			return
		}
	}
}

// sigkillCopy is the replica's files copied at one crash point pass.
type sigkillCopy struct {
	point   string
	dir     string
	lo, hi  uint64 // the index Open may report
	hiStart uint64 // the last entry whose retention may show: one applied before an earlier crash counts
}

// TestPartitionCrashPointsKillNine copies the replica's files at every
// crash point pass while entries are applied, Syncs checkpoint, and a
// crashed copy is reopened (the cut back to the checkpoint), as a SIGKILL
// there would leave them; each copy must reopen, reflect its index
// exactly and replay to the never-crashed replica.
// EDDY_CRASH_ITERATIONS=N runs N/20 workloads (at least one).
func TestPartitionCrashPointsKillNine(t *testing.T) {
	seed := crashdisk.Seed(t)
	workloads := max(1, crashdisk.Iterations(t, 20)/20)
	for w := range workloads {
		killNineWorkload(t, rand.New(rand.NewPCG(seed, uint64(w))), w)
		if t.Failed() {
			return
		}
	}
}

func killNineWorkload(t *testing.T, rng *rand.Rand, w int) {
	rl := genRaftLog(t, rng, 160)
	root := crashdisk.TempDir(t)
	live := filepath.Join(root, "live")
	var copies []sigkillCopy
	var lo, hi uint64 // what Open may report at the current pass
	var maxApplied uint64
	hits := map[string]int{}
	restore := partlog.SetCrashHook(func(point string) {
		hits[point]++
		if (point == "partlog.append.written" || point == "fsm.update.applied") && hits[point]%5 != 0 {
			return
		}
		c := sigkillCopy{point: point, dir: filepath.Join(root, fmt.Sprint("kill", len(copies))), lo: lo, hi: hi, hiStart: max(hi, maxApplied)}
		require.NoError(t, crashdisk.Copy(live, c.dir))
		copies = append(copies, c)
	})
	defer restore()

	p := NewPartition(PartitionConfig{Dir: live, Log: crashLogCfg, Logger: zerolog.Nop()})
	_, err := p.Open(nil)
	require.NoError(t, err)
	applied, synced := 0, 0
	reopened := false
	for applied < len(rl.entries) {
		k := min(1+rng.IntN(6), len(rl.entries)-applied)
		lo, hi = uint64(synced), uint64(applied+k)
		rl.apply(t, p, applied, applied+k)
		applied += k
		maxApplied = max(maxApplied, uint64(applied))
		if rng.IntN(5) == 0 {
			lo, hi = uint64(synced), uint64(applied)
			require.NoError(t, p.Sync())
			synced = applied
		}
		if applied > len(rl.entries)/2 && rl.end[applied] > rl.end[synced] && !reopened {
			// Crash, then reopen with the hook on: Open's own cut back.
			reopened = true
			abandon(p)
			lo, hi = uint64(synced), uint64(applied)
			p = NewPartition(PartitionConfig{Dir: live, Log: crashLogCfg, Logger: zerolog.Nop()})
			idx, err := p.Open(nil)
			require.NoError(t, err)
			require.Equal(t, uint64(synced), idx)
			applied = int(idx)
		}
	}
	lo, hi = uint64(synced), uint64(applied)
	require.NoError(t, p.Close())
	restore()
	for _, point := range []string{"fsm.update.begin", "fsm.update.applied", "fsm.sync.log-synced",
		"fsm.checkpoint.tmp-written", "fsm.checkpoint.renamed", "fsm.open.rolled-back",
		"partlog.append.written", "partlog.roll.sealed"} {
		require.Positive(t, hits[point], "crash point %s never passed: %v", point, hits)
	}
	// The cut back at the reopen: inside a segment, or below the first.
	require.Positive(t, hits["partlog.truncate.index-cut"]+hits["partlog.reset.start-written"], "no cut back: %v", hits)
	for i, c := range copies {
		t.Run(fmt.Sprintf("w%d/%d-%s", w, i, c.point), func(t *testing.T) {
			p2, idx := openCrashed(t, c.dir, c.lo, c.hi)
			defer p2.Close()
			rl.checkAt(t, p2, idx, c.hiStart)
			rl.replayAndCompare(t, p2, idx, rand.New(rand.NewPCG(uint64(i), 102)))
		})
		require.NoError(t, os.RemoveAll(c.dir))
	}
	t.Logf("workload %d: %d copies at %d crash points: %v", w, len(copies), len(hits), hits)
}

// TestPartitionCrashDuringSnapshotRecovery: a replica that fell behind
// receives another replica's snapshot; a SIGKILL anywhere in
// RecoverFromSnapshot must leave a replica that opens at its old
// checkpoint or at the snapshot's index. Dragonboat, which kept the
// snapshot, recovers from it again when Open reports less.
func TestPartitionCrashDuringSnapshotRecovery(t *testing.T) {
	rng := rand.New(rand.NewPCG(103, 104))
	rl := genRaftLog(t, rng, 120)
	root := crashdisk.TempDir(t)
	behind, ahead := 40, 100
	src := NewPartition(PartitionConfig{Dir: filepath.Join(root, "ahead"), Log: crashLogCfg, Logger: zerolog.Nop()})
	_, err := src.Open(nil)
	require.NoError(t, err)
	rl.apply(t, src, 0, ahead)
	ctx, err := src.PrepareSnapshot()
	require.NoError(t, err)
	var snap bytes.Buffer
	require.NoError(t, src.SaveSnapshot(ctx, &snap, make(chan struct{})))
	require.NoError(t, src.Close())

	part := filepath.Join(root, "part") // copied whole: Restore works beside the log dir
	live := filepath.Join(part, "live")
	p := NewPartition(PartitionConfig{Dir: live, Log: crashLogCfg, Logger: zerolog.Nop()})
	_, err = p.Open(nil)
	require.NoError(t, err)
	rl.apply(t, p, 0, behind)
	require.NoError(t, p.Sync())
	rl.apply(t, p, behind, behind+5) // applied, not checkpointed

	var copies []sigkillCopy
	restore := partlog.SetCrashHook(func(point string) {
		c := sigkillCopy{point: point, dir: filepath.Join(root, fmt.Sprint("kill", len(copies)))}
		require.NoError(t, crashdisk.Copy(part, c.dir))
		copies = append(copies, c)
	})
	defer restore()
	require.NoError(t, p.RecoverFromSnapshot(bytes.NewReader(snap.Bytes()), make(chan struct{})))
	restore()
	require.NoError(t, p.Close())
	seen := map[string]bool{}
	for _, c := range copies {
		seen[c.point] = true
	}
	for _, point := range []string{"partlog.restore.old-moved", "partlog.restore.swapped", "fsm.recover.restored", "fsm.checkpoint.renamed"} {
		require.True(t, seen[point], "crash point %s never passed", point)
	}
	for i, c := range copies {
		t.Run(fmt.Sprintf("%d-%s", i, c.point), func(t *testing.T) {
			p2, idx := openCrashed(t, filepath.Join(c.dir, "live"), uint64(behind), uint64(ahead))
			defer p2.Close()
			require.Contains(t, []uint64{uint64(behind), uint64(ahead)}, idx)
			rl.checkAt(t, p2, idx, uint64(ahead))
			if idx < uint64(ahead) {
				require.NoError(t, p2.RecoverFromSnapshot(bytes.NewReader(snap.Bytes()), make(chan struct{})))
				rl.checkAt(t, p2, uint64(ahead), uint64(ahead))
			}
			rl.replayAndCompare(t, p2, uint64(ahead), rng)
			// Nothing an interrupted restore left beside the log stays.
			ents, err := os.ReadDir(filepath.Join(c.dir, "live"))
			require.NoError(t, err)
			for _, e := range ents {
				require.False(t, strings.HasPrefix(e.Name(), "log."), "leftover %s", e.Name())
			}
		})
	}
}

// TestPartitionCrashCheckpointDamage covers the checkpoint file itself: a
// torn temp file (a crash while writing the next checkpoint) is ignored; a
// stale but whole checkpoint (the rename of the next one was lost) cuts
// back further and replays more; no checkpoint at all replays everything;
// a damaged checkpoint, which an fsync and a rename cannot produce, is
// refused without touching the log; and synced data that went missing is
// refused rather than served with an index that claims it.
func TestPartitionCrashCheckpointDamage(t *testing.T) {
	rng := rand.New(rand.NewPCG(105, 106))
	rl := genRaftLog(t, rng, 90)
	root := crashdisk.TempDir(t)
	live := filepath.Join(root, "live")
	p := NewPartition(PartitionConfig{Dir: live, Log: crashLogCfg, Logger: zerolog.Nop()})
	_, err := p.Open(nil)
	require.NoError(t, err)
	rl.apply(t, p, 0, 30)
	require.NoError(t, p.Sync())
	stale, err := os.ReadFile(filepath.Join(live, checkpointFile))
	require.NoError(t, err)
	rl.apply(t, p, 30, 60)
	require.NoError(t, p.Sync())
	cpBytes, err := os.ReadFile(filepath.Join(live, checkpointFile))
	require.NoError(t, err)
	rl.apply(t, p, 60, 75) // applied, not checkpointed
	tree, err := crashdisk.Read(live)
	require.NoError(t, err)
	abandon(p)

	n := 0
	state := func(edit func(files map[string][]byte)) string {
		n++
		dir := filepath.Join(root, fmt.Sprint("s", n))
		files := maps.Clone(tree.Files)
		edit(files)
		require.NoError(t, crashdisk.Tree{Files: files, Dirs: tree.Dirs}.Write(dir))
		return dir
	}
	reopen := func(t *testing.T, dir string, want uint64) {
		t.Helper()
		p, idx := openCrashed(t, dir, want, want)
		defer p.Close()
		rl.checkAt(t, p, idx, 75)
		rl.replayAndCompare(t, p, idx, rng)
	}

	t.Run("torn temp checkpoint", func(t *testing.T) {
		next, _ := json.Marshal(checkpoint{Version: checkpointVersion, Index: 75})
		for cut := range len(next) + 1 {
			dir := state(func(f map[string][]byte) { f[checkpointFile+".tmp"] = next[:cut] })
			if cut%10 == 0 || cut == len(next) {
				reopen(t, dir, 60)
			} else {
				p, _ := openCrashed(t, dir, 60, 60)
				require.NoError(t, p.Close())
			}
		}
	})
	t.Run("stale checkpoint", func(t *testing.T) {
		reopen(t, state(func(f map[string][]byte) { f[checkpointFile] = stale }), 30)
	})
	t.Run("no checkpoint", func(t *testing.T) {
		reopen(t, state(func(f map[string][]byte) { delete(f, checkpointFile) }), 0)
	})
	t.Run("damaged checkpoint", func(t *testing.T) {
		damaged := [][]byte{nil, make([]byte, len(cpBytes)), bytes.Replace(cpBytes, []byte(`"version":1`), []byte(`"version":9`), 1)}
		for cut := 1; cut < len(cpBytes); cut += 1 + cut/8 {
			damaged = append(damaged, cpBytes[:cut])
		}
		for _, d := range damaged {
			dir := state(func(f map[string][]byte) { f[checkpointFile] = d })
			before, err := crashdisk.Read(dir)
			require.NoError(t, err)
			p := NewPartition(PartitionConfig{Dir: dir, Log: crashLogCfg, Logger: zerolog.Nop()})
			_, err = p.Open(nil)
			require.ErrorContains(t, err, filepath.Join(dir, checkpointFile), "checkpoint %q", d)
			after, err := crashdisk.Read(dir)
			require.NoError(t, err)
			require.Equal(t, before.Files, after.Files, "a refused open must not touch the files")
		}
	})
	t.Run("synced segment missing", func(t *testing.T) {
		var cp checkpoint
		require.NoError(t, json.Unmarshal(cpBytes, &cp))
		segs := segmentsIn(t, tree)
		// The newest segment that holds checkpointed offsets.
		var victim int64 = -1
		for _, b := range segs {
			if b < cp.EndOffset {
				victim = b
			}
		}
		require.GreaterOrEqual(t, victim, int64(0))
		dir := state(func(f map[string][]byte) {
			for _, s := range segs {
				if s >= victim {
					for _, p := range segFiles("log", s) {
						delete(f, p)
					}
				}
			}
		})
		p := NewPartition(PartitionConfig{Dir: dir, Log: crashLogCfg, Logger: zerolog.Nop()})
		_, err := p.Open(nil)
		require.ErrorContains(t, err, "synced data is missing")
	})
	t.Run("unsynced segment missing", func(t *testing.T) {
		var cp checkpoint
		require.NoError(t, json.Unmarshal(cpBytes, &cp))
		segs := segmentsIn(t, tree)
		newest := segs[len(segs)-1]
		require.Greater(t, newest, cp.EndOffset, "the workload must roll after the checkpoint")
		dir := state(func(f map[string][]byte) {
			for _, p := range segFiles("log", newest) {
				delete(f, p)
			}
		})
		reopen(t, dir, 60)
	})
}

func segmentsIn(t *testing.T, tree crashdisk.Tree) []int64 {
	t.Helper()
	var out []int64
	for p := range tree.Files {
		var base int64
		if _, err := fmt.Sscanf(filepath.Base(p), "%020d.log", &base); err == nil && strings.HasSuffix(p, ".log") {
			out = append(out, base)
		}
	}
	slices.Sort(out)
	return out
}

// TestPartitionReplayTrimsEpochsAfterDurableRetention: retention applied
// after the last checkpoint is already durable in the log when a crash
// comes; replaying it must still trim the epochs restored from the
// checkpoint, as it did on replicas that did not crash.
func TestPartitionReplayTrimsEpochsAfterDurableRetention(t *testing.T) {
	entries := []sm.Entry{appendEntry(1, 1, 3), appendEntry(2, 2, 3), appendEntry(3, 3, 3), {Index: 4, Cmd: EncodeAdvanceStart(7)}}
	ref, _ := openPartition(t, t.TempDir())
	apply(t, ref, entries...)

	dir := t.TempDir()
	p, _ := openPartition(t, dir)
	apply(t, p, entries[:3]...)
	require.NoError(t, p.Sync())
	apply(t, p, entries[3])
	abandon(p)
	p2, idx := openPartition(t, dir)
	require.Equal(t, uint64(3), idx)
	l, _ := p2.Log()
	require.Equal(t, int64(7), l.StartOffset(), "the start is durable ahead of the checkpoint")
	apply(t, p2, entries[3])
	p2.mu.Lock()
	got := p2.epochs.clone()
	p2.mu.Unlock()
	require.Equal(t, ref.epochs, got)
}
