package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"unicode/utf16"
)

// GrowData grows an image's data partition to fill a disk of size bytes
// the image was flashed onto: it moves the backup GPT to the disk's end
// and extends the partition named DataName, which must be the last one,
// to the last usable sector, its end aligned down to a MiB. GUIDs, names,
// types and attributes are kept, and no other partition moves. It returns
// the partition's size before and after, in bytes; when there is nothing
// to do (the backup GPT is at the disk's end and the partition ends at the
// aligned end) it writes nothing and returns the same size twice.
//
// The new backup GPT is written (and synced) before the primary one, and
// the old backup header is wiped last, so a power cut at any point leaves
// a valid table: the old one, or the new one.
//
// d is the whole disk (or an image file); if it has a Sync method (an
// *os.File does), GrowData calls it between those steps. Only the GPT
// changes; the file system in the partition is grown
// separately (appliance/boot does it online).
func GrowData(d interface {
	io.ReaderAt
	io.WriterAt
}, size int64) (oldSize, newSize int64, err error) {
	sectors := size / sectorSize
	pt, err := readGPT(d, 1)
	if err != nil {
		return 0, 0, fmt.Errorf("grow: primary %w", err)
	}
	entrySectors := (int64(len(pt.entries)) + sectorSize - 1) / sectorSize
	if pt.entriesLBA != 2 {
		return 0, 0, fmt.Errorf("grow: the partition table is at LBA %d, not 2; not an eddy image", pt.entriesLBA)
	}
	if pt.alternate >= sectors {
		return 0, 0, fmt.Errorf("grow: the disk has %d sectors of %d bytes, but its GPT puts the backup header at sector %d: the disk is smaller than the image written onto it", sectors, sectorSize, pt.alternate)
	}
	if pt.alternate != pt.lastUsable+entrySectors+1 || pt.firstUsable < 2+entrySectors || pt.firstUsable > pt.lastUsable {
		return 0, 0, fmt.Errorf("grow: unexpected GPT layout (usable sectors %d..%d, backup header at %d, %d entry sectors)", pt.firstUsable, pt.lastUsable, pt.alternate, entrySectors)
	}
	data, lastEnd := -1, int64(-1)
	for i := range pt.n {
		e := pt.entry(i)
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
		if first < pt.firstUsable || last > pt.lastUsable || last < first {
			return 0, 0, fmt.Errorf("grow: partition %d (%d..%d) is outside the usable sectors %d..%d", i+1, first, last, pt.firstUsable, pt.lastUsable)
		}
		if entryName(e) == DataName {
			if data >= 0 {
				return 0, 0, fmt.Errorf("grow: two partitions are named %s", DataName)
			}
			data = i
		}
		lastEnd = max(lastEnd, last)
	}
	if data < 0 {
		return 0, 0, fmt.Errorf("grow: no partition named %s; not an eddy image", DataName)
	}
	e := pt.entry(data)
	first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
	if last != lastEnd {
		return 0, 0, fmt.Errorf("grow: %s (sectors %d..%d) is not the last partition (another ends at %d); not growing it", DataName, first, last, lastEnd)
	}
	oldSize = (last - first + 1) * sectorSize

	const align = (1 << 20) / sectorSize
	newLastUsable := sectors - 2 - entrySectors
	newLast := max(last, (newLastUsable+1)/align*align-1)
	newAlternate := sectors - 1
	if newAlternate == pt.alternate && newLast == last {
		return oldSize, oldSize, nil
	}
	newSize = (newLast - first + 1) * sectorSize

	entries := slices.Clone(pt.entries)
	binary.LittleEndian.PutUint64(entries[data*int(pt.esz)+40:], uint64(newLast))
	entriesCRC := crc32.ChecksumIEEE(entries)
	header := func(self, alternate, entriesLBA int64) []byte {
		h := slices.Clone(pt.header)
		binary.LittleEndian.PutUint64(h[24:], uint64(self))
		binary.LittleEndian.PutUint64(h[32:], uint64(alternate))
		binary.LittleEndian.PutUint64(h[48:], uint64(newLastUsable))
		binary.LittleEndian.PutUint64(h[72:], uint64(entriesLBA))
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:pt.headerSize]))
		return h
	}
	// In order; a nil b is a sync.
	steps := []gptWrite{
		{"backup partition entries", entries, newAlternate - entrySectors},
		{"backup header", header(newAlternate, 1, newAlternate-entrySectors), newAlternate},
		{"", nil, 0},
		{"primary partition entries", entries, 2},
		{"primary header", header(1, newAlternate, 2), 1},
		{"", nil, 0},
	}
	// The protective MBR covers the whole disk (up to 2 TiB).
	mbr := make([]byte, sectorSize)
	if _, err := d.ReadAt(mbr, 0); err != nil {
		return 0, 0, fmt.Errorf("grow: protective MBR: %w", err)
	}
	if mbr[510] == 0x55 && mbr[511] == 0xAA && mbr[446+4] == 0xEE {
		binary.LittleEndian.PutUint32(mbr[446+12:], uint32(min(sectors-1, 0xFFFFFFFF)))
		steps = append(steps, gptWrite{"protective MBR", mbr, 0})
	}
	if pt.alternate < newAlternate-entrySectors {
		// The old backup header lies in the space the data partition
		// grows into; a stale one there could mislead a disk scan. On a
		// disk grown by less than the backup's size it lies inside the
		// new backup's entries instead, and is overwritten by them.
		steps = append(steps, gptWrite{"old backup header", make([]byte, sectorSize), pt.alternate})
	}
	steps = append(steps, gptWrite{"", nil, 0})
	syncer, _ := d.(interface{ Sync() error })
	for _, s := range steps {
		if s.b == nil {
			if syncer != nil {
				if err := syncer.Sync(); err != nil {
					return 0, 0, fmt.Errorf("grow: sync: %w", err)
				}
			}
			continue
		}
		if _, err := d.WriteAt(s.b, s.lba*sectorSize); err != nil {
			return 0, 0, fmt.Errorf("grow: writing the %s: %w", s.what, err)
		}
	}
	return oldSize, newSize, nil
}

// gptWrite is one write of GrowData.
type gptWrite struct {
	what string
	b    []byte
	lba  int64
}

// gptTable is one copy of a GPT, checked: the header and its entries.
type gptTable struct {
	header                                   []byte // headerSize bytes
	headerSize                               int
	self, alternate, firstUsable, lastUsable int64
	entriesLBA                               int64
	n, esz                                   int
	entries                                  []byte // n*esz bytes
	diskGUID                                 [16]byte
}

func (t *gptTable) entry(i int) []byte { return t.entries[i*t.esz : (i+1)*t.esz] }

// readGPT reads and checks the GPT header at lba and its partition
// entries.
func readGPT(r io.ReaderAt, lba int64) (*gptTable, error) {
	h := make([]byte, sectorSize)
	if _, err := r.ReadAt(h, lba*sectorSize); err != nil {
		return nil, fmt.Errorf("gpt header at sector %d: %w", lba, err)
	}
	if string(h[:8]) != "EFI PART" {
		return nil, fmt.Errorf("gpt: no GPT header at sector %d", lba)
	}
	t := &gptTable{headerSize: int(binary.LittleEndian.Uint32(h[12:]))}
	if t.headerSize < 92 || t.headerSize > sectorSize {
		return nil, fmt.Errorf("gpt header at sector %d: bad header size %d", lba, t.headerSize)
	}
	t.header = h[:t.headerSize]
	want := binary.LittleEndian.Uint32(h[16:])
	hc := slices.Clone(t.header)
	binary.LittleEndian.PutUint32(hc[16:], 0)
	if crc32.ChecksumIEEE(hc) != want {
		return nil, fmt.Errorf("gpt header at sector %d: checksum mismatch", lba)
	}
	t.self = int64(binary.LittleEndian.Uint64(h[24:]))
	t.alternate = int64(binary.LittleEndian.Uint64(h[32:]))
	t.firstUsable = int64(binary.LittleEndian.Uint64(h[40:]))
	t.lastUsable = int64(binary.LittleEndian.Uint64(h[48:]))
	copy(t.diskGUID[:], h[56:72])
	t.entriesLBA = int64(binary.LittleEndian.Uint64(h[72:]))
	t.n = int(binary.LittleEndian.Uint32(h[80:]))
	t.esz = int(binary.LittleEndian.Uint32(h[84:]))
	if t.self != lba {
		return nil, fmt.Errorf("gpt header at sector %d says it is at sector %d", lba, t.self)
	}
	if t.n < 1 || t.n > 1024 || t.esz < 128 || t.esz > 1024 || t.esz%8 != 0 {
		return nil, fmt.Errorf("gpt header at sector %d: bad partition table geometry (%d entries of %d bytes)", lba, t.n, t.esz)
	}
	if t.entriesLBA < 0 || t.entriesLBA > (1<<62)/sectorSize || t.alternate < 0 || t.lastUsable < 0 || t.firstUsable < 0 {
		return nil, fmt.Errorf("gpt header at sector %d: bad sector numbers", lba)
	}
	t.entries = make([]byte, t.n*t.esz)
	if _, err := r.ReadAt(t.entries, t.entriesLBA*sectorSize); err != nil {
		return nil, fmt.Errorf("gpt partition entries at sector %d: %w", t.entriesLBA, err)
	}
	if crc32.ChecksumIEEE(t.entries) != binary.LittleEndian.Uint32(h[88:]) {
		return nil, fmt.Errorf("gpt partition entries at sector %d: checksum mismatch", t.entriesLBA)
	}
	return t, nil
}

// entryName is a partition entry's UTF-16 name.
func entryName(e []byte) string {
	var name []uint16
	for j := 0; j < 36; j++ {
		u := binary.LittleEndian.Uint16(e[56+2*j:])
		if u == 0 {
			break
		}
		name = append(name, u)
	}
	return string(utf16.Decode(name))
}
