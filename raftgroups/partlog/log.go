package partlog

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Log is the storage of one partition replica: a contiguous run of segments
// holding offsets [StartOffset, EndOffset).
//
// One writer at a time may call Append, Truncate, AdvanceStart, Sync,
// Snapshot and Close; readers (Read, OffsetForTimestamp, StartOffset,
// EndOffset, Size, MaxTimestamp, Segments) may run concurrently with each
// other and with the writer.
type Log struct {
	dir    string
	cfg    Config
	logger zerolog.Logger

	// mu orders readers against the writer's changes to segs and to the
	// shared fields of each segment. The writer writes batch bytes beyond
	// the published size without it and takes it only to publish them.
	mu   sync.RWMutex
	segs []*segment // shared; never empty, the last one is active

	start  atomic.Int64 // first readable offset
	end    atomic.Int64 // next offset to assign
	size   atomic.Int64 // bytes in all segments
	closed atomic.Bool

	// writer-only
	dirDirty bool   // files created or deleted since the directory's last fsync
	scratch  []byte // write and index encoding buffer
	hdr      [BatchHeaderSize]byte
}

// SegmentInfo describes one segment, for metrics and retention decisions.
type SegmentInfo struct {
	BaseOffset   int64
	EndOffset    int64 // offset after the segment's last batch
	Size         int64 // bytes
	MaxTimestamp int64 // largest batch MaxTimestamp, -1 when empty
	FirstAppend  int64 // now of the segment's first append (after a reopen: the first batch's MaxTimestamp), -1 when empty
}

// Open opens the log in dir, creating an empty one starting at offset 0 when
// dir is missing or empty. It recovers from a crash: a torn or corrupt tail
// of the last segment is cut off (one warning with the offset and bytes
// dropped), and missing or damaged index files are rebuilt. Damage anywhere
// else, such as a corrupt sealed segment or a gap between segments, is an
// error wrapping ErrCorruptLog that names the file.
func Open(dir string, cfg Config, logger zerolog.Logger) (*Log, error) {
	return open(dir, cfg, logger, false)
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// StartOffset is the first offset a Read may ask for.
func (l *Log) StartOffset() int64 { return l.start.Load() }

// EndOffset is the offset the next appended record gets.
func (l *Log) EndOffset() int64 { return l.end.Load() }

// Size is the number of bytes in all segments, including any batches below
// StartOffset that share a segment with retained ones.
func (l *Log) Size() int64 { return l.size.Load() }

// MaxTimestamp is the largest batch MaxTimestamp in the log, -1 if empty.
func (l *Log) MaxTimestamp() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ts := int64(noTimestamp)
	for _, s := range l.segs {
		ts = max(ts, s.maxTs)
	}
	return orMinusOne(ts)
}

func orMinusOne(ts int64) int64 {
	if ts == noTimestamp {
		return -1
	}
	return ts
}

// Segments describes the segments, oldest first. The slice is the caller's.
func (l *Log) Segments() []SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		first := s.firstAppend
		if s.size == 0 {
			first = -1
		}
		out[i] = SegmentInfo{BaseOffset: s.base, EndOffset: s.next, Size: s.size, MaxTimestamp: orMinusOne(s.maxTs), FirstAppend: first}
	}
	return out
}

// segmentFor returns the index of the last segment whose base is <= off.
// The caller holds mu.
func (l *Log) segmentFor(off int64) int {
	i, found := slices.BinarySearchFunc(l.segs, off, func(s *segment, off int64) int {
		switch {
		case s.base < off:
			return -1
		case s.base > off:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	return max(i, 0)
}

// Append writes one batch at the end of the log and returns the base offset
// it assigned: EndOffset before the call. The batch must be exactly one
// RecordBatch v2, checked by ValidateBatches on the produce path (Append
// re-checks framing and counts, not the CRC). The stored copy gets
// baseOffset, partitionLeaderEpoch = leaderEpoch and, when appendTime >= 0
// (a LogAppendTime topic), the append-time attribute and maxTimestamp =
// appendTime with a recomputed CRC; batch itself is not modified. now is the
// caller's clock in milliseconds, used to age segments: Append reads no clock,
// so replicas given the same inputs make the same log. Append does not fsync;
// call Sync.
func (l *Log) Append(batch []byte, leaderEpoch int32, appendTime, now int64) (int64, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return 0, fmt.Errorf("partlog: append: %w", err)
	}
	switch {
	case h.Size() != len(batch):
		return 0, fmt.Errorf("partlog: append: %w: batch is %d bytes, its header says %d", ErrCorruptBatch, len(batch), h.Size())
	case h.RecordCount < 1 || int64(h.RecordCount) != int64(h.LastOffsetDelta)+1:
		return 0, fmt.Errorf("partlog: append: %w: recordCount %d, lastOffsetDelta %d", ErrCorruptBatch, h.RecordCount, h.LastOffsetDelta)
	}
	base := l.end.Load()
	if base > math.MaxInt64-int64(h.RecordCount) {
		return 0, fmt.Errorf("partlog: append: %w: offsets would overflow int64 at %d", ErrOffsetOutOfRange, base)
	}
	if l.shouldRoll(l.active(), len(batch), base+int64(h.LastOffsetDelta), now) {
		if err := l.roll(base, true); err != nil {
			return 0, err
		}
	}
	s := l.active()
	pos := s.size
	if pos+int64(len(batch)) > math.MaxUint32 {
		return 0, fmt.Errorf("partlog: append to %s: %w: %d bytes at byte %d would pass 4 GiB", s.name(), ErrBatchTooLarge, len(batch), pos)
	}

	hdr := l.hdr[:]
	copy(hdr, batch)
	rewriteHeader(hdr, batch[BatchHeaderSize:], base, leaderEpoch, appendTime)
	if err := l.write(s, hdr, batch[BatchHeaderSize:], pos); err != nil {
		return 0, err
	}
	CrashPoint("partlog.append.written")
	maxTs := h.MaxTimestamp
	if appendTime >= 0 {
		maxTs = appendTime
	}
	next := base + int64(h.RecordCount)

	l.mu.Lock()
	wasEmpty := s.size == 0
	s.noteBatch(pos, len(batch), base, next, maxTs, l.cfg.IndexIntervalBytes)
	if wasEmpty {
		s.firstAppend = now
	}
	s.logDirty = true
	l.end.Store(next)
	l.size.Add(int64(len(batch)))
	l.mu.Unlock()
	return base, nil
}

// write puts a batch (header copy and records) at pos, past what readers may
// see, so it needs no lock.
func (l *Log) write(s *segment, hdr, records []byte, pos int64) error {
	var err error
	if len(records) <= 64<<10 {
		// One syscall for the common small batch; copying is cheaper.
		buf := append(append(l.scratch[:0], hdr...), records...)
		_, err = s.log.WriteAt(buf, pos)
		l.scratch = buf[:0]
	} else if _, err = s.log.WriteAt(hdr, pos); err == nil {
		_, err = s.log.WriteAt(records, pos+int64(len(hdr)))
	}
	if err != nil {
		// Leave no partial batch behind for a later Sync to persist; if this
		// fails too, recovery cuts it off at the next Open.
		_ = s.log.Truncate(pos)
		return fmt.Errorf("partlog: append to %s at byte %d: %w", s.name(), pos, err)
	}
	return nil
}

func (l *Log) shouldRoll(s *segment, batchSize int, lastOffset, now int64) bool {
	if s.size == 0 {
		return false
	}
	// age < 0 with now >= firstAppend is an overflow: a recovered
	// firstAppend can be any timestamp a producer sent.
	age := now - s.firstAppend
	return s.size+int64(batchSize) > l.cfg.SegmentBytes ||
		(now >= s.firstAppend && (age >= l.cfg.SegmentMs || age < 0)) ||
		lastOffset-s.base > math.MaxUint32
}

// roll seals the active segment and starts a new one at base. Sealing
// fsyncs the old segment (when syncOld) so that only the last segment can
// ever have a torn tail, which lets Open treat damage elsewhere as
// corruption; it also fsyncs the directory naming it, since a power loss
// could otherwise keep a later segment's name and lose this one's, a gap
// that Open refuses.
func (l *Log) roll(base int64, syncOld bool) error {
	old := l.active()
	l.mu.Lock()
	old.coverTimes()
	l.mu.Unlock()
	if syncOld {
		if err := old.syncData(); err != nil {
			return err
		}
	}
	var err error
	if l.scratch, err = old.writeIndexes(l.scratch, syncOld); err != nil {
		return err
	}
	if syncOld {
		if err := l.syncDirIfDirty(); err != nil {
			return err
		}
	}
	CrashPoint("partlog.roll.sealed")
	s, err := openSegmentFiles(l.dir, base, true, true)
	if err != nil {
		return err
	}
	CrashPoint("partlog.roll.created")
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.dirDirty = true
	return nil
}

// Read appends to dst the stored bytes of whole batches starting with the
// batch that contains offset, up to maxBytes in total but always at least
// that first batch (KIP-74), possibly spanning segments, and never past
// EndOffset. offset == EndOffset returns dst unchanged; an offset below
// StartOffset or above EndOffset is ErrOffsetOutOfRange. The first batch may
// start before offset (and before StartOffset): consumers skip such records.
// Read allocates only to grow dst. Safe for concurrent use.
func (l *Log) Read(offset int64, maxBytes int, dst []byte) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return dst, ErrClosed
	}
	start, end := l.start.Load(), l.end.Load()
	if offset < start || offset > end {
		return dst, fmt.Errorf("partlog: read offset %d: %w: log holds [%d, %d)", offset, ErrOffsetOutOfRange, start, end)
	}
	if offset == end {
		return dst, nil
	}
	i := l.segmentFor(offset)
	s := l.segs[i]
	if offset >= s.next {
		return dst, fmt.Errorf("%w: %s holds [%d, %d), not offset %d", ErrCorruptLog, s.name(), s.base, s.next, offset)
	}
	// The header probe uses dst's spare capacity, so a reused dst makes
	// reads allocation-free.
	dst = slices.Grow(dst, hdrPrefix)
	pos, firstSize, err := s.locate(dst[len(dst):len(dst)+hdrPrefix], offset)
	if err != nil {
		return dst, err
	}
	budget := int64(max(maxBytes, 0))
	read := int64(0)
	for ; i < len(l.segs); i, pos = i+1, 0 {
		s = l.segs[i]
		avail := s.size - pos
		if avail <= 0 {
			continue
		}
		var n int64
		if read == 0 {
			n = max(firstSize, min(avail, budget))
		} else {
			if budget-read < BatchHeaderSize {
				break
			}
			n = min(avail, budget-read)
		}
		old := len(dst)
		dst = slices.Grow(dst, int(n))[:old+int(n)]
		if _, err := s.log.ReadAt(dst[old:], pos); err != nil {
			return dst[:old], fmt.Errorf("partlog: read %s at byte %d: %w", s.name(), pos, err)
		}
		whole, err := wholeBatches(dst[old:])
		if err != nil {
			return dst[:old], fmt.Errorf("%w: %s: batch at byte %d: %v", ErrCorruptLog, s.name(), pos+int64(whole), err)
		}
		dst = dst[:old+whole]
		read += int64(whole)
		if int64(whole) < avail {
			break // the budget ends inside this segment
		}
	}
	return dst, nil
}

// wholeBatches returns the length of the longest prefix of b made of whole
// batches.
func wholeBatches(b []byte) (int, error) {
	p := 0
	for len(b)-p >= batchLengthOverhead {
		length := int32(uint32(b[p+offLength])<<24 | uint32(b[p+offLength+1])<<16 | uint32(b[p+offLength+2])<<8 | uint32(b[p+offLength+3]))
		if length < minBatchLength {
			return p, fmt.Errorf("batchLength %d", length)
		}
		size := batchLengthOverhead + int(length)
		if size > len(b)-p {
			break
		}
		p += size
	}
	return p, nil
}

// OffsetForTimestamp finds the first batch at or after StartOffset whose
// MaxTimestamp is >= ts and returns its base offset (StartOffset if the
// batch straddles it) and MaxTimestamp; ok is false if there is none.
// FindTimestamp narrows the answer to a record. Safe for concurrent use.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return 0, 0, false, ErrClosed
	}
	start := l.start.Load()
	var buf []byte
	for i := l.segmentFor(start); i < len(l.segs); i++ {
		s := l.segs[i]
		if s.size == 0 || s.maxTs < ts || s.next <= start {
			continue
		}
		from := max(s.base, start)
		if e, ok := lastTimeBefore(s.times, ts); ok {
			from = max(from, s.base+int64(e.rel))
		}
		if buf == nil {
			buf = make([]byte, hdrPrefix)
		}
		for pos := int64(floorEntry(s.offsets, relOffset(from, s.base)).pos); pos < s.size; {
			base, last, maxTs, size, err := s.batchAt(buf, pos, s.size)
			if err != nil {
				return 0, 0, false, err
			}
			if last >= from && maxTs >= ts {
				return max(base, start), maxTs, true, nil
			}
			pos += size
		}
	}
	return 0, 0, false, nil
}

// Sync makes everything appended so far durable: segment data first, then
// the index entries that point at it, then the directory if files were
// created or deleted.
func (l *Log) Sync() error {
	if l.closed.Load() {
		return ErrClosed
	}
	return l.sync()
}

func (l *Log) sync() error {
	for _, s := range l.segs {
		if err := s.syncData(); err != nil {
			return err
		}
		CrashPoint("partlog.sync.data")
		l.mu.Lock()
		s.catchUpTimes()
		l.mu.Unlock()
		var err error
		if l.scratch, err = s.writeIndexes(l.scratch, true); err != nil {
			return err
		}
		CrashPoint("partlog.sync.index")
	}
	return l.syncDirIfDirty()
}

func (l *Log) syncDirIfDirty() error {
	if !l.dirDirty {
		return nil
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.dirDirty = false
	return nil
}

// Close syncs the log and closes its files. Reads after Close fail with
// ErrClosed. Closing twice returns ErrClosed.
func (l *Log) Close() error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.mu.Lock()
	l.active().coverTimes()
	l.mu.Unlock()
	err := l.sync()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed.Store(true)
	for _, s := range l.segs {
		if cerr := s.close(); cerr != nil && err == nil {
			err = fmt.Errorf("partlog: close %s: %w", s.name(), cerr)
		}
	}
	return err
}
