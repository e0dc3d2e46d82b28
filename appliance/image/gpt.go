package image

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

const sectorSize = 512

// guid is a GUID in its text form's byte order (big-endian fields).
type guid [16]byte

var (
	guidESP   = mustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	guidLinux = mustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
)

func mustGUID(s string) guid {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("image: bad GUID constant " + s)
	}
	return guid(b)
}

// derivedGUID is a version-4-shaped GUID derived from seed and what: GPT
// wants unique GUIDs, a reproducible build wants them stable.
func derivedGUID(seed []byte, what string) guid {
	h := sha256.New()
	h.Write(seed)
	h.Write([]byte{0})
	h.Write([]byte(what))
	var g guid
	copy(g[:], h.Sum(nil))
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// onDisk is the GPT byte order: the first three fields little-endian.
func (g guid) onDisk() []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:], binary.BigEndian.Uint32(g[0:]))
	binary.LittleEndian.PutUint16(b[4:], binary.BigEndian.Uint16(g[4:]))
	binary.LittleEndian.PutUint16(b[6:], binary.BigEndian.Uint16(g[6:]))
	copy(b[8:], g[8:])
	return b
}

func (g guid) String() string {
	return fmt.Sprintf("%X-%X-%X-%X-%X", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}

// gptPart is one partition; First and Last are inclusive LBAs.
type gptPart struct {
	Type, ID    guid
	First, Last int64
	Name        string
}

const gptEntries = 128

// writeGPT writes a protective MBR and the primary and backup GPT of a
// disk of sectors sectors into w.
func writeGPT(w io.WriterAt, sectors int64, disk guid, parts []gptPart) error {
	if len(parts) > gptEntries {
		return fmt.Errorf("gpt: %d partitions", len(parts))
	}
	mbr := make([]byte, sectorSize)
	pe := mbr[446:462]
	pe[1], pe[2], pe[3] = 0x00, 0x02, 0x00
	pe[4] = 0xEE
	pe[5], pe[6], pe[7] = 0xFF, 0xFF, 0xFF
	binary.LittleEndian.PutUint32(pe[8:], 1)
	binary.LittleEndian.PutUint32(pe[12:], uint32(min(sectors-1, 0xFFFFFFFF)))
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := w.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("gpt: %w", err)
	}
	entries := make([]byte, gptEntries*128)
	for i, p := range parts {
		e := entries[i*128:]
		copy(e[0:], p.Type.onDisk())
		copy(e[16:], p.ID.onDisk())
		binary.LittleEndian.PutUint64(e[32:], uint64(p.First))
		binary.LittleEndian.PutUint64(e[40:], uint64(p.Last))
		for j, u := range utf16.Encode([]rune(p.Name)) {
			if j == 36 {
				return fmt.Errorf("gpt: partition name %q is longer than 36 characters", p.Name)
			}
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	last := sectors - 1
	entrySectors := int64(len(entries) / sectorSize)
	header := func(self, backup, entriesLBA int64) []byte {
		h := make([]byte, sectorSize)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], uint64(self))
		binary.LittleEndian.PutUint64(h[32:], uint64(backup))
		binary.LittleEndian.PutUint64(h[40:], uint64(2+entrySectors))
		binary.LittleEndian.PutUint64(h[48:], uint64(last-1-entrySectors))
		copy(h[56:], disk.onDisk())
		binary.LittleEndian.PutUint64(h[72:], uint64(entriesLBA))
		binary.LittleEndian.PutUint32(h[80:], gptEntries)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	for _, p := range parts {
		if p.First < 2+entrySectors || p.Last > last-1-entrySectors || p.Last < p.First {
			return fmt.Errorf("gpt: partition %s (%d..%d) is outside the usable sectors", p.Name, p.First, p.Last)
		}
	}
	for _, wr := range []struct {
		b   []byte
		lba int64
	}{
		{header(1, last, 2), 1},
		{entries, 2},
		{entries, last - entrySectors},
		{header(last, 1, last-entrySectors), last},
	} {
		if _, err := w.WriteAt(wr.b, wr.lba*sectorSize); err != nil {
			return fmt.Errorf("gpt: %w", err)
		}
	}
	return nil
}
