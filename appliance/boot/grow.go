//go:build linux

package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/eddybroker/eddy/appliance/image"
)

// sysClassBlock is where the kernel lists block devices; tests point it
// elsewhere.
var sysClassBlock = "/sys/class/block"

// growData grows the data partition dev, mounted at mnt, to fill its disk:
// the image is smaller than the disk it is flashed onto, so on first boot
// the GPT is rewritten (image.GrowData), the kernel is told the
// partition's new size (BLKPG_RESIZE_PARTITION; the disk is in use, so it
// cannot re-read its table) and the ext4 file system is grown online
// (EXT4_IOC_RESIZE_FS). A file system smaller than its partition (a boot
// cut short after the GPT was grown) is grown too. Every failure is
// logged and the box goes on with the size it has.
func growData(log zerolog.Logger, dev, mnt string) {
	start := time.Now()
	part, err := partitionOf(dev)
	if err != nil {
		log.Warn().Err(err).Str("device", dev).Msg("data partition: not growing it")
		return
	}
	log = log.With().Str("disk", "/dev/"+part.disk).Logger()
	oldSize, newSize, err := growPartition(part)
	if err != nil {
		log.Error().Err(err).Str("device", dev).Msg("growing the data partition failed; keeping its size")
		return
	}
	if newSize > oldSize {
		log.Info().Str("device", dev).Int64("old_mib", oldSize>>20).Int64("new_mib", newSize>>20).
			Dur("took", time.Since(start).Round(time.Millisecond)).Msg("data partition grown")
	}
	// The kernel's idea of the dataPartition, which the file system may
	// fill.
	size, err := readSectors(filepath.Join(sysClassBlock, part.name, "size"))
	if err != nil {
		log.Error().Err(err).Msg("data partition size")
		return
	}
	start = time.Now()
	oldFS, newFS, err := growFS(dev, mnt, size*512)
	if err != nil {
		log.Error().Err(err).Str("at", mnt).Msg("growing the data file system failed; keeping its size")
		return
	}
	if newFS > oldFS {
		log.Info().Str("at", mnt).Int64("old_mib", oldFS>>20).Int64("new_mib", newFS>>20).
			Dur("took", time.Since(start).Round(time.Millisecond)).Msg("data file system grown")
	}
}

// dataPartition is a partition's place on its disk, from sysfs.
type dataPartition struct {
	name, disk  string // vda2, vda
	number      int    // 2
	start, size int64  // in 512-byte sectors
	diskSize    int64  // in 512-byte sectors
}

// partitionOf finds dev's disk in sysfs: /sys/class/block/<part> links
// into its disk's directory.
func partitionOf(dev string) (dataPartition, error) {
	p := dataPartition{name: filepath.Base(dev)}
	dir := filepath.Join(sysClassBlock, p.name)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return p, fmt.Errorf("sysfs: %w", err)
	}
	if p.number, err = readSysInt(filepath.Join(dir, "partition")); err != nil {
		return p, fmt.Errorf("%s is not a partition: %w", dev, err)
	}
	p.disk = filepath.Base(filepath.Dir(real))
	diskDir := filepath.Join(sysClassBlock, p.disk)
	if lbs, err := readSysInt(filepath.Join(diskDir, "queue", "logical_block_size")); err == nil && lbs != 512 {
		// The image's GPT is in 512-byte sectors: on a 4Kn disk it would
		// not have booted.
		return p, fmt.Errorf("/dev/%s has %d-byte sectors; the image's GPT is for 512-byte ones", p.disk, lbs)
	}
	for _, f := range []struct {
		v    *int64
		file string
	}{{&p.start, filepath.Join(dir, "start")}, {&p.size, filepath.Join(dir, "size")}, {&p.diskSize, filepath.Join(diskDir, "size")}} {
		if *f.v, err = readSectors(f.file); err != nil {
			return p, err
		}
	}
	return p, nil
}

// growPartition grows the partition's GPT entry to the disk's end and
// tells the kernel its new size. It returns the sizes in bytes.
func growPartition(p dataPartition) (oldSize, newSize int64, err error) {
	f, err := os.OpenFile("/dev/"+p.disk, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	oldSize, newSize, err = image.GrowData(f, p.diskSize*512)
	if err != nil {
		return 0, 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, 0, fmt.Errorf("sync /dev/%s: %w", p.disk, err)
	}
	if newSize == p.size*512 {
		return oldSize, newSize, nil
	}
	if err := resizePartition(f, p.number, p.start*512, newSize); err != nil {
		// The new GPT is on disk: the next boot's kernel reads it.
		return 0, 0, fmt.Errorf("the GPT is grown, but telling the kernel failed (it takes effect at the next boot): %w", err)
	}
	return oldSize, newSize, nil
}

// resizePartition sets the kernel's size of partition number pno of the
// disk open as f (BLKPG_RESIZE_PARTITION; start and length in bytes).
func resizePartition(f *os.File, pno int, start, length int64) error {
	p := unix.BlkpgPartition{Start: start, Length: length, Pno: int32(pno)}
	arg := unix.BlkpgIoctlArg{Op: unix.BLKPG_RESIZE_PARTITION, Datalen: int32(unsafe.Sizeof(p)), Data: (*byte)(unsafe.Pointer(&p))}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg)))
	runtime.KeepAlive(&p)
	if errno != 0 {
		return fmt.Errorf("BLKPG_RESIZE_PARTITION: %w", errno)
	}
	return nil
}

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64).
const ext4IocResizeFS = 1<<30 | 8<<16 | 'f'<<8 | 16

// growFS grows the ext4 file system on dev, mounted at mnt, to size bytes
// when it is smaller, and returns its sizes in bytes.
func growFS(dev, mnt string, size int64) (oldSize, newSize int64, err error) {
	blocks, blockSize, err := ext4Size(dev)
	if err != nil {
		return 0, 0, err
	}
	want := uint64(size) / blockSize
	if want <= blocks {
		return int64(blocks * blockSize), int64(blocks * blockSize), nil
	}
	d, err := os.Open(mnt)
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&want)))
	if errno != 0 {
		return 0, 0, fmt.Errorf("EXT4_IOC_RESIZE_FS to %d blocks: %w", want, errno)
	}
	return int64(blocks * blockSize), int64(want * blockSize), nil
}

// ext4Size reads an ext4 superblock: the file system's blocks and block
// size.
func ext4Size(dev string) (blocks, blockSize uint64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, 0, fmt.Errorf("%s: superblock: %w", dev, err)
	}
	return parseExt4Super(sb)
}

// parseExt4Super reads the block count and size from an ext4 superblock
// (the 1024 bytes at offset 1024).
func parseExt4Super(sb []byte) (blocks, blockSize uint64, err error) {
	if len(sb) < 1024 || binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return 0, 0, errors.New("not an ext4 file system")
	}
	logSize := binary.LittleEndian.Uint32(sb[0x18:])
	if logSize > 6 {
		return 0, 0, fmt.Errorf("ext4 block size 2^%d KiB", logSize)
	}
	blockSize = 1024 << logSize
	blocks = uint64(binary.LittleEndian.Uint32(sb[0x04:]))
	if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT
		blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	return blocks, blockSize, nil
}

func readSysInt(file string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(readString(file)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	return n, nil
}

func readSectors(file string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(readString(file)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: not a number of sectors", file)
	}
	return n, nil
}
