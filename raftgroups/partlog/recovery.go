package partlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rs/zerolog"
)

// startFileName holds the log start offset when it is above the first
// segment's base (after AdvanceStart): 8 bytes big-endian + CRC32C of them.
const startFileName = "log-start-offset"

// tmpSuffix marks files written then renamed into place; leftovers are
// deleted by Open.
const tmpSuffix = ".tmp"

// open opens or creates the log in dir. With verifyAll (Restore) every
// segment is CRC-checked and its indexes rebuilt from scratch.
func open(dir string, cfg Config, logger zerolog.Logger, verifyAll bool) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, cfg: cfg.withDefaults(), logger: logger}
	if !verifyAll {
		if err := finishRestore(dir, logger); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("partlog: open %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("partlog: open %s: %w", dir, err)
	}
	var bases []int64
	logs := map[string]bool{}
	for _, e := range ents {
		if base, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
			logs[strings.TrimSuffix(e.Name(), logSuffix)] = true
		}
	}
	for _, e := range ents {
		name := e.Name()
		stem, isIndex := strings.CutSuffix(name, indexSuffix)
		if !isIndex {
			stem, isIndex = strings.CutSuffix(name, timeIndexSuffix)
		}
		// Orphan indexes are left by a crash while deleting a segment; temp
		// files by a crash before their rename.
		if (isIndex && !logs[stem]) || strings.HasSuffix(name, tmpSuffix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("partlog: open %s: remove leftover: %w", dir, err)
			}
			l.dirDirty = true
		}
	}
	slices.Sort(bases)

	storedStart, haveStart, err := readStartFile(dir)
	if err != nil {
		return nil, err
	}
	// Segments wholly below a durable start were on their way out when a
	// crash came; they are deleted unread, since AdvanceStart may have
	// rolled away from them without fsyncing their tails.
	for haveStart && len(bases) > 1 && bases[1] <= storedStart {
		for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if err := os.Remove(filepath.Join(dir, segmentName(bases[0], suffix))); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("partlog: open %s: remove segment below start: %w", dir, err)
			}
		}
		bases = bases[1:]
		l.dirDirty = true
	}
	ok := false
	defer func() {
		if !ok {
			for _, s := range l.segs {
				_ = s.close()
			}
		}
	}()
	if len(bases) == 0 {
		base := int64(0)
		if haveStart {
			base = storedStart
		}
		s, err := openSegmentFiles(dir, base, true, true)
		if err != nil {
			return nil, err
		}
		l.segs = []*segment{s}
		l.dirDirty = true
	}
	w := newWalker()
	for i, base := range bases {
		s, err := l.loadSegment(w, base, i == len(bases)-1, verifyAll)
		if s != nil {
			l.segs = append(l.segs, s)
		}
		if err != nil {
			return nil, err
		}
	}
	// After a SIGKILL the last segment's tail may be in the page cache
	// only; the sync below makes what Open recovered durable, as a later
	// Sync promises (sealed segments were fsynced when sealed).
	l.active().logDirty = true
	var size int64
	for i, s := range l.segs {
		size += s.size
		if i == len(l.segs)-1 {
			break
		}
		if next := l.segs[i+1]; s.next != next.base {
			return nil, fmt.Errorf("%w: %s ends at offset %d but the next segment %s starts at %d", ErrCorruptLog, s.logPath, s.next, next.name(), next.base)
		}
	}
	l.size.Store(size)
	l.end.Store(l.active().next)
	l.start.Store(l.segs[0].base)
	if haveStart && storedStart > l.segs[0].base {
		target := storedStart
		if end := l.end.Load(); target > end {
			// The start was made durable by AdvanceStart, appends below it
			// were not synced before a crash; the Raft log replays them.
			l.logger.Warn().Str("dir", dir).Int64("stored_start", storedStart).Int64("end_offset", end).Msg("partlog: log start offset beyond recovered end; clamped")
			target = end
		}
		if err := l.advanceStart(target); err != nil {
			return nil, err
		}
	}
	if err := l.sync(); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// finishRestore repairs what a crash inside Restore leaves beside dir.
// Between Restore's two renames dir is missing and the previous log sits in
// dir.old-*: it is put back, which is the state before the restore began
// (the caller's snapshot recovery runs again). Any other leftover, an
// unfinished received copy or a replaced log not yet deleted, is deleted:
// either may be as large as the log.
func finishRestore(dir string, logger zerolog.Logger) error {
	dir = filepath.Clean(dir)
	parent, name := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	ents, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("partlog: open %s: %w", dir, err)
	}
	var olds, received []string
	for _, e := range ents {
		switch {
		case strings.HasPrefix(e.Name(), name+".old-"):
			olds = append(olds, filepath.Join(parent, e.Name()))
		case strings.HasPrefix(e.Name(), name+".restore-"):
			received = append(received, filepath.Join(parent, e.Name()))
		}
	}
	if len(olds) == 0 && len(received) == 0 {
		return nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && len(olds) > 0 {
		// Restore keeps one at a time; were there more, the newest name
		// is as good a guess as any, and the others go below.
		slices.Sort(olds)
		old := olds[len(olds)-1]
		olds = olds[:len(olds)-1]
		if err := os.Rename(old, dir); err != nil {
			return fmt.Errorf("partlog: open %s: put back the log of an interrupted restore: %w", dir, err)
		}
		logger.Warn().Str("dir", dir).Str("from", old).Msg("partlog: put back the log an interrupted restore had moved aside")
	}
	for _, p := range append(olds, received...) {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("partlog: open %s: remove restore leftover: %w", dir, err)
		}
	}
	return syncDir(parent)
}

// loadSegment opens one segment and restores its in-memory state, repairing
// what a crash can leave behind (see index.go for why index entries can be
// trusted). A sealed (not last) segment was fsynced when it was sealed, so
// damage to its data is corruption, not a torn write, and is an error.
func (l *Log) loadSegment(w *walker, base int64, last, verifyAll bool) (*segment, error) {
	hadIndex := fileExists(filepath.Join(l.dir, segmentName(base, indexSuffix))) &&
		fileExists(filepath.Join(l.dir, segmentName(base, timeIndexSuffix)))
	s, err := openSegmentFiles(l.dir, base, false, false)
	if err != nil {
		return nil, err
	}
	st, err := s.log.Stat()
	if err != nil {
		return s, fmt.Errorf("partlog: stat %s: %w", s.logPath, err)
	}
	fileSize := st.Size()
	if fileSize > math.MaxUint32 {
		return s, fmt.Errorf("%w: %s is %d bytes, over the 4 GiB a segment can index", ErrCorruptLog, s.logPath, fileSize)
	}
	rebuild := ""
	switch {
	case verifyAll:
		rebuild = "restore"
	case !hadIndex && fileSize > 0:
		rebuild = "index file missing"
	}
	if rebuild == "" {
		var why string
		if why, err = s.loadIndexes(fileSize, last); err != nil {
			return s, err
		}
		if why != "" {
			rebuild = why
		}
	}
	if rebuild == "" {
		var why string
		if why, err = l.recoverSegment(w, s, fileSize, last); err != nil {
			return s, err
		}
		rebuild = why
	}
	if rebuild != "" {
		// A restored log must arrive whole: no tail is cut, damage is an error.
		if err := l.rebuildSegment(w, s, last && !verifyAll); err != nil {
			return s, err
		}
		if !verifyAll {
			l.logger.Info().Str("segment", s.logPath).Str("reason", rebuild).Msg("partlog: index rebuilt")
		}
	}
	if !last {
		s.coverTimes()
	}
	return s, nil
}

// loadIndexes reads both index files into memory. It returns a reason to
// rebuild when they cannot be trusted; for the last segment a damaged tail
// is only dropped, since recovery walks past it anyway.
func (s *segment) loadIndexes(fileSize int64, last bool) (rebuild string, err error) {
	ib, err := io.ReadAll(io.NewSectionReader(s.index, 0, math.MaxInt64))
	if err != nil {
		return "", fmt.Errorf("partlog: read index of %s: %w", s.name(), err)
	}
	tb, err := io.ReadAll(io.NewSectionReader(s.tindex, 0, math.MaxInt64))
	if err != nil {
		return "", fmt.Errorf("partlog: read time index of %s: %w", s.name(), err)
	}
	var iclean, tclean bool
	s.offsets, iclean = parseOffsetIndex(ib, fileSize)
	s.times, tclean = parseTimeIndex(tb)
	if !last && !(iclean && tclean) {
		return "index file damaged", nil
	}
	s.offsetsOnDisk, s.timesOnDisk = len(s.offsets), len(s.times)
	if len(ib) != len(s.offsets)*offsetEntrySize || len(tb) != len(s.times)*timeEntrySize {
		if err := s.truncateIndexFiles(); err != nil {
			return "", err
		}
	}
	return "", nil
}

// recoverSegment walks the segment from the last point its indexes vouch
// for and rebuilds the in-memory state past it: end offset, maximum
// timestamp, new index entries. For the last segment it CRC-checks every
// batch after the last offset entry and cuts the file at the first bad one.
// It returns a reason to rebuild from scratch when the indexes turn out
// inconsistent with the data.
func (l *Log) recoverSegment(w *walker, s *segment, fileSize int64, last bool) (rebuild string, err error) {
	hdr := make([]byte, hdrPrefix)
	// The last offset entry must point at the batch it names; after a crash
	// the index may run ahead of what the data file kept.
	for len(s.offsets) > 0 {
		e := s.offsets[len(s.offsets)-1]
		b, _, _, _, err := s.batchAt(hdr, int64(e.pos), fileSize)
		if err == nil && b == s.base+int64(e.rel) {
			break
		}
		if !last {
			return "index entry does not match the data", nil
		}
		s.offsets = s.offsets[:len(s.offsets)-1]
	}
	if len(s.offsets) < s.offsetsOnDisk {
		// Off the disk too: entries the walk adds below go after the
		// ones kept, and a dropped one left in the file would be trusted
		// at the next Open once a valid entry follows it.
		if err := s.truncateIndexFiles(); err != nil {
			return "", err
		}
	}
	anchor := offsetEntry{}
	if n := len(s.offsets); n > 0 {
		anchor = s.offsets[n-1]
	}
	// Batches up to the last time entry's have MaxTimestamp <= its
	// timestamp; the walk must cover every batch after it to recompute the
	// maximum, so it starts at whichever comes first.
	from := anchor
	s.maxTs = noTimestamp
	var lastTime timeEntry
	if n := len(s.times); n > 0 {
		lastTime = s.times[n-1]
		s.maxTs = lastTime.ts
		if lastTime.rel < anchor.rel {
			from = floorEntry(s.offsets, lastTime.rel)
		}
	} else {
		from = offsetEntry{}
	}
	s.lastIndexPos = int64(anchor.pos)
	s.size = int64(from.pos)
	crcFrom := int64(math.MaxInt64)
	if last {
		crcFrom = int64(anchor.pos)
	}
	// The last time entry must name a batch whose MaxTimestamp it bounds.
	hadTimes := len(s.times) > 0
	timeSeen, timeOK := !hadTimes, true
	res := w.walk(s.log, int64(from.pos), fileSize, s.base+int64(from.rel), crcFrom, func(h *BatchHeader, pos int64) {
		if hadTimes && h.BaseOffset == s.base+int64(lastTime.rel) {
			timeSeen = true
			timeOK = h.MaxTimestamp <= lastTime.ts
		}
		s.noteBatch(pos, h.Size(), h.BaseOffset, h.LastOffset()+1, h.MaxTimestamp, l.cfg.IndexIntervalBytes)
	})
	if res.err != nil {
		if !last || res.pos < crcFrom {
			return "", fmt.Errorf("%w: %s: %v", ErrCorruptLog, s.logPath, res.err)
		}
		if err := l.cutTail(s, res, fileSize); err != nil {
			return "", err
		}
	}
	if !timeSeen || !timeOK {
		return "time index does not match the data", nil
	}
	s.size = res.pos
	s.next = res.next
	return "", s.readFirstAppend(hdr)
}

// rebuildSegment drops both indexes and regenerates them from a full walk
// that CRC-checks every batch. With mayCut (the last segment of a log being
// recovered) a bad batch and what follows are cut off; otherwise it is
// ErrCorruptLog.
func (l *Log) rebuildSegment(w *walker, s *segment, mayCut bool) error {
	// The size comes from the file: recoverSegment may have cut it already.
	st, err := s.log.Stat()
	if err != nil {
		return fmt.Errorf("partlog: stat %s: %w", s.logPath, err)
	}
	fileSize := st.Size()
	s.offsets, s.times = s.offsets[:0], s.times[:0]
	s.offsetsOnDisk, s.timesOnDisk = 0, 0
	if err := s.truncateIndexFiles(); err != nil {
		return err
	}
	s.size, s.next, s.maxTs, s.lastIndexPos, s.lastRel = 0, s.base, noTimestamp, 0, 0
	res := w.walk(s.log, 0, fileSize, s.base, 0, func(h *BatchHeader, pos int64) {
		s.noteBatch(pos, h.Size(), h.BaseOffset, h.LastOffset()+1, h.MaxTimestamp, l.cfg.IndexIntervalBytes)
	})
	if res.err != nil {
		if !mayCut {
			return fmt.Errorf("%w: %s: %v", ErrCorruptLog, s.logPath, res.err)
		}
		if err := l.cutTail(s, res, fileSize); err != nil {
			return err
		}
	}
	s.size, s.next = res.pos, res.next
	return s.readFirstAppend(make([]byte, hdrPrefix))
}

// cutTail truncates the last segment at the first bad batch, making the cut
// durable before anything else is written after it.
func (l *Log) cutTail(s *segment, res walkResult, fileSize int64) error {
	l.logger.Warn().Str("segment", s.logPath).Int64("offset", res.next).Int64("position", res.pos).
		Int64("bytes_dropped", fileSize-res.pos).Str("cause", res.err.Error()).
		Msg("partlog: torn or corrupt tail truncated")
	if err := s.log.Truncate(res.pos); err != nil {
		return fmt.Errorf("partlog: truncate %s: %w", s.logPath, err)
	}
	CrashPoint("partlog.open.tail-cut")
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("partlog: sync %s: %w", s.logPath, err)
	}
	// Entries can only point below the cut, since the walk started at or
	// before the last one; drop time entries for offsets now gone.
	for len(s.offsets) > 0 && int64(s.offsets[len(s.offsets)-1].pos) >= res.pos {
		s.offsets = s.offsets[:len(s.offsets)-1]
	}
	for len(s.times) > 0 && s.base+int64(s.times[len(s.times)-1].rel) >= res.next {
		s.times = s.times[:len(s.times)-1]
	}
	return s.truncateIndexFiles()
}

// readFirstAppend recovers the segment's age after a reopen. Kafka also
// ages a segment by its first batch's timestamp; for LogAppendTime topics it
// equals the now of the first append.
func (s *segment) readFirstAppend(hdr []byte) error {
	s.firstAppend = 0
	if s.size == 0 {
		return nil
	}
	_, _, ts, _, err := s.batchAt(hdr, 0, s.size)
	s.firstAppend = ts
	return err
}

func readStartFile(dir string) (int64, bool, error) {
	path := filepath.Join(dir, startFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("partlog: read %s: %w", path, err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return 0, false, fmt.Errorf("%w: %s is damaged", ErrCorruptLog, path)
	}
	start := int64(binary.BigEndian.Uint64(b))
	if start < 0 {
		return 0, false, fmt.Errorf("%w: %s holds negative offset %d", ErrCorruptLog, path, start)
	}
	return start, true, nil
}

// writeStartFile replaces the start offset file atomically (temp file,
// fsync, rename); the caller fsyncs the directory.
func writeStartFile(dir string, start int64) error {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:], uint64(start))
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	path := filepath.Join(dir, startFileName)
	if err := writeFileSync(path+tmpSuffix, b[:]); err != nil {
		return err
	}
	CrashPoint("partlog.start-file.tmp-written")
	if err := os.Rename(path+tmpSuffix, path); err != nil {
		return fmt.Errorf("partlog: write start offset: %w", err)
	}
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("partlog: write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("partlog: write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("partlog: sync directory: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("partlog: sync directory %s: %w", dir, err)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
