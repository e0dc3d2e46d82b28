package partlog

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// RetentionPoint computes, without deleting anything, the offset the log
// start could advance to under Kafka's retention rules: first drop the
// oldest whole segments whose MaxTimestamp is older than now-retentionMs,
// then keep dropping the oldest while the bytes left would still be at least
// retentionBytes. A negative limit disables that rule. A non-empty active
// segment can expire too; the answer is then EndOffset, and AdvanceStart
// rolls it. It returns StartOffset when nothing is eligible.
//
// It is a pure function of the log's state, so the Raft leader can compute
// it and propose AdvanceStart, and every replica deletes the same prefix.
// Safe for concurrent use.
func (l *Log) RetentionPoint(now, retentionMs, retentionBytes int64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	k := 0 // segments to drop
	if retentionMs >= 0 {
		limit := int64(math.MinInt64)
		if now >= math.MinInt64+retentionMs {
			limit = now - retentionMs
		}
		for k < len(l.segs) && l.segs[k].size > 0 && l.segs[k].maxTs < limit {
			k++
		}
	}
	if retentionBytes >= 0 {
		left := l.size.Load()
		for _, s := range l.segs[:k] {
			left -= s.size
		}
		for k < len(l.segs) && l.segs[k].size > 0 && left-l.segs[k].size >= retentionBytes {
			left -= l.segs[k].size
			k++
		}
	}
	start := l.start.Load()
	switch {
	case k == 0:
		return start
	case k == len(l.segs):
		return l.end.Load()
	default:
		return max(start, l.segs[k].base)
	}
}

// AdvanceStart moves the log start offset forward to offset (an offset at
// or below StartOffset is a no-op, so re-applying a command is harmless) and
// deletes every segment whose batches all lie below it. offset may fall
// inside a segment or a batch (Kafka DeleteRecords); if it equals EndOffset
// the active segment is rolled first so it can be deleted. The new start is
// durable when AdvanceStart returns. Offsets above EndOffset are
// ErrOffsetOutOfRange.
func (l *Log) AdvanceStart(offset int64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if offset <= l.start.Load() {
		return nil
	}
	if end := l.end.Load(); offset > end {
		return fmt.Errorf("partlog: advance start to %d: %w: log ends at %d", offset, ErrOffsetOutOfRange, end)
	}
	return l.advanceStart(offset)
}

func (l *Log) advanceStart(offset int64) error {
	// The start must be durable before any segment goes, or a crash could
	// expose offsets below it again.
	if err := writeStartFile(l.dir, offset); err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	CrashPoint("partlog.advance.start-written")
	if s := l.active(); offset == l.end.Load() && s.size > 0 {
		// No fsync for a segment about to go: Open deletes segments below
		// the durable start without reading them.
		if err := l.roll(offset, false); err != nil {
			return err
		}
		CrashPoint("partlog.advance.rolled")
	}
	l.mu.Lock()
	k := 0
	for k < len(l.segs)-1 && l.segs[k].next <= offset {
		k++
	}
	gone := l.segs[:k]
	l.segs = slices.Clone(l.segs[k:])
	for _, s := range gone {
		l.size.Add(-s.size)
	}
	l.start.Store(offset)
	l.mu.Unlock()
	var errs []error
	for _, s := range gone {
		errs = append(errs, s.remove())
		CrashPoint("partlog.advance.removed")
	}
	l.dirDirty = true
	errs = append(errs, l.syncDirIfDirty())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("partlog: advance start to %d: %w", offset, err)
	}
	return nil
}

// Truncate removes every batch at or after endOffset, which must be where a
// batch starts (else ErrNotBatchBoundary), and deletes the segments after
// it; for recovery past a checkpoint. The result is durable when Truncate
// returns. An endOffset below StartOffset leaves an empty log whose start
// and end are endOffset: the Raft replay that follows re-applies what moved
// the start. endOffset above EndOffset is ErrOffsetOutOfRange, since
// nothing can fill the gap.
func (l *Log) Truncate(endOffset int64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	end := l.end.Load()
	switch {
	case endOffset > end || endOffset < 0:
		return fmt.Errorf("partlog: truncate to %d: %w: log holds [%d, %d)", endOffset, ErrOffsetOutOfRange, l.start.Load(), end)
	case endOffset == end:
		return nil
	case endOffset < l.segs[0].base:
		return l.reset(endOffset)
	}
	i := l.segmentFor(endOffset)
	s := l.segs[i]
	pos := int64(0)
	if endOffset > s.base {
		p, _, err := s.locate(make([]byte, hdrPrefix), endOffset)
		if err != nil {
			return err
		}
		if base, _, _, _, err := s.batchAt(make([]byte, hdrPrefix), p, s.size); err != nil {
			return err
		} else if base != endOffset {
			return fmt.Errorf("partlog: truncate to %d: %w: the batch at byte %d of %s starts at %d", endOffset, ErrNotBatchBoundary, p, s.name(), base)
		}
		pos = p
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	// Later segments go first, newest first, so a crash leaves a contiguous
	// prefix; then the index files, so they never point past the data.
	later := l.segs[i+1:]
	l.segs = l.segs[:i+1]
	for j := len(later) - 1; j >= 0; j-- {
		l.size.Add(-later[j].size)
		if err := later[j].remove(); err != nil {
			return fmt.Errorf("partlog: truncate to %d: %w", endOffset, err)
		}
		CrashPoint("partlog.truncate.removed")
	}
	if len(later) > 0 {
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	rel := uint32(endOffset - s.base)
	for len(s.offsets) > 0 && s.offsets[len(s.offsets)-1].rel >= rel {
		s.offsets = s.offsets[:len(s.offsets)-1]
	}
	for len(s.times) > 0 && s.times[len(s.times)-1].rel >= rel {
		s.times = s.times[:len(s.times)-1]
	}
	if err := s.truncateIndexFiles(); err != nil {
		return err
	}
	var err error
	if l.scratch, err = s.writeIndexes(l.scratch, true); err != nil {
		return err
	}
	CrashPoint("partlog.truncate.index-cut")
	if err := s.log.Truncate(pos); err != nil {
		return fmt.Errorf("partlog: truncate %s: %w", s.name(), err)
	}
	CrashPoint("partlog.truncate.data-cut")
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("partlog: sync %s: %w", s.name(), err)
	}
	s.logDirty = false
	l.size.Add(pos - s.size)
	firstAppend := s.firstAppend
	if err := l.reloadSegment(s, pos); err != nil {
		return err
	}
	if s.size > 0 {
		s.firstAppend = firstAppend
	}
	l.end.Store(endOffset)
	if endOffset < l.start.Load() {
		if err := writeStartFile(l.dir, endOffset); err != nil {
			return err
		}
		l.start.Store(endOffset)
		l.dirDirty = true
	}
	return l.syncDirIfDirty()
}

// reloadSegment recomputes a segment's in-memory state from its files after
// they were cut to fileSize bytes. The caller holds mu.
func (l *Log) reloadSegment(s *segment, fileSize int64) error {
	w := newWalker()
	why, err := l.recoverSegment(w, s, fileSize, true)
	if err != nil {
		return err
	}
	if why != "" {
		l.logger.Info().Str("segment", s.logPath).Str("reason", why).Msg("partlog: index rebuilt")
		return l.rebuildSegment(w, s, true)
	}
	return nil
}

// reset deletes every segment and starts an empty log at offset. Any
// failure closes the log: without a segment it cannot serve, and Open
// recovers whatever is left.
func (l *Log) reset(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.resetLocked(offset); err != nil {
		l.closed.Store(true)
		return fmt.Errorf("partlog: truncate to %d: %w (log closed)", offset, err)
	}
	return nil
}

func (l *Log) resetLocked(offset int64) error {
	if err := writeStartFile(l.dir, offset); err != nil {
		return err
	}
	CrashPoint("partlog.reset.start-written")
	for len(l.segs) > 0 {
		// Newest first; the deletions are durable before the new, lower
		// segment exists, so a crash never leaves a gap.
		if err := l.active().remove(); err != nil {
			return err
		}
		l.segs = l.segs[:len(l.segs)-1]
		CrashPoint("partlog.reset.removed")
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	CrashPoint("partlog.reset.emptied")
	s, err := openSegmentFiles(l.dir, offset, true, true)
	if err != nil {
		return err
	}
	l.segs = []*segment{s}
	l.size.Store(0)
	l.start.Store(offset)
	l.end.Store(offset)
	return syncDir(l.dir)
}
