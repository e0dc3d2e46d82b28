package partlog

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/eddybroker/eddy/raftgroups/partlog/crashdisk"
)

// Crash consistency. A crash may lose whatever was not fsynced (power
// loss, simulated by crashdisk.Disk) or interrupt a multi-step change
// (SIGKILL, simulated by copying the files at each CrashPoint). After
// either, Open must give a log that ends on a batch boundary, holds every
// offset from its start to its end with exactly the bytes appended there
// (never offset N+1 without N), keeps everything that was durable, has
// indexes that agree with the data, and appends at its end.

// checkRecovered checks a log reopened after a crash against m, the
// batches the log held or was being given when it crashed. durableEnd is
// the offset below which nothing may be lost; the log must start in
// [startLo, startHi] (a durable start is clamped to a recovered end below
// it). It returns m cut to what the log holds.
func checkRecovered(t *testing.T, l *Log, m *model, durableEnd, startLo, startHi int64) *model {
	t.Helper()
	end := l.EndOffset()
	require.GreaterOrEqual(t, end, durableEnd, "recovery lost durable offsets")
	require.LessOrEqual(t, end, m.end(), "recovery shows offsets never appended")
	cut := &model{start: l.StartOffset()}
	for _, sb := range m.batches {
		if sb.last < end {
			cut.batches = append(cut.batches, sb)
		}
	}
	if end != cut.start {
		require.Equal(t, cut.end(), end, "the log ends inside a batch")
	} else {
		cut.batches = nil // an empty log is one empty segment
	}
	require.True(t, cut.start >= min(startLo, end) && cut.start <= min(startHi, end),
		"log start %d, end %d: want a start in [%d, %d] (or the end below it)", cut.start, end, startLo, startHi)

	// The whole log in one read, then every batch on its own by its first
	// and last offset: contiguous, and the index finds each one.
	got, err := l.Read(cut.start, 1<<30, nil)
	require.NoError(t, err)
	require.Equal(t, cut.read(cut.start, 1<<30), got, "log bytes after recovery")
	for _, sb := range cut.batches {
		if sb.last < cut.start {
			continue
		}
		for _, off := range []int64{max(sb.base, cut.start), sb.last} {
			got, err := l.Read(off, 1, nil)
			require.NoError(t, err, "read offset %d", off)
			require.Equal(t, sb.b, got, "read offset %d", off)
		}
	}
	_, err = l.Read(end+1, 1, nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	for _, sb := range cut.batches {
		wantOff, wantTs, wantOK := cut.offsetForTimestamp(sb.maxTs)
		off, ts, ok, err := l.OffsetForTimestamp(sb.maxTs)
		require.NoError(t, err)
		require.Equal(t, []any{wantOK, wantOff, wantTs}, []any{ok, off, ts}, "offset for timestamp %d", sb.maxTs)
	}
	segs := l.Segments()
	for i := 1; i < len(segs); i++ {
		require.Equal(t, segs[i-1].EndOffset, segs[i].BaseOffset, "segments must be contiguous")
	}
	require.Equal(t, end, segs[len(segs)-1].EndOffset)
	return cut
}

// continueAfterCrash appends to a recovered log, closes it and checks the
// reopened result fully, including that the offset index files hold
// exactly the entries the layout calls for.
func continueAfterCrash(t *testing.T, l *Log, dir string, cfg Config, m *model, rng *rand.Rand) {
	t.Helper()
	for range 3 {
		end := l.EndOffset()
		b := simpleBatch(t, 1+rng.IntN(4), 20+rng.IntN(200), 50_000+end, fmt.Sprint("after", end))
		appendBatch(t, l, m, b, -1, 50_000)
	}
	require.NoError(t, l.Close())
	l2 := mustOpen(t, dir, cfg)
	defer l2.Close()
	checkRecovered(t, l2, m, m.end(), m.start, m.start)
	checkIndexFiles(t, dir, cfg, l2.Segments(), m)
}

// checkIndexFiles compares each segment's .index file with the entries
// the indexing rule gives for the batches the model places in it.
func checkIndexFiles(t *testing.T, dir string, cfg Config, segs []SegmentInfo, m *model) {
	t.Helper()
	interval := int64(cfg.withDefaults().IndexIntervalBytes)
	for _, s := range segs {
		var want []offsetEntry
		pos, last := int64(0), int64(0)
		for _, sb := range m.batches {
			if sb.base < s.BaseOffset || sb.base >= s.EndOffset {
				continue
			}
			if pos > 0 && pos-last >= interval {
				want = append(want, offsetEntry{rel: uint32(sb.base - s.BaseOffset), pos: uint32(pos)})
				last = pos
			}
			pos += int64(len(sb.b))
		}
		require.Equal(t, s.Size, pos, "segment %d size against the model", s.BaseOffset)
		got, err := os.ReadFile(filepath.Join(dir, segmentName(s.BaseOffset, indexSuffix)))
		require.NoError(t, err)
		require.Equal(t, appendOffsetEntries([]byte{}, want), got, "index of segment %d", s.BaseOffset)
	}
}

// segmentFiles are the paths, relative to the crashdisk root, of a
// segment's three files.
func segmentFiles(sub string, base int64) []string {
	return []string{
		filepath.Join(sub, segmentName(base, logSuffix)),
		filepath.Join(sub, segmentName(base, indexSuffix)),
		filepath.Join(sub, segmentName(base, timeIndexSuffix)),
	}
}

// namesExcept lists the files in dir (as paths under sub) other than the
// segment at base.
func namesExcept(t *testing.T, dir, sub string, base int64) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	skip := segmentFiles(sub, base)
	var out []string
	for _, e := range ents {
		if p := filepath.Join(sub, e.Name()); !slices.Contains(skip, p) {
			out = append(out, p)
		}
	}
	return out
}

// batchBoundaries lists the offsets where m's batches start, from its
// start, and its end.
func batchBoundaries(m *model) []int64 {
	var out []int64
	for _, sb := range m.batches {
		if sb.base >= m.start {
			out = append(out, sb.base)
		}
	}
	return append(out, m.end())
}

// TestCrashTornActiveSegmentEveryByte cuts the active segment at every
// byte past what was synced, with and without zeros after the cut (a file
// system that grew the file but never wrote the blocks), and reopens.
func TestCrashTornActiveSegmentEveryByte(t *testing.T) {
	cfg := Config{SegmentBytes: 4000, IndexIntervalBytes: 256}
	root := crashdisk.TempDir(t)
	src := filepath.Join(root, "src")
	l := mustOpen(t, src, cfg)
	m := &model{}
	rng := rand.New(rand.NewPCG(90, 91))
	fill(t, l, m, rng, 30, 1000)
	require.NoError(t, l.Sync())
	durableEnd := m.end()
	segs := l.Segments()
	active := segs[len(segs)-1]
	for range 3 { // small unsynced batches, so that every byte is affordable
		appendBatch(t, l, m, simpleBatch(t, 1+rng.IntN(2), 8+rng.IntN(20), 9000, "unsynced"), -1, 9000)
	}
	require.Len(t, l.Segments(), len(segs), "the unsynced batches must stay in the active segment")
	tree, err := crashdisk.Read(src)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	logName := segmentName(active.BaseOffset, logSuffix)
	full := tree.Files[logName]
	t.Logf("cutting %s at each of bytes %d..%d", logName, active.Size, len(full))

	// The batch boundaries in the active segment, to know where each cut
	// must leave the log.
	bounds := map[int64]int64{active.Size: durableEnd} // position → end offset
	pos := int64(0)
	for _, sb := range m.batches {
		if sb.base >= active.BaseOffset {
			pos += int64(len(sb.b))
			bounds[pos] = sb.last + 1
		}
	}
	n := 0
	for cut := active.Size; cut <= int64(len(full)); cut++ {
		for _, zeros := range []bool{false, true} {
			if zeros && cut == int64(len(full)) {
				continue
			}
			n++
			dir := filepath.Join(root, fmt.Sprint("cut", n))
			files := maps.Clone(tree.Files)
			files[logName] = slices.Clone(full[:cut])
			if zeros {
				files[logName] = append(files[logName], make([]byte, int64(len(full))-cut)...)
			}
			require.NoError(t, crashdisk.Tree{Files: files}.Write(dir))
			l, err := Open(dir, cfg, zerolog.Nop())
			require.NoError(t, err, "cut at byte %d, zeros %v", cut, zeros)
			// Zeros past the cut can match what was there (records of
			// zeros): the batches they complete are intact.
			agree := cut
			if zeros {
				for agree < int64(len(full)) && full[agree] == 0 {
					agree++
				}
			}
			wantEnd := int64(0)
			for p, off := range bounds {
				if p <= agree && off > wantEnd {
					wantEnd = off
				}
			}
			require.Equal(t, wantEnd, l.EndOffset(), "cut at byte %d, zeros %v", cut, zeros)
			cm := checkRecovered(t, l, m, durableEnd, m.start, m.start)
			if n%97 == 1 { // the full continue-and-reopen check on a sample
				continueAfterCrash(t, l, dir, cfg, cm, rng)
			} else {
				b := simpleBatch(t, 2, 30, 9500, "next")
				base, err := l.Append(b, 1, -1, 9500)
				require.NoError(t, err)
				require.Equal(t, wantEnd, base, "the next append after a cut at byte %d", cut)
				require.NoError(t, l.Close())
			}
			require.NoError(t, os.RemoveAll(dir))
		}
	}
	t.Logf("%d reopened states", n)
}

// TestCrashDamagedIndexes damages index files (cut at every byte, zeroed
// or random tails, deleted) of the active and of a sealed segment: no
// offset may be lost or misplaced, and the files are rebuilt.
func TestCrashDamagedIndexes(t *testing.T) {
	cfg := Config{SegmentBytes: 6000, IndexIntervalBytes: 128}
	root := crashdisk.TempDir(t)
	src := filepath.Join(root, "src")
	l := mustOpen(t, src, cfg)
	m := &model{}
	rng := rand.New(rand.NewPCG(92, 93))
	fill(t, l, m, rng, 32, 1000)
	require.NoError(t, l.Close())
	segs := l.Segments()
	require.Greater(t, len(segs), 2)
	tree, err := crashdisk.Read(src)
	require.NoError(t, err)

	n := 0
	try := func(name string, files map[string][]byte) {
		t.Helper()
		n++
		dir := filepath.Join(root, fmt.Sprint("d", n))
		require.NoError(t, crashdisk.Tree{Files: files}.Write(dir))
		l, err := Open(dir, cfg, zerolog.Nop())
		require.NoError(t, err, name)
		checkRecovered(t, l, m, m.end(), m.start, m.start)
		if n%23 == 1 {
			continueAfterCrash(t, l, dir, cfg, &model{start: m.start, batches: slices.Clone(m.batches)}, rng)
		} else {
			require.NoError(t, l.Close())
			checkIndexFiles(t, dir, cfg, l.Segments(), m)
		}
		require.NoError(t, os.RemoveAll(dir))
	}
	for _, seg := range []SegmentInfo{segs[len(segs)-1], segs[1]} {
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			name := segmentName(seg.BaseOffset, suffix)
			orig := tree.Files[name]
			require.NotEmpty(t, orig, name)
			for cut := range len(orig) {
				files := maps.Clone(tree.Files)
				files[name] = orig[:cut]
				try(fmt.Sprintf("%s cut at byte %d", name, cut), files)
			}
			for _, tail := range []int{1, 5, 8, 12} {
				files := maps.Clone(tree.Files)
				files[name] = append(slices.Clone(orig[:len(orig)-min(tail, len(orig))]), make([]byte, tail)...)
				try(fmt.Sprintf("%s: last %d bytes zeroed", name, tail), files)
				files = maps.Clone(tree.Files)
				junk := make([]byte, tail)
				for i := range junk {
					junk[i] = byte(rng.IntN(256))
				}
				files[name] = append(slices.Clone(orig), junk...)
				try(fmt.Sprintf("%s: %d random bytes appended", name, tail), files)
			}
			files := maps.Clone(tree.Files)
			delete(files, name)
			try(name+" deleted", files)
		}
	}
	t.Logf("%d reopened states", n)
}

// TestCrashLosesNewestSegment: segments created after the last sync may
// vanish with the directory entry that was never synced. What the roll
// sealed (and synced) must survive it.
func TestCrashLosesNewestSegment(t *testing.T) {
	cfg := Config{SegmentBytes: 2500, IndexIntervalBytes: 256}
	root := crashdisk.TempDir(t)
	src := filepath.Join(root, "src")
	l := mustOpen(t, src, cfg)
	m := &model{}
	rng := rand.New(rand.NewPCG(94, 95))
	fill(t, l, m, rng, 10, 1000)
	require.NoError(t, l.Sync())
	before := len(l.Segments())
	for len(l.Segments()) < before+2 { // two rolls since the sync
		fill(t, l, m, rng, 1, 2000)
	}
	fill(t, l, m, rng, 2, 3000)
	segs := l.Segments()
	newest := segs[len(segs)-1]
	require.NoError(t, crashdisk.Copy(src, filepath.Join(root, "crash")))
	require.NoError(t, l.Close())
	for _, p := range segmentFiles("crash", newest.BaseOffset) {
		require.NoError(t, os.Remove(filepath.Join(root, p)))
	}
	dir := filepath.Join(root, "crash")
	l2, err := Open(dir, cfg, zerolog.Nop())
	require.NoError(t, err)
	require.Equal(t, newest.BaseOffset, l2.EndOffset(), "everything the roll sealed survives")
	cm := checkRecovered(t, l2, m, newest.BaseOffset, m.start, m.start)
	continueAfterCrash(t, l2, dir, cfg, cm, rng)
}

// TestCrashPowerLoss runs random workloads (appends, syncs, rolls,
// retention, truncation, clean restarts), then simulates a power loss
// that keeps only what partlog made durable plus any prefix of the rest,
// and checks the reopened log. EDDY_CRASH_ITERATIONS runs more workloads;
// EDDY_CRASH_SEED replays one.
func TestCrashPowerLoss(t *testing.T) {
	seed := crashdisk.Seed(t)
	iterations := crashdisk.Iterations(t, 20)
	states := 0
	for it := range iterations {
		rng := rand.New(rand.NewPCG(seed, uint64(it)))
		states += powerLossIteration(t, rng, it)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d workloads, %d crash states reopened", iterations, states)
}

func powerLossIteration(t *testing.T, rng *rand.Rand, it int) int {
	root := crashdisk.TempDir(t)
	const sub = "log"
	dir := filepath.Join(root, sub)
	cfg := Config{SegmentBytes: int64(1500 + rng.IntN(4000)), IndexIntervalBytes: 64 + rng.IntN(512)}
	l := mustOpen(t, dir, cfg)
	disk, err := crashdisk.New(root)
	require.NoError(t, err)
	m := &model{}
	durableEnd := int64(0)
	var trace []string
	now := int64(1000)
	ops := 20 + rng.IntN(100)
	for range ops {
		now += 10
		switch r := rng.IntN(100); {
		case r < 75:
			segs := l.Segments()
			ts := now + int64(rng.IntN(500)) - 100
			appendBatch(t, l, m, simpleBatch(t, 1+rng.IntN(5), 10+rng.IntN(300), ts, fmt.Sprint(m.end())), -1, now)
			after := l.Segments()
			if after[len(after)-1].BaseOffset != segs[len(segs)-1].BaseOffset {
				// A roll syncs the sealed segment's data and indexes and
				// the directory that names it, then creates the next one.
				sealed := segs[len(segs)-1].BaseOffset
				require.NoError(t, disk.SyncedFiles(segmentFiles(sub, sealed)...))
				require.NoError(t, disk.SyncedNames(namesExcept(t, dir, sub, after[len(after)-1].BaseOffset)...))
				durableEnd = max(durableEnd, after[len(after)-1].BaseOffset)
				trace = append(trace, fmt.Sprintf("append+roll→%d", m.end()))
			} else {
				trace = append(trace, fmt.Sprintf("append→%d", m.end()))
			}
		case r < 85:
			require.NoError(t, l.Sync())
			require.NoError(t, disk.Synced())
			durableEnd = m.end()
			trace = append(trace, "sync")
		case r < 90:
			off := m.start + rng.Int64N(m.end()-m.start+1)
			segs := len(l.Segments())
			require.NoError(t, l.AdvanceStart(off))
			m.start = max(m.start, off)
			// The start file is fsynced and renamed, the directory synced
			// before and after segments are deleted.
			if fileExists(filepath.Join(dir, startFileName)) {
				require.NoError(t, disk.SyncedFiles(filepath.Join(sub, startFileName)))
			}
			require.NoError(t, disk.SyncedDir(sub))
			trace = append(trace, fmt.Sprintf("advance-start %d (%d→%d segments)", off, segs, len(l.Segments())))
		case r < 93:
			bounds := batchBoundaries(m)
			off := bounds[rng.IntN(len(bounds))]
			segs := l.Segments()
			require.NoError(t, l.Truncate(off))
			m = truncated(m, off, segs[0].BaseOffset)
			durableEnd = min(durableEnd, off)
			after := l.Segments()
			last := after[len(after)-1].BaseOffset
			// Truncate fsyncs the segment it cuts (data and indexes), and
			// the directory when it deleted segments.
			require.NoError(t, disk.SyncedFiles(segmentFiles(sub, last)...))
			if len(after) < len(segs) || after[0].BaseOffset != segs[0].BaseOffset {
				require.NoError(t, disk.SyncedDir(sub))
			}
			if fileExists(filepath.Join(dir, startFileName)) {
				require.NoError(t, disk.SyncedFiles(filepath.Join(sub, startFileName)))
			}
			trace = append(trace, fmt.Sprintf("truncate %d", off))
		default:
			require.NoError(t, l.Close())
			l = mustOpen(t, dir, cfg)
			checkLog(t, l, m)
			require.NoError(t, disk.Synced())
			durableEnd = m.end()
			trace = append(trace, "restart")
		}
	}
	defer l.Close()
	states := 0
	for c := range 3 {
		dst := filepath.Join(root, fmt.Sprint("crash", c))
		desc, err := disk.Crash(rng, dst)
		require.NoError(t, err)
		ok := t.Run(fmt.Sprintf("workload%d/crash%d", it, c), func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("cfg %+v\nworkload: %s\ncrash: %s", cfg, strings.Join(trace, ", "), desc)
				}
			})
			l2, err := Open(filepath.Join(dst, sub), cfg, zerolog.Nop())
			require.NoError(t, err)
			cm := checkRecovered(t, l2, cloneModel(m), durableEnd, m.start, m.start)
			continueAfterCrash(t, l2, filepath.Join(dst, sub), cfg, cm, rng)
		})
		states++
		if !ok {
			break
		}
		require.NoError(t, os.RemoveAll(dst))
	}
	return states
}

func cloneModel(m *model) *model { return &model{start: m.start, batches: slices.Clone(m.batches)} }

// withBatch is m after appending b at m's end as appendBatch does.
func withBatch(t *testing.T, m *model, b []byte) *model {
	t.Helper()
	want := slices.Clone(b)
	require.NoError(t, RewriteBatch(want, m.end(), 3, -1))
	h, err := ParseBatchHeader(want)
	require.NoError(t, err)
	out := cloneModel(m)
	out.batches = append(out.batches, storedBatch{base: m.end(), last: h.LastOffset(), maxTs: h.MaxTimestamp, b: want})
	return out
}

// truncated is m after Log.Truncate(off) on a log whose first segment
// starts at firstBase: below it, the log is reset to an empty one.
func truncated(m *model, off, firstBase int64) *model {
	out := cloneModel(m)
	if off < firstBase {
		out.start, out.batches = off, nil
		return out
	}
	out.truncate(off)
	return out
}

// expectation is what a crash during an operation may leave: the log
// holds a prefix of m ending at or after durableEnd, starting between
// startLo and startHi; or, for Restore, the whole of alt instead.
type expectation struct {
	m                *model
	durableEnd       int64
	startLo, startHi int64
	alt              *model
}

// killCopy is the tree copied at one pass of a crash point.
type killCopy struct {
	point string
	dir   string
	want  expectation
}

// TestCrashPointsKillNine takes a copy of the files at every pass of the
// crash points of the write path (append, roll, sync, retention,
// truncation, reset, recovery's tail cut, the start-file and
// snapshot-restore renames) during a workload, as a SIGKILL there leaves
// them, and checks that each copy reopens to a consistent log that lost
// nothing written before the interrupted operation.
// EDDY_CRASH_ITERATIONS=N runs N/20 workloads (at least one).
func TestCrashPointsKillNine(t *testing.T) {
	seed := crashdisk.Seed(t)
	workloads := max(1, crashdisk.Iterations(t, 20)/20)
	for w := range workloads {
		t.Run(fmt.Sprint("workload", w), func(t *testing.T) {
			killNineWorkload(t, rand.New(rand.NewPCG(seed, uint64(w))))
		})
		if t.Failed() {
			return
		}
	}
}

func killNineWorkload(t *testing.T, rng *rand.Rand) {
	root := crashdisk.TempDir(t)
	part := filepath.Join(root, "part") // Restore works beside the log dir
	dir := filepath.Join(part, "live")
	cfg := Config{SegmentBytes: 3000, IndexIntervalBytes: 200}
	m := &model{}
	var want expectation
	var copies []killCopy
	hits := map[string]int{}
	restore := SetCrashHook(func(point string) {
		hits[point]++
		if (point == "partlog.append.written" || strings.HasPrefix(point, "partlog.sync.")) && hits[point]%6 != 0 {
			return // every sixth of the frequent ones is plenty
		}
		kc := killCopy{point: point, dir: filepath.Join(root, fmt.Sprintf("kill%d", len(copies))), want: want}
		kc.want.m = cloneModel(want.m) // m changes in place later
		require.NoError(t, crashdisk.Copy(part, kc.dir))
		copies = append(copies, kc)
	})
	defer restore()
	plain := func(m *model) expectation {
		return expectation{m: cloneModel(m), durableEnd: m.end(), startLo: m.start, startHi: m.start}
	}

	want = plain(m)
	l := mustOpen(t, dir, cfg)
	for round := range 6 {
		for range 16 {
			b := simpleBatch(t, 1+rng.IntN(4), 20+rng.IntN(300), int64(1000+round), fmt.Sprint(m.end()))
			next := withBatch(t, m, b)
			want = expectation{m: next, durableEnd: m.end(), startLo: m.start, startHi: m.start}
			base, err := l.Append(b, 3, -1, int64(1000+round))
			require.NoError(t, err)
			require.Equal(t, m.end(), base)
			m = next
		}
		want = plain(m)
		require.NoError(t, l.Sync())
		switch round {
		case 1: // retention inside a segment
			off := l.Segments()[2].BaseOffset + 1
			want = expectation{m: cloneModel(m), durableEnd: m.end(), startLo: m.start, startHi: off}
			require.NoError(t, l.AdvanceStart(off))
			m.start = off
		case 2: // cut back to a checkpoint, deleting segments
			bounds := batchBoundaries(m)
			off := bounds[len(bounds)/3]
			want = expectation{m: cloneModel(m), durableEnd: off, startLo: m.start, startHi: m.start}
			require.NoError(t, l.Truncate(off))
			m = truncated(m, off, l.Segments()[0].BaseOffset)
		case 3: // retention of everything: the active segment rolls
			want = expectation{m: cloneModel(m), durableEnd: m.end(), startLo: m.start, startHi: m.end()}
			require.NoError(t, l.AdvanceStart(m.end()))
			m.start = m.end()
		case 4: // cut below the first segment: the reset path
			off := l.Segments()[0].BaseOffset - 1
			want = expectation{m: cloneModel(m), durableEnd: off, startLo: off, startHi: m.start}
			next := truncated(m, off, l.Segments()[0].BaseOffset)
			require.NoError(t, l.Truncate(off))
			m = next
		case 5:
			// Recovery's own windows: reopen a torn copy with the hook on.
			want = plain(m)
			require.NoError(t, l.Close())
			segs := l.Segments()
			p := filepath.Join(dir, segmentName(segs[len(segs)-1].BaseOffset, logSuffix))
			st, err := os.Stat(p)
			require.NoError(t, err)
			last := m.batches[len(m.batches)-1]
			require.NoError(t, os.Truncate(p, st.Size()-int64(len(last.b))/2))
			m.batches = m.batches[:len(m.batches)-1]
			want = plain(m)
			l = mustOpen(t, dir, cfg)
			checkLog(t, l, m)

			// A snapshot of another log restored over this one.
			src := filepath.Join(root, "other")
			lo := mustOpen(t, src, cfg)
			om := &model{}
			fill(t, lo, om, rng, 30, 7000)
			snap, err := lo.Snapshot()
			require.NoError(t, err)
			var buf bytes.Buffer
			_, err = snap.WriteTo(&buf)
			require.NoError(t, err)
			require.NoError(t, snap.Close())
			require.NoError(t, lo.Close())
			want = plain(m)
			require.NoError(t, l.Close())
			want.alt = om
			l, err = Restore(dir, &buf, cfg, zerolog.Nop())
			require.NoError(t, err)
			m = om
			checkLog(t, l, m)
		}
	}
	want = plain(m)
	require.NoError(t, l.Close())
	restore()

	for _, point := range []string{
		"partlog.append.written", "partlog.roll.sealed", "partlog.roll.created",
		"partlog.sync.data", "partlog.sync.index",
		"partlog.advance.start-written", "partlog.advance.rolled", "partlog.advance.removed",
		"partlog.truncate.removed", "partlog.truncate.index-cut", "partlog.truncate.data-cut",
		"partlog.reset.start-written", "partlog.reset.removed", "partlog.reset.emptied",
		"partlog.open.tail-cut", "partlog.start-file.tmp-written",
		"partlog.restore.old-moved", "partlog.restore.swapped",
	} {
		require.Positive(t, hits[point], "crash point %s never passed", point)
	}
	for i, kc := range copies {
		t.Run(fmt.Sprintf("%d-%s", i, kc.point), func(t *testing.T) {
			dir := filepath.Join(kc.dir, "live")
			l, err := Open(dir, cfg, zerolog.Nop())
			require.NoError(t, err)
			w := kc.want
			if w.alt != nil && l.StartOffset() == w.alt.start && l.EndOffset() == w.alt.end() {
				w = expectation{m: w.alt, durableEnd: w.alt.end(), startLo: w.alt.start, startHi: w.alt.start}
			}
			cm := checkRecovered(t, l, w.m, w.durableEnd, w.startLo, w.startHi)
			if kc.point != "partlog.append.written" || i%10 == 0 {
				continueAfterCrash(t, l, dir, cfg, cm, rand.New(rand.NewPCG(uint64(i), 98)))
				return
			}
			end := l.EndOffset()
			base, err := l.Append(simpleBatch(t, 2, 30, 9500, "next"), 1, -1, 9500)
			require.NoError(t, err)
			require.Equal(t, end, base)
			require.NoError(t, l.Close())
		})
	}
	t.Logf("%d copies at %d crash points: %v", len(copies), len(hits), hits)
}

// TestRollSyncsDirectoryFirst: the sealed segment's name is durable before
// the next segment exists (no power loss can leave a gap between them).
// The power-loss model above takes this as given, so it is checked here.
func TestRollSyncsDirectoryFirst(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{SegmentBytes: 1000})
	defer l.Close()
	rolls := 0
	restore := SetCrashHook(func(point string) {
		if point == "partlog.roll.sealed" {
			rolls++
			require.False(t, l.dirDirty, "roll %d: the directory was not synced before the next segment", rolls)
		}
	})
	defer restore()
	fill(t, l, &model{}, rand.New(rand.NewPCG(98, 99)), 30, 1000)
	require.Greater(t, rolls, 2)
}

func TestParseCrashPoint(t *testing.T) {
	for _, tc := range []struct {
		in    string
		point string
		at    int64
		bad   bool
	}{
		{in: "partlog.append.written", point: "partlog.append.written", at: 1},
		{in: "fsm.update.begin:17", point: "fsm.update.begin", at: 17},
		{in: "*:3", point: "*", at: 3},
		{in: "x:0", bad: true},
		{in: "x:-2", bad: true},
		{in: "x:many", bad: true},
		{in: ":4", bad: true},
	} {
		point, at, err := parseCrashPoint(tc.in)
		if tc.bad {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.point, point)
		require.Equal(t, tc.at, at)
	}
}

// BenchmarkCrashPointUnarmed is the cost of a pass when EDDY_CRASHPOINT is
// not set.
func BenchmarkCrashPointUnarmed(b *testing.B) {
	for b.Loop() {
		CrashPoint("partlog.append.written")
	}
}
