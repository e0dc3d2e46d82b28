package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// countingDisk counts GrowData's writes and syncs to a file.
type countingDisk struct {
	*os.File
	writes, syncs int
}

func (c *countingDisk) WriteAt(b []byte, off int64) (int, error) {
	c.writes++
	return c.File.WriteAt(b, off)
}

func (c *countingDisk) Sync() error {
	c.syncs++
	return c.File.Sync()
}

const oneMiB = 1 << 20

// imageLayout is Build's: 1 MiB for the GPT, the ESP, the data partition,
// 1 MiB for the backup GPT.
func imageLayout(espMiB, dataMiB int64) (sectors int64, parts []gptPart) {
	seed := []byte("grow test")
	espFirst := int64(oneMiB / sectorSize)
	dataFirst := espFirst + espMiB*oneMiB/sectorSize
	total := (1 + espMiB + dataMiB + 1) * oneMiB
	return total / sectorSize, []gptPart{
		{Type: guidESP, ID: derivedGUID(seed, "esp"), First: espFirst, Last: dataFirst - 1, Name: ESPName},
		{Type: guidLinux, ID: derivedGUID(seed, "data"), First: dataFirst, Last: (total-oneMiB)/sectorSize - 1, Name: DataName},
	}
}

// makeDisk writes a sparse disk file of sectors sectors with a GPT of
// parts and a marker at the start and end of each partition.
func makeDisk(t *testing.T, sectors int64, parts []gptPart) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(sectors * sectorSize); err != nil {
		t.Fatal(err)
	}
	if err := writeGPT(f, sectors, derivedGUID([]byte("grow test"), "disk"), parts); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		writeMarker(t, f, p.First, p.Name+" first")
		writeMarker(t, f, p.Last, p.Name+" last")
	}
	return file
}

func writeMarker(t *testing.T, f *os.File, lba int64, s string) {
	t.Helper()
	if _, err := f.WriteAt([]byte(s), lba*sectorSize); err != nil {
		t.Fatal(err)
	}
}

func checkMarker(t *testing.T, f *os.File, lba int64, s string) {
	t.Helper()
	b := make([]byte, len(s))
	if _, err := f.ReadAt(b, lba*sectorSize); err != nil || string(b) != s {
		t.Fatalf("marker %q at sector %d: read %q, %v", s, lba, b, err)
	}
}

func sgdiskVerify(t *testing.T, file string) {
	t.Helper()
	sgdisk, err := exec.LookPath("sgdisk")
	if err != nil {
		t.Log("sgdisk not installed; not cross-checking the GPT")
		return
	}
	out, err := exec.Command(sgdisk, "-v", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v: %v\n%s", err, out)
	}
}

// TestGrowData flashes an image-shaped disk onto a bigger one (of a size
// that is not a whole number of MiB), grows it, and checks both GPTs, the
// sizes, that nothing moved, and that a second run does nothing.
func TestGrowData(t *testing.T) {
	sectors, parts := imageLayout(64, 64)
	file := makeDisk(t, sectors, parts)
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, err := ReadPartitions(f)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1<<30 + 300<<10 // 1 GiB and 300 KiB
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	disk := &countingDisk{File: f}
	oldSize, newSize, err := GrowData(disk, size)
	if err != nil {
		t.Fatal(err)
	}
	// The data partition starts at 65 MiB and now ends at 1 GiB: the last
	// usable sector is 34 sectors before the end, aligned down to a MiB.
	if oldSize != 64*oneMiB || newSize != (1024-65)*oneMiB {
		t.Fatalf("grew from %d to %d bytes, want %d to %d", oldSize, newSize, 64*oneMiB, (1024-65)*oneMiB)
	}
	if disk.writes == 0 || disk.syncs < 2 {
		t.Fatalf("%d writes, %d syncs", disk.writes, disk.syncs)
	}
	after, err := ReadPartitions(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after[0] != before[0] || after[1].Name != DataName || after[1].Offset != before[1].Offset ||
		after[1].UUID != before[1].UUID || after[1].TypeID != before[1].TypeID || after[1].Size != newSize {
		t.Fatalf("partitions %+v, were %+v", after, before)
	}
	// Both GPTs agree; the backup is at the last sector.
	last := int64(size/sectorSize) - 1
	primary, err := readGPT(f, 1)
	if err != nil {
		t.Fatal(err)
	}
	backup, err := readGPT(f, last)
	if err != nil {
		t.Fatalf("backup GPT at the disk's last sector: %v", err)
	}
	if primary.alternate != last || backup.alternate != 1 || backup.entriesLBA != last-32 || primary.lastUsable != last-33 ||
		backup.lastUsable != primary.lastUsable || backup.firstUsable != primary.firstUsable || backup.diskGUID != primary.diskGUID ||
		!bytes.Equal(backup.entries, primary.entries) {
		t.Fatalf("primary %+v\nbackup %+v", primary, backup)
	}
	// The old backup header is gone, the protective MBR covers the disk.
	if _, err := readGPT(f, sectors-1); err == nil {
		t.Fatal("the old backup header is still there")
	}
	mbr := make([]byte, sectorSize)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(mbr[446+12:]); int64(got) != last {
		t.Fatalf("protective MBR covers %d sectors, want %d", got, last)
	}
	// The partitions' contents did not move.
	for _, p := range parts {
		checkMarker(t, f, p.First, p.Name+" first")
		checkMarker(t, f, p.Last, p.Name+" last")
	}
	sgdiskVerify(t, file)

	// Again: nothing to do, nothing written.
	disk = &countingDisk{File: f}
	oldSize, again, err := GrowData(disk, size)
	if err != nil || oldSize != newSize || again != newSize || disk.writes != 0 {
		t.Fatalf("second grow: %d -> %d, %v, %d writes", oldSize, again, err, disk.writes)
	}

	// Flashed onto a still bigger disk: grows again. The disk is a whole
	// number of MiB, so its last MiB holds the backup GPT.
	if err := f.Truncate(4 << 30); err != nil {
		t.Fatal(err)
	}
	if oldSize, newSize, err = GrowData(f, 4<<30); err != nil || oldSize != (1024-65)*oneMiB || newSize != (4095-65)*oneMiB {
		t.Fatalf("third grow: %d -> %d, %v", oldSize, newSize, err)
	}
	if _, err := readGPT(f, 4<<30/sectorSize-1); err != nil {
		t.Fatal(err)
	}
	sgdiskVerify(t, file)
}

// TestGrowDataNoop leaves a disk of the image's own size alone. On a disk
// 100 KiB bigger the partition takes the MiB that held the image's backup
// GPT, and on one 10 KiB bigger only the backup GPT moves.
func TestGrowDataNoop(t *testing.T) {
	sectors, parts := imageLayout(8, 64)
	file := makeDisk(t, sectors, parts)
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	disk := &countingDisk{File: f}
	oldSize, newSize, err := GrowData(disk, sectors*sectorSize)
	if err != nil || oldSize != 64*oneMiB || newSize != 64*oneMiB || disk.writes != 0 {
		t.Fatalf("grow on the same size: %d -> %d, %v, %d writes", oldSize, newSize, err, disk.writes)
	}
	for _, tt := range []struct{ more, want int64 }{{10 << 10, 64 * oneMiB}, {100 << 10, 65 * oneMiB}} {
		size := sectors*sectorSize + tt.more
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		if oldSize, newSize, err = GrowData(f, size); err != nil || newSize != tt.want {
			t.Fatalf("grow by %d KiB: %d -> %d, %v", tt.more>>10, oldSize, newSize, err)
		}
		if _, err := readGPT(f, size/sectorSize-1); err != nil {
			t.Fatal(err)
		}
		sgdiskVerify(t, file)
	}
}

// TestGrowDataRefuses refuses disks it does not understand, writing
// nothing.
func TestGrowDataRefuses(t *testing.T) {
	sectors, parts := imageLayout(8, 64)
	swapped := []gptPart{parts[1], parts[0]}
	swapped[0].First, swapped[0].Last = parts[0].First, parts[0].First+64*oneMiB/sectorSize-1
	swapped[1].First, swapped[1].Last = swapped[0].Last+1, parts[1].Last
	noData := []gptPart{parts[0]}
	twoData := []gptPart{parts[0], parts[1]}
	twoData[0].Name = DataName
	tests := []struct {
		name    string
		parts   []gptPart
		size    int64 // of the disk it is "flashed" onto
		corrupt int64 // a byte to flip, or 0
		err     string
	}{
		{"data partition not last", swapped, 1 << 30, 0, "is not the last partition"},
		{"disk smaller than the image", parts, sectors*sectorSize - oneMiB, 0, "the disk is smaller than the image"},
		{"no data partition", noData, 1 << 30, 0, "no partition named eddy-data"},
		{"two data partitions", twoData, 1 << 30, 0, "two partitions are named eddy-data"},
		{"bad header checksum", parts, 1 << 30, sectorSize + 40, "checksum mismatch"},
		{"bad entries checksum", parts, 1 << 30, 2*sectorSize + 200, "checksum mismatch"},
		{"no GPT", parts, 1 << 30, sectorSize, "no GPT header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := makeDisk(t, sectors, tt.parts)
			f, err := os.OpenFile(file, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if tt.corrupt != 0 {
				b := []byte{0}
				if _, err := f.ReadAt(b, tt.corrupt); err != nil {
					t.Fatal(err)
				}
				b[0] ^= 0x5a
				if _, err := f.WriteAt(b, tt.corrupt); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Truncate(max(tt.size, sectors*sectorSize)); err != nil {
				t.Fatal(err)
			}
			disk := &countingDisk{File: f}
			_, _, err = GrowData(disk, tt.size)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want an error containing %q", err, tt.err)
			}
			if disk.writes != 0 {
				t.Fatalf("%d writes on a refused disk", disk.writes)
			}
		})
	}
}

// TestGrowBuiltImage grows a real image, as Build writes it, on a 1 GiB
// disk: the GPT checks out and the EFI partition still reads.
func TestGrowBuiltImage(t *testing.T) {
	opts := testImageOptions(t)
	if _, err := Build(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(opts.Output, 1<<30); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(opts.Output, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	oldSize, newSize, err := GrowData(f, 1<<30)
	f.Close()
	if err != nil || oldSize != 64*oneMiB || newSize != (1023-65)*oneMiB {
		t.Fatalf("grew %d -> %d, %v", oldSize, newSize, err)
	}
	sgdiskVerify(t, opts.Output)
	if got := mtype(t, opts.Output, ConfigPath); got != string(opts.ConfigYAML) {
		t.Fatalf("%s after growing:\n%s", ConfigPath, got)
	}
	// A grown disk takes no per-device config: its data partition is no
	// longer data.size, and the refusal says why.
	err = WriteConfig(context.Background(), opts.Output, opts.Config, opts.ConfigYAML)
	if err == nil || !strings.Contains(err.Error(), "data.size: 64MiB, but the image's data partition is 958 MiB") || !strings.Contains(err.Error(), "grew to fill it") {
		t.Fatalf("WriteConfig on a grown disk: %v", err)
	}
}

// memDisk is a sparse in-memory disk of a fixed size.
type memDisk struct {
	size    int64
	sectors map[int64][]byte
	writes  int
}

func (m *memDisk) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > m.size {
		return 0, io.EOF
	}
	for i := range b {
		o := off + int64(i)
		if s := m.sectors[o/sectorSize]; s != nil {
			b[i] = s[o%sectorSize]
		} else {
			b[i] = 0
		}
	}
	return len(b), nil
}

func (m *memDisk) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > m.size {
		return 0, io.ErrShortWrite
	}
	m.writes++
	for i := range b {
		o := off + int64(i)
		s := m.sectors[o/sectorSize]
		if s == nil {
			s = make([]byte, sectorSize)
			m.sectors[o/sectorSize] = s
		}
		s[o%sectorSize] = b[i]
	}
	return len(b), nil
}

// FuzzGrow runs GrowData on any primary GPT area (the disk's first bytes)
// and disk size: it must not panic, and when it succeeds both GPTs must
// read back and a second run must do nothing.
func FuzzGrow(f *testing.F) {
	sectors, parts := imageLayout(1, 2)
	disk := &memDisk{size: sectors * sectorSize, sectors: map[int64][]byte{}}
	if err := writeGPT(disk, sectors, guid{1}, parts); err != nil {
		f.Fatal(err)
	}
	primary := make([]byte, 34*sectorSize)
	if _, err := disk.ReadAt(primary, 0); err != nil {
		f.Fatal(err)
	}
	for _, n := range []uint32{uint32(sectors), uint32(sectors) + 7, uint32(sectors) + 2048, uint32(sectors) * 9, 40, 1 << 22} {
		f.Add(primary, n, false)
		f.Add(primary, n, true)
	}
	f.Fuzz(func(t *testing.T, primary []byte, n uint32, fixCRCs bool) {
		sectors := max(int64(n%(1<<23)), (int64(len(primary))+sectorSize-1)/sectorSize)
		disk := &memDisk{size: sectors * sectorSize, sectors: map[int64][]byte{}}
		if fixCRCs {
			// Past the checksums, to the layout checks.
			primary = fixGPTChecksums(primary)
		}
		if _, err := disk.WriteAt(primary, 0); err != nil {
			t.Fatal(err)
		}
		disk.writes = 0
		oldSize, newSize, err := GrowData(disk, disk.size)
		if err != nil {
			return
		}
		if newSize < oldSize {
			t.Fatalf("shrank: %d -> %d", oldSize, newSize)
		}
		if _, err := ReadPartitions(disk); err != nil {
			t.Fatalf("primary after growing: %v", err)
		}
		if _, err := readGPT(disk, sectors-1); err != nil && disk.writes > 0 {
			t.Fatalf("backup after growing: %v", err)
		}
		disk.writes = 0
		o, n2, err := GrowData(disk, disk.size)
		if err != nil || o != newSize || n2 != newSize || disk.writes != 0 {
			t.Fatalf("second run: %d -> %d, %v, %d writes", o, n2, err, disk.writes)
		}
	})
}

// fixGPTChecksums returns b, an image's first sectors, with the primary
// GPT's checksums made to match when its entries lie within b.
func fixGPTChecksums(b []byte) []byte {
	if len(b) < 2*sectorSize {
		return b
	}
	b = bytes.Clone(b)
	h := b[sectorSize : 2*sectorSize]
	size := binary.LittleEndian.Uint32(h[12:])
	if size < 92 || size > sectorSize {
		return b
	}
	lba := binary.LittleEndian.Uint64(h[72:])
	n, esz := uint64(binary.LittleEndian.Uint32(h[80:])), uint64(binary.LittleEndian.Uint32(h[84:]))
	if lba < uint64(len(b))/sectorSize && n <= 1024 && esz <= 1024 && lba*sectorSize+n*esz <= uint64(len(b)) {
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(b[lba*sectorSize:lba*sectorSize+n*esz]))
	}
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:size]))
	return b
}
