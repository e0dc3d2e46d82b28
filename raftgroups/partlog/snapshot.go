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

	"github.com/rs/zerolog"
)

// Snapshot stream format, version 1, all integers big-endian:
//
//	header:  magic "PLOGSNAP" | version uint16 | flags uint16 (0)
//	         | startOffset int64 | endOffset int64 | segmentCount uint32
//	         | crc32c of the preceding 32 bytes
//	segment: baseOffset int64 | size int64 | size bytes of the .log file
//	         | crc32c of baseOffset, size and the bytes
//
// It is self-delimiting so a caller can put its own framing around it in
// one stream. Indexes are not sent: Restore rebuilds them while it
// CRC-checks every batch.
const (
	snapMagic       = "PLOGSNAP"
	snapVersion     = 1
	snapHeaderSize  = 36
	snapSegHeadSize = 16
)

// Snapshot is a point-in-time view of a Log for streaming to a replica that
// fell behind. It holds its own handles on the segment files, so appends,
// AdvanceStart and segment deletion after it was taken do not affect it;
// Truncate of a segment it covers does (WriteTo then fails).
type Snapshot struct {
	start, end int64
	segs       []snapSegment
}

type snapSegment struct {
	base, size int64
	f          *os.File
}

// Snapshot captures the log's current state. Call it from the writer, with
// no Append running.
func (l *Log) Snapshot() (*Snapshot, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	snap := &Snapshot{start: l.start.Load(), end: l.end.Load()}
	for _, s := range l.segs {
		f, err := os.Open(s.logPath)
		if err != nil {
			snap.Close()
			return nil, fmt.Errorf("partlog: snapshot: %w", err)
		}
		snap.segs = append(snap.segs, snapSegment{base: s.base, size: s.size, f: f})
	}
	return snap, nil
}

// StartOffset is the log start offset when the snapshot was taken.
func (s *Snapshot) StartOffset() int64 { return s.start }

// EndOffset is the offset after the snapshot's last batch.
func (s *Snapshot) EndOffset() int64 { return s.end }

// WriteTo streams the snapshot to w and returns the bytes written.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	var hdr [snapHeaderSize]byte
	copy(hdr[:], snapMagic)
	binary.BigEndian.PutUint16(hdr[8:], snapVersion)
	binary.BigEndian.PutUint64(hdr[12:], uint64(s.start))
	binary.BigEndian.PutUint64(hdr[20:], uint64(s.end))
	binary.BigEndian.PutUint32(hdr[28:], uint32(len(s.segs)))
	binary.BigEndian.PutUint32(hdr[32:], crc32.Checksum(hdr[:32], castagnoli))
	n, err := w.Write(hdr[:])
	total := int64(n)
	if err != nil {
		return total, fmt.Errorf("partlog: write snapshot: %w", err)
	}
	buf := make([]byte, 256<<10)
	for _, seg := range s.segs {
		var sh [snapSegHeadSize]byte
		binary.BigEndian.PutUint64(sh[:], uint64(seg.base))
		binary.BigEndian.PutUint64(sh[8:], uint64(seg.size))
		crc := crc32.New(castagnoli)
		crc.Write(sh[:])
		n, err := w.Write(sh[:])
		total += int64(n)
		if err != nil {
			return total, fmt.Errorf("partlog: write snapshot: %w", err)
		}
		m, err := io.CopyBuffer(io.MultiWriter(w, crc), io.NewSectionReader(seg.f, 0, seg.size), buf)
		total += m
		if err == nil && m != seg.size {
			err = fmt.Errorf("segment %d: %d of %d bytes left in the file", seg.base, m, seg.size)
		}
		if err != nil {
			return total, fmt.Errorf("partlog: write snapshot: %w", err)
		}
		n, err = w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
		total += int64(n)
		if err != nil {
			return total, fmt.Errorf("partlog: write snapshot: %w", err)
		}
	}
	return total, nil
}

// Close releases the snapshot's file handles.
func (s *Snapshot) Close() error {
	var errs []error
	for _, seg := range s.segs {
		errs = append(errs, seg.f.Close())
	}
	s.segs = nil
	return errors.Join(errs...)
}

// Restore replaces the log in dir with the snapshot read from r, consuming
// exactly the bytes WriteTo wrote, and returns it opened. The stream lands
// in a sibling temporary directory, is CRC-checked batch by batch while its
// indexes are rebuilt, is fsynced, and only then swapped in by rename. Any
// Log open on dir must be closed first.
func Restore(dir string, r io.Reader, cfg Config, logger zerolog.Logger) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	parent, name := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("partlog: restore %s: %w", dir, err)
	}
	// Leftovers of an interrupted restore, as Open repairs them.
	if err := finishRestore(dir, logger); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, name+".restore-")
	if err != nil {
		return nil, fmt.Errorf("partlog: restore %s: %w", dir, err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := receiveSnapshot(tmp, r, cfg, logger); err != nil {
		return nil, fmt.Errorf("partlog: restore %s: %w", dir, err)
	}

	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = filepath.Join(parent, name+".old-"+filepath.Base(tmp)[len(name)+len(".restore-"):])
		if err := os.Rename(dir, old); err != nil {
			return nil, fmt.Errorf("partlog: restore %s: %w", dir, err)
		}
		CrashPoint("partlog.restore.old-moved")
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("partlog: restore %s: %w", dir, err)
	}
	done = true
	CrashPoint("partlog.restore.swapped")
	if err := syncDir(parent); err != nil {
		return nil, err
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return nil, fmt.Errorf("partlog: restore %s: remove old log: %w", dir, err)
		}
	}
	return Open(dir, cfg, logger)
}

// receiveSnapshot writes the stream's segments into the empty directory
// tmp and checks them by opening the result.
func receiveSnapshot(tmp string, r io.Reader, cfg Config, logger zerolog.Logger) error {
	var hdr [snapHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	if string(hdr[:8]) != snapMagic {
		return fmt.Errorf("%w: magic %q", ErrBadSnapshot, hdr[:8])
	}
	if got, want := crc32.Checksum(hdr[:32], castagnoli), binary.BigEndian.Uint32(hdr[32:]); got != want {
		return fmt.Errorf("%w: header crc32c %#08x, computed %#08x", ErrBadSnapshot, want, got)
	}
	if v := binary.BigEndian.Uint16(hdr[8:]); v != snapVersion {
		return fmt.Errorf("%w: version %d, this build reads %d", ErrBadSnapshot, v, snapVersion)
	}
	start := int64(binary.BigEndian.Uint64(hdr[12:]))
	end := int64(binary.BigEndian.Uint64(hdr[20:]))
	count := binary.BigEndian.Uint32(hdr[28:])
	if start < 0 || end < start || count == 0 {
		return fmt.Errorf("%w: start %d, end %d, %d segments", ErrBadSnapshot, start, end, count)
	}
	buf := make([]byte, 256<<10)
	prev := int64(-1)
	for i := range count {
		var sh [snapSegHeadSize]byte
		if _, err := io.ReadFull(r, sh[:]); err != nil {
			return fmt.Errorf("%w: segment %d header: %v", ErrBadSnapshot, i, err)
		}
		base := int64(binary.BigEndian.Uint64(sh[:]))
		size := int64(binary.BigEndian.Uint64(sh[8:]))
		if base <= prev || size < 0 || size > math.MaxUint32 {
			return fmt.Errorf("%w: segment %d: base %d after %d, size %d", ErrBadSnapshot, i, base, prev, size)
		}
		prev = base
		crc := crc32.New(castagnoli)
		crc.Write(sh[:])
		path := filepath.Join(tmp, segmentName(base, logSuffix))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("partlog: %w", err)
		}
		n, err := io.CopyBuffer(io.MultiWriter(f, crc), io.LimitReader(r, size), buf)
		if err == nil && n != size {
			err = fmt.Errorf("%w: segment %d: stream ended after %d of %d bytes", ErrBadSnapshot, i, n, size)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("partlog: receive %s: %w", path, err)
		}
		var sum [4]byte
		if _, err := io.ReadFull(r, sum[:]); err != nil {
			return fmt.Errorf("%w: segment %d checksum: %v", ErrBadSnapshot, i, err)
		}
		if got, want := crc.Sum32(), binary.BigEndian.Uint32(sum[:]); got != want {
			return fmt.Errorf("%w: segment %d: crc32c %#08x, computed %#08x", ErrBadSnapshot, i, want, got)
		}
	}
	if err := writeStartFile(tmp, start); err != nil {
		return err
	}
	l, err := open(tmp, cfg, logger, true)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	gotStart, gotEnd := l.StartOffset(), l.EndOffset()
	if err := l.Close(); err != nil {
		return err
	}
	if gotStart != start || gotEnd != end {
		return fmt.Errorf("%w: declares offsets [%d, %d), segments hold [%d, %d)", ErrBadSnapshot, start, end, gotStart, gotEnd)
	}
	return syncDir(tmp)
}
