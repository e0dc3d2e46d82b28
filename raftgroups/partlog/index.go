package partlog

import (
	"encoding/binary"
	"math"
)

// The two per-segment indexes, kept in memory (the source of truth while the
// log is open) and persisted to files by Sync, seal and Close, always after
// the segment data they point at has been fsynced. So a persisted entry
// never points at data a crash could have lost, and recovery only needs to
// CRC-check what lies after the last persisted offset entry.
//
// Offset index (.index), 8 bytes an entry, big-endian:
//
//	relOffset uint32  base offset of a batch minus the segment's base offset
//	position  uint32  byte position of that batch in the .log file
//
// An entry is added for a batch that starts at least IndexIntervalBytes after
// the previous entry's batch (position 0 is an implicit entry). Entries
// strictly increase in both fields.
//
// Time index (.timeindex), 12 bytes an entry, big-endian:
//
//	timestamp int64   the largest MaxTimestamp of the segment's batches up
//	                  to and including the batch below
//	relOffset uint32  base offset of a batch minus the segment's base offset
//
// So every batch at or before relOffset has MaxTimestamp <= timestamp, which
// is all a lookup needs: the first batch with MaxTimestamp >= ts comes after
// the last entry whose timestamp < ts. An entry is added at an offset-index
// point when the running maximum grew, at Sync when the time index lags the
// offset index, and when a segment is sealed or closed (so a sealed
// segment's last entry holds its maximum timestamp). Timestamps never
// decrease, relOffsets strictly increase.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

type offsetEntry struct {
	rel uint32
	pos uint32
}

type timeEntry struct {
	ts  int64
	rel uint32
}

// floorEntry returns the last entry with rel <= rel, or the implicit entry
// {0, 0} when there is none.
func floorEntry(es []offsetEntry, rel uint32) offsetEntry {
	lo, hi := 0, len(es) // invariant: es[:lo] have rel <= target, es[hi:] have rel > target
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].rel <= rel {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return offsetEntry{}
	}
	return es[lo-1]
}

// lastTimeBefore returns the last entry whose timestamp is < ts.
func lastTimeBefore(es []timeEntry, ts int64) (timeEntry, bool) {
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].ts < ts {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return timeEntry{}, false
	}
	return es[lo-1], true
}

// relOffset clamps off-base into the uint32 range of relative offsets.
func relOffset(off, base int64) uint32 {
	switch d := off - base; {
	case d < 0:
		return 0
	case d > math.MaxUint32:
		return math.MaxUint32
	default:
		return uint32(d)
	}
}

func appendOffsetEntries(dst []byte, es []offsetEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
		dst = binary.BigEndian.AppendUint32(dst, e.pos)
	}
	return dst
}

func appendTimeEntries(dst []byte, es []timeEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
	}
	return dst
}

// parseOffsetIndex decodes the longest well-formed prefix of an offset index
// file for a segment of fileSize bytes. clean is false when anything was
// left out (a partial entry, entries out of order or beyond the data).
func parseOffsetIndex(b []byte, fileSize int64) (es []offsetEntry, clean bool) {
	n := len(b) / offsetEntrySize
	clean = len(b)%offsetEntrySize == 0
	es = make([]offsetEntry, 0, n)
	for i := range n {
		e := offsetEntry{
			rel: binary.BigEndian.Uint32(b[i*offsetEntrySize:]),
			pos: binary.BigEndian.Uint32(b[i*offsetEntrySize+4:]),
		}
		ok := e.pos > 0 && int64(e.pos) < fileSize
		if len(es) > 0 {
			last := es[len(es)-1]
			ok = ok && e.rel > last.rel && e.pos > last.pos
		}
		if !ok {
			return es, false
		}
		es = append(es, e)
	}
	return es, clean
}

// parseTimeIndex decodes the longest well-formed prefix of a time index file.
func parseTimeIndex(b []byte) (es []timeEntry, clean bool) {
	n := len(b) / timeEntrySize
	clean = len(b)%timeEntrySize == 0
	es = make([]timeEntry, 0, n)
	for i := range n {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			rel: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if len(es) > 0 {
			last := es[len(es)-1]
			if e.ts < last.ts || e.rel <= last.rel {
				return es, false
			}
		}
		es = append(es, e)
	}
	return es, clean
}
