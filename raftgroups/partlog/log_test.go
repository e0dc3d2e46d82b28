package partlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// model is what a Log should hold, kept by the tests independently.
type model struct {
	batches []storedBatch
	start   int64
}

type storedBatch struct {
	base, last, maxTs int64
	b                 []byte
}

func (m *model) end() int64 {
	if len(m.batches) == 0 {
		return m.start
	}
	return m.batches[len(m.batches)-1].last + 1
}

// read is the expected result of Log.Read.
func (m *model) read(off int64, maxBytes int) []byte {
	var out []byte
	for _, sb := range m.batches {
		if sb.last < off {
			continue
		}
		if len(out) > 0 && len(out)+len(sb.b) > maxBytes {
			break
		}
		out = append(out, sb.b...)
	}
	return out
}

// offsetForTimestamp is the brute-force answer to Log.OffsetForTimestamp.
func (m *model) offsetForTimestamp(ts int64) (int64, int64, bool) {
	for _, sb := range m.batches {
		if sb.last >= m.start && sb.maxTs >= ts {
			return max(sb.base, m.start), sb.maxTs, true
		}
	}
	return 0, 0, false
}

// truncate drops batches at or after end.
func (m *model) truncate(end int64) {
	for len(m.batches) > 0 && m.batches[len(m.batches)-1].base >= end {
		m.batches = m.batches[:len(m.batches)-1]
	}
	m.start = min(m.start, end)
}

func testLogger(t testing.TB) (zerolog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return zerolog.New(&syncWriter{w: &buf}), &buf
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func mustOpen(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg, zerolog.Nop())
	require.NoError(t, err)
	return l
}

// appendBatch appends b and records in m what the log must now hold.
func appendBatch(t testing.TB, l *Log, m *model, b []byte, appendTime, now int64) {
	t.Helper()
	base, err := l.Append(b, 3, appendTime, now)
	require.NoError(t, err)
	require.Equal(t, m.end(), base)
	want := slices.Clone(b)
	require.NoError(t, RewriteBatch(want, base, 3, appendTime))
	h, err := ParseBatchHeader(want)
	require.NoError(t, err)
	m.batches = append(m.batches, storedBatch{base: base, last: h.LastOffset(), maxTs: h.MaxTimestamp, b: want})
}

// fill appends n batches of 1-5 records and 10-400 byte values with
// timestamps that mostly grow but sometimes jump back.
func fill(t testing.TB, l *Log, m *model, rng *rand.Rand, n int, now int64) {
	t.Helper()
	for range n {
		ts := now + int64(rng.IntN(1000)) - 200
		b := simpleBatch(t, 1+rng.IntN(5), 10+rng.IntN(400), ts, fmt.Sprint(m.end()))
		appendBatch(t, l, m, b, -1, now)
		now += 10
	}
}

// checkLog verifies every observable of l against m.
func checkLog(t *testing.T, l *Log, m *model) {
	t.Helper()
	require.Equal(t, m.start, l.StartOffset(), "start offset")
	require.Equal(t, m.end(), l.EndOffset(), "end offset")
	var dst []byte
	for off := m.start; off < m.end(); off++ {
		for _, maxBytes := range []int{0, 1, 500, 3000, 1 << 20} {
			var err error
			dst, err = l.Read(off, maxBytes, dst[:0])
			require.NoError(t, err)
			require.Equal(t, m.read(off, maxBytes), dst, "read offset %d max %d", off, maxBytes)
		}
	}
	got, err := l.Read(m.end(), 100, nil)
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = l.Read(m.end()+1, 100, nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	if m.start > 0 {
		_, err = l.Read(m.start-1, 100, nil)
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
	}
	for _, sb := range m.batches {
		for _, ts := range []int64{sb.maxTs - 1, sb.maxTs, sb.maxTs + 1} {
			wantOff, wantTs, wantOK := m.offsetForTimestamp(ts)
			off, gotTs, ok, err := l.OffsetForTimestamp(ts)
			require.NoError(t, err)
			require.Equal(t, wantOK, ok, "ts %d", ts)
			require.Equal(t, wantOff, off, "offset for ts %d", ts)
			require.Equal(t, wantTs, gotTs, "timestamp for ts %d", ts)
		}
	}
	segs := l.Segments()
	var size int64
	for i, s := range segs {
		size += s.Size
		if i > 0 {
			require.Equal(t, segs[i-1].EndOffset, s.BaseOffset, "segments must be contiguous")
		}
	}
	require.Equal(t, size, l.Size())
	require.Equal(t, m.end(), segs[len(segs)-1].EndOffset)
}

func TestAppendReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 4096, IndexIntervalBytes: 300}
	l := mustOpen(t, dir, cfg)
	require.Equal(t, int64(0), l.EndOffset())
	m := &model{}
	rng := rand.New(rand.NewPCG(1, 2))
	fill(t, l, m, rng, 150, 1_000_000)
	checkLog(t, l, m)
	segs := l.Segments()
	require.Greater(t, len(segs), 10)
	for _, s := range segs {
		require.LessOrEqual(t, s.Size, int64(4096))
	}
	require.NoError(t, l.Sync())
	fill(t, l, m, rng, 20, 2_000_000)
	require.NoError(t, l.Close())
	_, err := l.Read(0, 1, nil)
	require.ErrorIs(t, err, ErrClosed)
	_, err = l.Append(simpleBatch(t, 1, 1, 0, "x"), 0, -1, 0)
	require.ErrorIs(t, err, ErrClosed)

	l = mustOpen(t, dir, cfg)
	defer l.Close()
	checkLog(t, l, m)
	reopened := l.Segments()
	require.Len(t, reopened, len(l.Segments()))
	fill(t, l, m, rng, 30, 3_000_000)
	checkLog(t, l, m)
}

func TestReadCrossesSegmentsAndKIP74(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{SegmentBytes: 1000})
	defer l.Close()
	m := &model{}
	small := simpleBatch(t, 2, 100, 10, "s")   // ~300 bytes
	big := simpleBatch(t, 3, 2000, 20, "b")    // bigger than a segment
	huge := simpleBatch(t, 2, 40_000, 30, "h") // over Append's copy threshold
	for _, b := range [][]byte{small, small, small, big, small, big, big, small, huge, small} {
		appendBatch(t, l, m, b, -1, 0)
	}
	segs := l.Segments()
	require.Len(t, segs, 8, "a batch above SegmentBytes gets a segment of its own")
	checkLog(t, l, m)

	// From offset 0 with room for everything: all batches, across segments.
	got, err := l.Read(0, 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, m.read(0, 1<<20), got)
	hs, err := ValidateBatches(got, 0)
	require.NoError(t, err)
	require.Len(t, hs, 10)

	// An oversized first batch comes back whole even with maxBytes 1.
	got, err = l.Read(m.batches[3].base+1, 1, nil)
	require.NoError(t, err)
	require.Equal(t, m.batches[3].b, got)
}

func TestRollByAge(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{SegmentMs: 1000})
	defer l.Close()
	m := &model{}
	for _, now := range []int64{5000, 5500, 5999, 6000, 6999, 7000, 7001, 20000} {
		appendBatch(t, l, m, simpleBatch(t, 1, 10, now, "x"), -1, now)
	}
	var firsts []int64
	for _, s := range l.Segments() {
		firsts = append(firsts, s.FirstAppend)
	}
	require.Equal(t, []int64{5000, 6000, 7000, 20000}, firsts)
	checkLog(t, l, m)
}

func TestOffsetForTimestamp(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 2000, IndexIntervalBytes: 100}
	l := mustOpen(t, dir, cfg)
	m := &model{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 120 {
		ts := int64(i*10) + int64(rng.IntN(300)) - 100 // mostly rising, with stragglers
		if i%17 == 0 {
			ts = 100_000 // a far-future outlier the max must remember
		}
		appendBatch(t, l, m, simpleBatch(t, 1+rng.IntN(3), 20, ts, "t"), -1, 0)
		if i%40 == 0 {
			require.NoError(t, l.Sync())
		}
	}
	check := func() {
		for ts := int64(-200); ts < 1500; ts += 7 {
			wantOff, wantTs, wantOK := m.offsetForTimestamp(ts)
			off, gotTs, ok, err := l.OffsetForTimestamp(ts)
			require.NoError(t, err)
			require.Equal(t, wantOK, ok, "ts %d", ts)
			require.Equal(t, wantOff, off, "ts %d", ts)
			require.Equal(t, wantTs, gotTs, "ts %d", ts)
		}
		_, _, ok, err := l.OffsetForTimestamp(100_001)
		require.NoError(t, err)
		require.False(t, ok)
		require.Equal(t, int64(100_000), l.MaxTimestamp())
	}
	check()
	mid := m.batches[50].base + 1 // inside a batch
	require.NoError(t, l.AdvanceStart(mid))
	m.start = mid
	check()
	require.NoError(t, l.Close())
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	check()
}

func TestTruncate(t *testing.T) {
	cfg := Config{SegmentBytes: 3000, IndexIntervalBytes: 200}
	build := func(t *testing.T) (string, *Log, *model) {
		dir := t.TempDir()
		l := mustOpen(t, dir, cfg)
		m := &model{}
		fill(t, l, m, rand.New(rand.NewPCG(5, 6)), 80, 1000)
		require.NoError(t, l.Sync())
		return dir, l, m
	}
	_, l, m := build(t)
	segs := l.Segments()
	for _, tc := range []struct {
		name string
		end  int64
	}{
		{"last batch", m.batches[len(m.batches)-1].base},
		{"inside the active segment", m.batches[len(m.batches)-3].base},
		{"segment base", segs[len(segs)-2].BaseOffset},
		{"middle of an old segment", m.batches[10].base},
		{"first batch", 0},
		{"end is a no-op", m.end()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, l, m := build(t)
			require.NoError(t, l.Truncate(tc.end))
			m.truncate(tc.end)
			checkLog(t, l, m)
			fill(t, l, m, rand.New(rand.NewPCG(7, 8)), 10, 5000)
			checkLog(t, l, m)
			require.NoError(t, l.Close())
			l = mustOpen(t, dir, cfg)
			defer l.Close()
			checkLog(t, l, m)
		})
	}
	require.NoError(t, l.Close())

	t.Run("errors", func(t *testing.T) {
		_, l, m := build(t)
		defer l.Close()
		err := l.Truncate(m.batches[5].base + 1)
		if m.batches[5].last > m.batches[5].base {
			require.ErrorIs(t, err, ErrNotBatchBoundary)
		}
		require.ErrorIs(t, l.Truncate(m.end()+1), ErrOffsetOutOfRange)
		checkLog(t, l, m)
	})

	t.Run("below start", func(t *testing.T) {
		dir, l, m := build(t)
		segs := l.Segments()
		require.NoError(t, l.AdvanceStart(segs[3].BaseOffset+1))
		require.NoError(t, l.Truncate(segs[1].BaseOffset))
		m.batches, m.start = nil, segs[1].BaseOffset
		checkLog(t, l, m)
		fill(t, l, m, rand.New(rand.NewPCG(9, 9)), 5, 0)
		require.NoError(t, l.Close())
		l = mustOpen(t, dir, cfg)
		defer l.Close()
		checkLog(t, l, m)
	})
}

func TestAdvanceStart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 3000, IndexIntervalBytes: 200}
	l := mustOpen(t, dir, cfg)
	m := &model{}
	fill(t, l, m, rand.New(rand.NewPCG(10, 11)), 60, 1000)
	segs := l.Segments()
	require.Greater(t, len(segs), 4)

	// Mid-segment and mid-batch: segments wholly below go, the one holding
	// the new start stays.
	target := segs[2].BaseOffset + 2
	require.NoError(t, l.AdvanceStart(target))
	m.start = target
	checkLog(t, l, m)
	require.Equal(t, segs[2].BaseOffset, l.Segments()[0].BaseOffset)
	require.NoFileExists(t, filepath.Join(dir, segmentName(segs[1].BaseOffset, logSuffix)))
	require.NoFileExists(t, filepath.Join(dir, segmentName(segs[1].BaseOffset, indexSuffix)))

	// Backwards is a no-op; beyond the end is an error.
	require.NoError(t, l.AdvanceStart(1))
	require.Equal(t, target, l.StartOffset())
	require.ErrorIs(t, l.AdvanceStart(m.end()+1), ErrOffsetOutOfRange)

	require.NoError(t, l.Close())
	l = mustOpen(t, dir, cfg)
	checkLog(t, l, m)

	// At the end: the active segment rolls and everything goes.
	end := m.end()
	require.NoError(t, l.AdvanceStart(end))
	m.start, m.batches = end, nil
	checkLog(t, l, m)
	require.Equal(t, []SegmentInfo{{BaseOffset: end, EndOffset: end, MaxTimestamp: -1, FirstAppend: -1}}, l.Segments())
	require.Equal(t, int64(0), l.Size())
	names, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, names, 4, "one segment's three files and the start offset file")
	fill(t, l, m, rand.New(rand.NewPCG(12, 13)), 5, 5000)
	require.NoError(t, l.Close())
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	checkLog(t, l, m)
}

func TestRetentionPoint(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{SegmentBytes: 1000})
	defer l.Close()
	m := &model{}
	// Five segments of two ~330-byte batches each, with max timestamps
	// 100, 200, 300, 400, 500 (the active one last).
	for seg := range 5 {
		for range 2 {
			appendBatch(t, l, m, simpleBatch(t, 1, 300, int64(100*(seg+1)), "r"), -1, 0)
		}
	}
	segs := l.Segments()
	require.Len(t, segs, 5)
	segSize := segs[0].Size
	base := func(i int) int64 { return segs[i].BaseOffset }
	for _, tc := range []struct {
		name                 string
		now, retMs, retBytes int64
		want                 int64
		comment              string
	}{
		{"unlimited", 10_000, -1, -1, 0, ""},
		{"nothing old enough", 550, 500, -1, 0, "max 100 is not < 50"},
		{"two expired", 350, 100, -1, base(2), "100 and 200 < 250"},
		{"boundary is exclusive", 300, 100, -1, base(1), "200 is not < 200"},
		{"all expired incl active", 1000, 100, -1, m.end(), ""},
		{"size keeps at least retention", 0, -1, 3 * segSize, base(2), ""},
		{"size exact multiple", 0, -1, 3*segSize + 1, base(1), ""},
		{"size zero drops all", 0, -1, 0, m.end(), ""},
		{"time then size", 250, 100, 2 * segSize, base(3), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, l.RetentionPoint(tc.now, tc.retMs, tc.retBytes), tc.comment)
		})
	}
	// The result never goes below the start.
	require.NoError(t, l.AdvanceStart(base(3)+1))
	require.Equal(t, base(3)+1, l.RetentionPoint(250, 100, -1))
	// Applying a result deletes exactly the eligible segments.
	p := l.RetentionPoint(1000, 100, -1)
	require.NoError(t, l.AdvanceStart(p))
	require.Len(t, l.Segments(), 1)
	require.Equal(t, int64(0), l.Size())
	// An empty active segment never counts.
	require.Equal(t, p, l.RetentionPoint(1_000_000, 0, 0))
}

func TestLogAppendTime(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{})
	defer l.Close()
	b := encodeBatch(t, batchSpec{baseTs: 10, codec: CodecGzip, recs: sampleRecs()})
	orig := slices.Clone(b)
	base, err := l.Append(b, 7, 123456, 999)
	require.NoError(t, err)
	require.Equal(t, orig, b, "Append must not modify the caller's batch")
	got, err := l.Read(base, 1<<20, nil)
	require.NoError(t, err)
	hs, err := ValidateBatches(got, 0)
	require.NoError(t, err, "the stored batch must have a valid CRC")
	require.True(t, hs[0].LogAppendTime())
	require.Equal(t, int64(123456), hs[0].MaxTimestamp)
	require.Equal(t, int32(7), hs[0].PartitionLeaderEpoch)
	n := 0
	require.NoError(t, DecodeRecords(got, 1<<20, func(r Record) error {
		require.Equal(t, int64(123456), r.Timestamp)
		n++
		return nil
	}))
	require.Equal(t, len(sampleRecs()), n)
	off, ts, ok, err := l.OffsetForTimestamp(123456)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(0), off)
	require.Equal(t, int64(123456), ts)
}

func TestAppendCompressed(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{SegmentBytes: 4000})
	defer l.Close()
	m := &model{}
	for _, c := range allCodecs {
		appendBatch(t, l, m, encodeBatch(t, batchSpec{baseTs: 5, codec: c.codec, xerial: c.xerial, recs: sampleRecs()}), -1, 0)
	}
	checkLog(t, l, m)
	for i, sb := range m.batches {
		got, err := l.Read(sb.base, 1, nil)
		require.NoError(t, err)
		recs, err := decodeAll(t, got, 1<<20)
		require.NoError(t, err, allCodecs[i].name)
		require.Len(t, recs, len(sampleRecs()))
		require.Equal(t, sb.base+3, recs[3].Offset)
		require.Equal(t, sampleRecs()[5].value, recs[5].Value)
	}
}

func TestAppendRejects(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{})
	defer l.Close()
	good := simpleBatch(t, 2, 10, 0, "g")
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"two batches", slices.Concat(good, good), ErrCorruptBatch},
		{"short", good[:len(good)-1], ErrCorruptBatch},
		{"header only", good[:40], ErrCorruptBatch},
		{"magic 1", func() []byte { b := slices.Clone(good); b[offMagic] = 1; return b }(), ErrUnsupportedMagic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Append(tc.b, 0, -1, 0)
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, int64(0), l.EndOffset())
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{SegmentBytes: -1}, "SegmentBytes"},
		{Config{SegmentBytes: 1 << 31}, "SegmentBytes"},
		{Config{SegmentMs: -5}, "SegmentMs"},
		{Config{IndexIntervalBytes: -1}, "IndexIntervalBytes"},
	} {
		err := tc.cfg.Validate()
		require.ErrorIs(t, err, ErrInvalidConfig)
		require.Contains(t, err.Error(), tc.field)
		_, err = Open(t.TempDir(), tc.cfg, zerolog.Nop())
		require.ErrorIs(t, err, ErrInvalidConfig)
	}
	require.NoError(t, Config{}.Validate())
}

// crashCopy copies dir as a crashed process would leave it: whatever was
// written, synced or not, with no Close.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

func lastSegmentPath(t *testing.T, dir string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	slices.Sort(logs)
	return logs[len(logs)-1]
}

func TestRecoveryTornTail(t *testing.T) {
	cfg := Config{SegmentBytes: 5000, IndexIntervalBytes: 256}
	damage := []struct {
		name  string
		apply func(t *testing.T, path string, last storedBatch, lastPos int64)
		keeps bool // the last batch survives
	}{
		{"garbage after the last batch", func(t *testing.T, path string, _ storedBatch, _ int64) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.Write(bytes.Repeat([]byte{0xab}, 100))
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, true},
		{"zeros after the last batch", func(t *testing.T, path string, _ storedBatch, _ int64) {
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, st.Size()+4096))
		}, true},
		{"last batch cut in half", func(t *testing.T, path string, last storedBatch, lastPos int64) {
			require.NoError(t, os.Truncate(path, lastPos+int64(len(last.b)/2)))
		}, false},
		{"last batch cut inside its header", func(t *testing.T, path string, _ storedBatch, lastPos int64) {
			require.NoError(t, os.Truncate(path, lastPos+20))
		}, false},
		{"crc byte flipped", func(t *testing.T, path string, _ storedBatch, lastPos int64) {
			flipByte(t, path, lastPos+offCRC+1)
		}, false},
		{"record byte flipped", func(t *testing.T, path string, last storedBatch, lastPos int64) {
			flipByte(t, path, lastPos+int64(len(last.b))-3)
		}, false},
	}
	for _, crash := range []bool{false, true} {
		for _, d := range damage {
			t.Run(fmt.Sprintf("%s/crash=%v", d.name, crash), func(t *testing.T) {
				dir := t.TempDir()
				l := mustOpen(t, dir, cfg)
				m := &model{}
				fill(t, l, m, rand.New(rand.NewPCG(20, 21)), 40, 1000)
				if crash {
					require.NoError(t, l.Sync())
					fill(t, l, m, rand.New(rand.NewPCG(22, 23)), 3, 5000) // unsynced
					dir = crashCopy(t, dir)
					defer l.Close()
				} else {
					require.NoError(t, l.Close())
				}
				segs := l.Segments()
				last := m.batches[len(m.batches)-1]
				lastPos := segs[len(segs)-1].Size - int64(len(last.b))
				d.apply(t, lastSegmentPath(t, dir), last, lastPos)

				logger, logs := testLogger(t)
				l2, err := Open(dir, cfg, logger)
				require.NoError(t, err)
				defer l2.Close()
				if !d.keeps {
					m.batches = m.batches[:len(m.batches)-1]
				}
				checkLog(t, l2, m)
				require.Equal(t, 1, strings.Count(logs.String(), "torn or corrupt tail truncated"), logs.String())
				require.Contains(t, logs.String(), fmt.Sprintf(`"offset":%d`, m.end()))
				st, err := os.Stat(lastSegmentPath(t, dir))
				require.NoError(t, err)
				require.Equal(t, l2.Segments()[len(segs)-1].Size, st.Size(), "the file is cut, not just ignored")

				fill(t, l2, m, rand.New(rand.NewPCG(24, 25)), 5, 9000)
				require.NoError(t, l2.Close())
				l3 := mustOpen(t, dir, cfg)
				defer l3.Close()
				checkLog(t, l3, m)
			})
		}
	}
}

// TestCrashThenTruncate is the Raft recovery path: reopen after a crash,
// then cut back to the checkpoint taken at the last Sync.
func TestCrashThenTruncate(t *testing.T) {
	cfg := Config{SegmentBytes: 3000, IndexIntervalBytes: 256}
	dir := t.TempDir()
	l := mustOpen(t, dir, cfg)
	defer l.Close()
	m := &model{}
	rng := rand.New(rand.NewPCG(60, 61))
	fill(t, l, m, rng, 30, 1000)
	require.NoError(t, l.Sync())
	checkpoint := m.end()
	fill(t, l, m, rng, 40, 2000) // several segments past the checkpoint, unsynced
	crashed := crashCopy(t, dir)

	l2 := mustOpen(t, crashed, cfg)
	require.NoError(t, l2.Truncate(checkpoint))
	m.truncate(checkpoint)
	checkLog(t, l2, m)
	fill(t, l2, m, rng, 10, 3000)
	require.NoError(t, l2.Close())
	l3 := mustOpen(t, crashed, cfg)
	defer l3.Close()
	checkLog(t, l3, m)
}

func flipByte(t *testing.T, path string, pos int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, pos)
	require.NoError(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, pos)
	require.NoError(t, err)
}

func TestRecoveryRebuildsIndexes(t *testing.T) {
	cfg := Config{SegmentBytes: 5000, IndexIntervalBytes: 256}
	dir := t.TempDir()
	l := mustOpen(t, dir, cfg)
	m := &model{}
	fill(t, l, m, rand.New(rand.NewPCG(30, 31)), 60, 1000)
	require.NoError(t, l.Close())
	indexes, err := filepath.Glob(filepath.Join(dir, "*.index"))
	require.NoError(t, err)
	require.Greater(t, len(indexes), 2)
	before := map[string][]byte{}
	for _, p := range indexes {
		before[p], err = os.ReadFile(p)
		require.NoError(t, err)
	}

	for _, tc := range []struct {
		name  string
		apply func(t *testing.T)
	}{
		{"all deleted", func(t *testing.T) {
			for _, suffix := range []string{"*.index", "*.timeindex"} {
				ps, _ := filepath.Glob(filepath.Join(dir, suffix))
				for _, p := range ps {
					require.NoError(t, os.Remove(p))
				}
			}
		}},
		{"garbage in a sealed index", func(t *testing.T) {
			require.NoError(t, os.WriteFile(indexes[1], []byte("not an index at all"), 0o644))
		}},
		{"sealed time index out of order", func(t *testing.T) {
			p := strings.TrimSuffix(indexes[0], indexSuffix) + timeIndexSuffix
			require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{0xff}, 2*timeEntrySize), 0o644))
		}},
		{"index entry pointing at the wrong batch", func(t *testing.T) {
			b := slices.Clone(before[indexes[0]])
			b[len(b)-1]++ // position of the last entry moves off a batch start
			require.NoError(t, os.WriteFile(indexes[0], b, 0o644))
		}},
		{"last index torn", func(t *testing.T) {
			last := indexes[len(indexes)-1]
			require.NoError(t, os.WriteFile(last, append(slices.Clone(before[last]), 1, 2, 3), 0o644))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.apply(t)
			logger, logs := testLogger(t)
			l, err := Open(dir, cfg, logger)
			require.NoError(t, err)
			if tc.name != "last index torn" {
				require.Contains(t, logs.String(), "index rebuilt")
			}
			checkLog(t, l, m)
			require.NoError(t, l.Close())
			for _, p := range indexes {
				got, err := os.ReadFile(p)
				require.NoError(t, err)
				require.Equal(t, before[p], got, "rebuilt %s", filepath.Base(p))
			}
		})
	}
}

func TestRecoveryStrict(t *testing.T) {
	cfg := Config{SegmentBytes: 3000, IndexIntervalBytes: 256}
	build := func(t *testing.T) (string, *model, []SegmentInfo) {
		dir := t.TempDir()
		l := mustOpen(t, dir, cfg)
		m := &model{}
		fill(t, l, m, rand.New(rand.NewPCG(40, 41)), 40, 1000)
		segs := l.Segments()
		require.NoError(t, l.Close())
		return dir, m, segs
	}
	t.Run("sealed segment cut short", func(t *testing.T) {
		dir, _, segs := build(t)
		p := filepath.Join(dir, segmentName(segs[1].BaseOffset, logSuffix))
		require.NoError(t, os.Truncate(p, segs[1].Size-10))
		_, err := Open(dir, cfg, zerolog.Nop())
		require.ErrorIs(t, err, ErrCorruptLog)
		require.Contains(t, err.Error(), segmentName(segs[1].BaseOffset, logSuffix))
	})
	t.Run("sealed segment with a bad batch and no index", func(t *testing.T) {
		dir, _, segs := build(t)
		flipByte(t, filepath.Join(dir, segmentName(segs[1].BaseOffset, logSuffix)), 100)
		require.NoError(t, os.Remove(filepath.Join(dir, segmentName(segs[1].BaseOffset, indexSuffix))))
		_, err := Open(dir, cfg, zerolog.Nop())
		require.ErrorIs(t, err, ErrCorruptLog)
		require.Contains(t, err.Error(), segmentName(segs[1].BaseOffset, logSuffix))
		require.Contains(t, err.Error(), "crc32c mismatch")
	})
	t.Run("missing middle segment", func(t *testing.T) {
		dir, _, segs := build(t)
		require.NoError(t, os.Remove(filepath.Join(dir, segmentName(segs[2].BaseOffset, logSuffix))))
		_, err := Open(dir, cfg, zerolog.Nop())
		require.ErrorIs(t, err, ErrCorruptLog)
		require.Contains(t, err.Error(), segmentName(segs[1].BaseOffset, logSuffix))
		require.Contains(t, err.Error(), segmentName(segs[3].BaseOffset, logSuffix))
		// Orphaned indexes of the missing segment were cleaned up, nothing
		// else was touched.
		_, err = os.Stat(filepath.Join(dir, segmentName(segs[1].BaseOffset, logSuffix)))
		require.NoError(t, err)
	})
	t.Run("segments below a durable start are dropped unread", func(t *testing.T) {
		// What a crash inside AdvanceStart(end) can leave: the new start is
		// durable, the active segment was rolled without an fsync (its tail
		// torn) and not yet deleted.
		dir, m, segs := build(t)
		end := m.end()
		require.NoError(t, writeStartFile(dir, end))
		last := filepath.Join(dir, segmentName(segs[len(segs)-1].BaseOffset, logSuffix))
		require.NoError(t, os.Truncate(last, segs[len(segs)-1].Size-7))
		require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(end, logSuffix)), nil, 0o644))
		l, err := Open(dir, cfg, zerolog.Nop())
		require.NoError(t, err)
		defer l.Close()
		checkLog(t, l, &model{start: end})
		require.Len(t, l.Segments(), 1)
	})
	t.Run("start beyond the recovered end is clamped", func(t *testing.T) {
		dir, m, _ := build(t)
		require.NoError(t, writeStartFile(dir, m.end()+50))
		logger, logs := testLogger(t)
		l, err := Open(dir, cfg, logger)
		require.NoError(t, err)
		defer l.Close()
		require.Contains(t, logs.String(), "clamped")
		checkLog(t, l, &model{start: m.end()})
	})
	t.Run("damaged start offset file", func(t *testing.T) {
		dir, _, _ := build(t)
		require.NoError(t, os.WriteFile(filepath.Join(dir, startFileName), []byte("junk"), 0o644))
		_, err := Open(dir, cfg, zerolog.Nop())
		require.ErrorIs(t, err, ErrCorruptLog)
		require.Contains(t, err.Error(), startFileName)
	})
}

func TestSnapshotRestore(t *testing.T) {
	cfg := Config{SegmentBytes: 3000, IndexIntervalBytes: 256}
	src := mustOpen(t, t.TempDir(), cfg)
	defer src.Close()
	m := &model{}
	fill(t, src, m, rand.New(rand.NewPCG(50, 51)), 60, 1000)
	require.NoError(t, src.AdvanceStart(m.batches[15].base+1))
	m.start = m.batches[15].base + 1

	snap, err := src.Snapshot()
	require.NoError(t, err)
	// Changes after the snapshot must not leak into it.
	later := &model{start: m.start, batches: slices.Clone(m.batches)}
	fill(t, src, later, rand.New(rand.NewPCG(52, 53)), 30, 5000)
	require.NoError(t, src.AdvanceStart(later.batches[40].base))
	later.start = later.batches[40].base

	var stream bytes.Buffer
	n, err := snap.WriteTo(&stream)
	require.NoError(t, err)
	require.Equal(t, int64(stream.Len()), n)
	require.NoError(t, snap.Close())
	raw := slices.Clone(stream.Bytes())
	stream.WriteString("caller's next frame")

	parent := t.TempDir()
	dir := filepath.Join(parent, "p0")
	// Something already there gets replaced.
	old := mustOpen(t, dir, cfg)
	fill(t, old, &model{}, rand.New(rand.NewPCG(54, 55)), 5, 0)
	require.NoError(t, old.Close())

	dst, err := Restore(dir, &stream, cfg, zerolog.Nop())
	require.NoError(t, err)
	require.Equal(t, "caller's next frame", stream.String(), "Restore must consume exactly the snapshot")
	checkLog(t, dst, m)
	require.NoError(t, dst.Close())
	ents, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary directories left behind")

	dst = mustOpen(t, dir, cfg)
	checkLog(t, dst, m)
	fill(t, dst, m, rand.New(rand.NewPCG(56, 57)), 5, 9000)
	checkLog(t, dst, m)
	require.NoError(t, dst.Close())
	checkLog(t, src, later)

	t.Run("damaged streams leave the log alone", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			mut  func([]byte) []byte
		}{
			{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
			{"header", func(b []byte) []byte { b[14] ^= 1; return b }},
			{"segment bytes", func(b []byte) []byte { b[snapHeaderSize+snapSegHeadSize+100] ^= 1; return b }},
			{"empty", func(b []byte) []byte { return nil }},
			{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := Restore(dir, bytes.NewReader(tc.mut(slices.Clone(raw))), cfg, zerolog.Nop())
				require.ErrorIs(t, err, ErrBadSnapshot)
				l := mustOpen(t, dir, cfg)
				defer l.Close()
				checkLog(t, l, m)
			})
		}
	})
}

func TestConcurrentReaders(t *testing.T) {
	cfg := Config{SegmentBytes: 20_000, IndexIntervalBytes: 512}
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	const batches = 1500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 99))
			var dst []byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				start, end := l.StartOffset(), l.EndOffset()
				if end == start {
					continue
				}
				off := start + rng.Int64N(end-start)
				var err error
				dst, err = l.Read(off, 1+rng.IntN(40_000), dst[:0])
				if err != nil {
					if off < l.StartOffset() {
						continue // the start moved past off meanwhile
					}
					errs <- fmt.Errorf("read %d: %w", off, err)
					return
				}
				hs, err := ValidateBatches(dst, 0)
				if err != nil {
					errs <- fmt.Errorf("read %d: %w", off, err)
					return
				}
				if hs[0].BaseOffset > off || hs[0].LastOffset() < off {
					errs <- fmt.Errorf("read %d: first batch holds [%d, %d]", off, hs[0].BaseOffset, hs[0].LastOffset())
					return
				}
				for i := 1; i < len(hs); i++ {
					if hs[i].BaseOffset != hs[i-1].LastOffset()+1 {
						errs <- fmt.Errorf("read %d: gap after batch %d", off, i-1)
						return
					}
				}
				if _, _, _, err := l.OffsetForTimestamp(int64(rng.IntN(batches))); err != nil {
					errs <- err
					return
				}
				_ = l.Segments()
			}
		}()
	}
	for i := range batches {
		b := simpleBatch(t, 1+i%4, 100, int64(i), "c")
		if _, err := l.Append(b, 1, -1, int64(i)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			require.NoError(t, l.Sync())
			require.NoError(t, l.AdvanceStart(l.RetentionPoint(0, -1, 60_000)))
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Relative offsets are uint32: a segment must roll before one would
// overflow, even when every batch is small.
func TestRollOnRelativeOffsetOverflow(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Config{})
	b := simpleBatch(t, 1, 10, 0, "wide")
	// Claim MaxInt32 records; Append checks counts against each other, and
	// offsets are what this test is about.
	putU32 := func(off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	putU32(offRecordCount, 1<<31-1)
	putU32(offLastOffsetDelta, 1<<31-2)
	fixCRC(b)
	var bases []int64
	for range 3 {
		base, err := l.Append(b, 0, -1, 0)
		require.NoError(t, err)
		bases = append(bases, base)
	}
	require.Equal(t, []int64{0, 1<<31 - 1, 2 * (1<<31 - 1)}, bases)
	require.Len(t, l.Segments(), 2)
	require.Equal(t, bases[2], l.Segments()[1].BaseOffset)
	check := func(l *Log) {
		for i, base := range bases {
			for _, off := range []int64{base, base + 1<<30, base + 1<<31 - 2} {
				got, err := l.Read(off, 1, nil)
				require.NoError(t, err)
				h, err := ParseBatchHeader(got)
				require.NoError(t, err, "read %d, end %d", off, l.EndOffset())
				require.Equal(t, bases[i], h.BaseOffset, "read %d", off)
			}
		}
	}
	check(l)
	require.NoError(t, l.Close())
	l = mustOpen(t, dir, Config{})
	defer l.Close()
	check(l)
}

// A disk that lost data the index still points at: the index entries past
// the cut are dropped and the torn batch goes, whatever lay before stays.
func TestRecoveryIndexAheadOfData(t *testing.T) {
	cfg := Config{SegmentBytes: 20_000, IndexIntervalBytes: 256}
	dir := t.TempDir()
	l := mustOpen(t, dir, cfg)
	m := &model{}
	fill(t, l, m, rand.New(rand.NewPCG(70, 71)), 120, 1000)
	require.NoError(t, l.Close())
	segs := l.Segments()
	lastSeg := segs[len(segs)-1]
	require.Greater(t, lastSeg.Size, int64(5000))
	cut := lastSeg.Size / 2
	require.NoError(t, os.Truncate(lastSegmentPath(t, dir), cut))

	// Keep the batches that end at or before the cut.
	pos := int64(0)
	keep := 0
	for i, sb := range m.batches {
		if sb.base < lastSeg.BaseOffset {
			keep = i + 1
			continue
		}
		if pos+int64(len(sb.b)) > cut {
			break
		}
		pos += int64(len(sb.b))
		keep = i + 1
	}
	m.batches = m.batches[:keep]

	logger, logs := testLogger(t)
	l, err := Open(dir, cfg, logger)
	require.NoError(t, err)
	defer l.Close()
	checkLog(t, l, m)
	require.Contains(t, logs.String(), "torn or corrupt tail truncated")
}
