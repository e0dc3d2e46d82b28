package partlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	baseDigits      = 20

	// noTimestamp marks a segment without batches; reported as -1 like Kafka.
	noTimestamp = math.MinInt64
)

// segment is one <base>.log file and its two indexes. Fields marked
// "shared" are read by readers under Log.mu.RLock and changed by the writer
// under Log.mu.Lock; the rest belong to the writer alone.
type segment struct {
	base                 int64
	log, index, tindex   *os.File
	logPath              string
	size                 int64         // shared: bytes of whole batches
	next                 int64         // shared: offset after the last batch
	maxTs                int64         // shared: largest batch MaxTimestamp, noTimestamp if empty
	firstAppend          int64         // shared: now of the first append (MaxTimestamp of the first batch after reopen)
	offsets              []offsetEntry // shared
	times                []timeEntry   // shared
	lastIndexPos         int64         // position of the last offset entry, 0 if none
	lastRel              uint32        // relative base offset of the last batch
	offsetsOnDisk        int           // entries already written to .index
	timesOnDisk          int           // entries already written to .timeindex
	logDirty, indexDirty bool          // written since the last fsync
}

func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%0*d%s", baseDigits, base, suffix)
}

// parseSegmentName returns the base offset of a "<20 digits>.log" name.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(digits) != baseDigits {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// openSegmentFiles opens (creating with create) the three files of a segment.
// truncate empties them, for a segment that starts fresh.
func openSegmentFiles(dir string, base int64, create, truncate bool) (*segment, error) {
	s := &segment{base: base, next: base, maxTs: noTimestamp, logPath: filepath.Join(dir, segmentName(base, logSuffix))}
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	if truncate {
		flag |= os.O_TRUNC
	}
	var err error
	if s.log, err = os.OpenFile(s.logPath, flag, 0o644); err != nil {
		return nil, fmt.Errorf("partlog: open segment: %w", err)
	}
	if s.index, err = os.OpenFile(filepath.Join(dir, segmentName(base, indexSuffix)), flag|os.O_CREATE, 0o644); err != nil {
		s.close()
		return nil, fmt.Errorf("partlog: open index: %w", err)
	}
	if s.tindex, err = os.OpenFile(filepath.Join(dir, segmentName(base, timeIndexSuffix)), flag|os.O_CREATE, 0o644); err != nil {
		s.close()
		return nil, fmt.Errorf("partlog: open time index: %w", err)
	}
	return s, nil
}

func (s *segment) close() error {
	var errs []error
	for _, f := range []*os.File{s.log, s.index, s.tindex} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// remove closes and deletes the segment's files, the data file first so a
// crash leaves at worst orphan index files, which Open removes.
func (s *segment) remove() error {
	cerr := s.close()
	var errs []error
	for _, f := range []*os.File{s.log, s.index, s.tindex} {
		if f == nil {
			continue
		}
		if err := os.Remove(f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("partlog: delete segment: %w", err))
		}
	}
	return errors.Join(append(errs, cerr)...)
}

func (s *segment) name() string { return filepath.Base(s.logPath) }

// noteBatch updates the in-memory state for a batch of size bytes written at
// pos. It adds index entries by the rules in index.go; batches at or before
// lastIndexPos (recovery re-walks such ranges) add none. The caller holds
// Log.mu for writing, or owns s exclusively.
func (s *segment) noteBatch(pos int64, size int, baseOffset, nextOffset, maxTs int64, interval int) {
	rel := uint32(baseOffset - s.base)
	if s.size == 0 && pos == 0 {
		s.firstAppend = maxTs // callers overwrite with now on the append path
	}
	if maxTs > s.maxTs {
		s.maxTs = maxTs
	}
	if pos > 0 && pos-s.lastIndexPos >= int64(interval) {
		s.offsets = append(s.offsets, offsetEntry{rel: rel, pos: uint32(pos)})
		s.lastIndexPos = pos
		if n := len(s.times); n == 0 || s.maxTs > s.times[n-1].ts {
			s.times = append(s.times, timeEntry{ts: s.maxTs, rel: rel})
		}
	}
	s.lastRel = rel
	s.size = pos + int64(size)
	s.next = nextOffset
}

// coverTimes adds a time entry for the last batch unless one exists, so the
// time index's last entry carries the segment's maximum timestamp.
func (s *segment) coverTimes() {
	if s.size == 0 {
		return
	}
	if n := len(s.times); n == 0 || s.times[n-1].rel < s.lastRel {
		s.times = append(s.times, timeEntry{ts: s.maxTs, rel: s.lastRel})
	}
}

// catchUpTimes adds a time entry for the last batch when the time index lags
// the offset index, which bounds how far back recovery must walk to recompute
// the segment's maximum timestamp.
func (s *segment) catchUpTimes() {
	if len(s.offsets) == 0 {
		return
	}
	if n := len(s.times); n == 0 || s.times[n-1].rel < s.offsets[len(s.offsets)-1].rel {
		s.times = append(s.times, timeEntry{ts: s.maxTs, rel: s.lastRel})
	}
}

// writeIndexes appends the entries not yet on disk to the index files and,
// with sync, fsyncs them. scratch is reused between calls.
func (s *segment) writeIndexes(scratch []byte, sync bool) ([]byte, error) {
	if n := len(s.offsets); n > s.offsetsOnDisk {
		scratch = appendOffsetEntries(scratch[:0], s.offsets[s.offsetsOnDisk:n])
		if _, err := s.index.WriteAt(scratch, int64(s.offsetsOnDisk)*offsetEntrySize); err != nil {
			return scratch, fmt.Errorf("partlog: write index of %s: %w", s.name(), err)
		}
		s.offsetsOnDisk = n
		s.indexDirty = true
	}
	if n := len(s.times); n > s.timesOnDisk {
		scratch = appendTimeEntries(scratch[:0], s.times[s.timesOnDisk:n])
		if _, err := s.tindex.WriteAt(scratch, int64(s.timesOnDisk)*timeEntrySize); err != nil {
			return scratch, fmt.Errorf("partlog: write time index of %s: %w", s.name(), err)
		}
		s.timesOnDisk = n
		s.indexDirty = true
	}
	if sync && s.indexDirty {
		if err := s.index.Sync(); err != nil {
			return scratch, fmt.Errorf("partlog: sync index of %s: %w", s.name(), err)
		}
		if err := s.tindex.Sync(); err != nil {
			return scratch, fmt.Errorf("partlog: sync time index of %s: %w", s.name(), err)
		}
		s.indexDirty = false
	}
	return scratch, nil
}

// syncData fsyncs the data file if it was written since the last fsync.
func (s *segment) syncData() error {
	if !s.logDirty {
		return nil
	}
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("partlog: sync %s: %w", s.name(), err)
	}
	s.logDirty = false
	return nil
}

// truncateIndexFiles cuts the index files down to the entries still in
// memory, for Truncate and recovery.
func (s *segment) truncateIndexFiles() error {
	if s.offsetsOnDisk > len(s.offsets) {
		s.offsetsOnDisk = len(s.offsets)
	}
	if s.timesOnDisk > len(s.times) {
		s.timesOnDisk = len(s.times)
	}
	if err := s.index.Truncate(int64(s.offsetsOnDisk) * offsetEntrySize); err != nil {
		return fmt.Errorf("partlog: truncate index of %s: %w", s.name(), err)
	}
	if err := s.tindex.Truncate(int64(s.timesOnDisk) * timeEntrySize); err != nil {
		return fmt.Errorf("partlog: truncate time index of %s: %w", s.name(), err)
	}
	s.indexDirty = true
	return nil
}

// Reader-side header access. hdrPrefix is enough of a header to walk and to
// answer timestamp lookups: everything up to and including maxTimestamp.
const hdrPrefix = offMaxTimestamp + 8

// batchAt reads the header prefix of the batch at pos into buf (len >=
// hdrPrefix) and checks that the batch lies within limit bytes of the file.
// It returns base offset, last offset, max timestamp and size.
func (s *segment) batchAt(buf []byte, pos, limit int64) (base, last, maxTs int64, size int64, err error) {
	if limit-pos < BatchHeaderSize {
		return 0, 0, 0, 0, fmt.Errorf("%w: %s: batch at byte %d: header runs past %d bytes", ErrCorruptLog, s.name(), pos, limit)
	}
	if _, err := s.log.ReadAt(buf[:hdrPrefix], pos); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("partlog: read %s at byte %d: %w", s.name(), pos, err)
	}
	base = int64(binary.BigEndian.Uint64(buf[offBaseOffset:]))
	length := int32(binary.BigEndian.Uint32(buf[offLength:]))
	delta := int32(binary.BigEndian.Uint32(buf[offLastOffsetDelta:]))
	size = batchLengthOverhead + int64(length)
	if length < minBatchLength || pos+size > limit || delta < 0 || buf[offMagic] != 2 {
		return 0, 0, 0, 0, fmt.Errorf("%w: %s: batch at byte %d: bad header (length %d, magic %d, lastOffsetDelta %d)", ErrCorruptLog, s.name(), pos, length, int8(buf[offMagic]), delta)
	}
	return base, base + int64(delta), int64(binary.BigEndian.Uint64(buf[offMaxTimestamp:])), size, nil
}

// locate returns the position and size of the batch containing off, which
// must lie in [s.base, s.next). buf is scratch of at least hdrPrefix bytes.
// The caller holds Log.mu.RLock.
func (s *segment) locate(buf []byte, off int64) (pos, size int64, err error) {
	e := floorEntry(s.offsets, relOffset(off, s.base))
	pos = int64(e.pos)
	for pos < s.size {
		base, last, _, sz, err := s.batchAt(buf, pos, s.size)
		if err != nil {
			return 0, 0, err
		}
		if base > off {
			return 0, 0, fmt.Errorf("%w: %s: looking for offset %d, batch at byte %d starts at %d", ErrCorruptLog, s.name(), off, pos, base)
		}
		if last >= off {
			return pos, sz, nil
		}
		pos += sz
	}
	return 0, 0, fmt.Errorf("%w: %s: offset %d not found before byte %d", ErrCorruptLog, s.name(), off, s.size)
}

// walker reads a segment file sequentially during recovery, checking each
// batch's framing, offsets and (in a chosen range) CRC.
type walker struct {
	br  *bufio.Reader
	hdr [BatchHeaderSize]byte
}

func newWalker() *walker { return &walker{br: bufio.NewReaderSize(nil, 256<<10)} }

// walkResult says where a walk stopped. err is nil when it reached the end of
// the file cleanly; otherwise pos is where the first bad batch starts.
type walkResult struct {
	pos  int64
	next int64
	err  error
}

// walk visits the batches of f from pos, where a batch with base offset next
// must start, to fileSize. Batches starting at or after crcFrom get their
// CRC checked.
func (w *walker) walk(f *os.File, pos, fileSize, next, crcFrom int64, visit func(h *BatchHeader, pos int64)) walkResult {
	w.br.Reset(io.NewSectionReader(f, pos, fileSize-pos))
	bad := func(format string, args ...any) walkResult {
		return walkResult{pos: pos, next: next, err: fmt.Errorf("batch at byte %d: "+format, append([]any{pos}, args...)...)}
	}
	for pos < fileSize {
		if fileSize-pos < BatchHeaderSize {
			return bad("%d bytes left, too few for a header", fileSize-pos)
		}
		if _, err := io.ReadFull(w.br, w.hdr[:]); err != nil {
			return walkResult{pos: pos, next: next, err: fmt.Errorf("read batch at byte %d: %w", pos, err)}
		}
		h, err := ParseBatchHeader(w.hdr[:])
		if err != nil {
			return bad("%v", err)
		}
		size := int64(h.Size())
		switch {
		case size > fileSize-pos:
			return bad("%d bytes long, %d left in the file", size, fileSize-pos)
		case h.BaseOffset != next:
			return bad("base offset %d, expected %d", h.BaseOffset, next)
		case h.LastOffsetDelta < 0 || h.RecordCount < 1 || int64(h.RecordCount) != int64(h.LastOffsetDelta)+1:
			return bad("recordCount %d, lastOffsetDelta %d", h.RecordCount, h.LastOffsetDelta)
		}
		body := size - BatchHeaderSize
		if pos >= crcFrom {
			crc := crc32.Update(0, castagnoli, w.hdr[offAttributes:])
			for left := body; left > 0; {
				chunk, err := w.br.Peek(int(min(left, int64(w.br.Size()))))
				if err != nil {
					return walkResult{pos: pos, next: next, err: fmt.Errorf("read batch at byte %d: %w", pos, err)}
				}
				crc = crc32.Update(crc, castagnoli, chunk)
				_, _ = w.br.Discard(len(chunk))
				left -= int64(len(chunk))
			}
			if crc != h.CRC {
				return bad("crc32c mismatch: header %#08x computed %#08x", h.CRC, crc)
			}
		} else if _, err := w.br.Discard(int(body)); err != nil {
			return walkResult{pos: pos, next: next, err: fmt.Errorf("read batch at byte %d: %w", pos, err)}
		}
		visit(&h, pos)
		pos += size
		next = h.LastOffset() + 1
	}
	return walkResult{pos: pos, next: next}
}
