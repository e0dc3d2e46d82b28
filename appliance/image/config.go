package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/eddybroker/eddy/appliance/device"
)

// ModulesPath lists, on the EFI partition, the modules the image's
// initramfs holds, so a per-device config can be checked against them.
const ModulesPath = "eddy/modules"

// Partition is a GPT partition of an image, in bytes.
type Partition struct {
	Name         string
	Offset, Size int64
	TypeID, UUID guid
}

// ReadPartitions reads the primary GPT of an image and checks its CRCs.
func ReadPartitions(r io.ReaderAt) ([]Partition, error) {
	h := make([]byte, sectorSize)
	if _, err := r.ReadAt(h, sectorSize); err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	if string(h[:8]) != "EFI PART" {
		return nil, errors.New("gpt: no GPT header; is this an eddy image?")
	}
	size := binary.LittleEndian.Uint32(h[12:])
	if size < 92 || size > sectorSize {
		return nil, errors.New("gpt: bad header size")
	}
	want := binary.LittleEndian.Uint32(h[16:])
	hc := slices.Clone(h[:size])
	binary.LittleEndian.PutUint32(hc[16:], 0)
	if crc32.ChecksumIEEE(hc) != want {
		return nil, errors.New("gpt: header checksum mismatch")
	}
	lba := int64(binary.LittleEndian.Uint64(h[72:]))
	n := binary.LittleEndian.Uint32(h[80:])
	esz := binary.LittleEndian.Uint32(h[84:])
	if n > 1024 || esz < 128 || esz > 1024 {
		return nil, errors.New("gpt: bad partition table geometry")
	}
	entries := make([]byte, int(n)*int(esz))
	if _, err := r.ReadAt(entries, lba*sectorSize); err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	if crc32.ChecksumIEEE(entries) != binary.LittleEndian.Uint32(h[88:]) {
		return nil, errors.New("gpt: partition table checksum mismatch")
	}
	var out []Partition
	for i := range int(n) {
		e := entries[i*int(esz):]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		var name []uint16
		for j := 0; j < 36; j++ {
			u := binary.LittleEndian.Uint16(e[56+2*j:])
			if u == 0 {
				break
			}
			name = append(name, u)
		}
		first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
		p := Partition{Name: string(utf16.Decode(name)), Offset: first * sectorSize, Size: (last - first + 1) * sectorSize}
		copy(p.TypeID[:], e[:16])
		copy(p.UUID[:], e[16:32])
		out = append(out, p)
	}
	return out, nil
}

// WriteConfig writes a device config into a built image's EFI partition,
// so one image serves a fleet: each device gets its own node id,
// addresses and secrets. The config must fit the image: the modules it
// names must be in the initramfs and its data.size must be the data
// partition's (neither can change without a rebuild).
func WriteConfig(ctx context.Context, img string, cfg device.Config, yml []byte) error {
	f, err := os.Open(img)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	parts, err := ReadPartitions(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("image %s: %w", img, err)
	}
	var esp, data *Partition
	for i := range parts {
		switch parts[i].Name {
		case ESPName:
			esp = &parts[i]
		case DataName:
			data = &parts[i]
		}
	}
	if esp == nil || data == nil {
		return fmt.Errorf("image %s: no %s and %s partitions; is this an eddy image?", img, ESPName, DataName)
	}
	if size, _ := cfg.DataSize(); size != data.Size {
		// A disk that has booted has a data partition grown to fill it
		// (appliance/boot): its size is no image's data.size.
		grown := ""
		if data.Size > size {
			grown = " (if this disk has booted, its data partition grew to fill it: write per-device configs into the image before flashing)"
		}
		return fmt.Errorf("data.size: %s, but the image's data partition is %d MiB; a per-device config cannot resize it (build an image with this size)%s", cfg.Data.Size, data.Size>>20, grown)
	}
	work, err := os.MkdirTemp("", "eddy-image-config-*")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(work)
	at := fmt.Sprintf("%s@@%d", img, esp.Offset)
	mods := filepath.Join(work, "modules")
	if err := tool(ctx, "mcopy", "-n", "-i", at, "::/"+ModulesPath, mods); err != nil {
		return fmt.Errorf("image %s: reading %s: %w", img, ModulesPath, err)
	}
	have, err := os.ReadFile(mods)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	in := strings.Fields(string(have))
	for i, m := range cfg.Kernel.Modules {
		if !slices.Contains(in, modName(m)) {
			return fmt.Errorf("kernel.modules[%d]: %s is not in this image's initramfs (it has %s); build an image with it", i, m, strings.Join(in, " "))
		}
	}
	file := filepath.Join(work, "device.yaml")
	if err := os.WriteFile(file, yml, 0o644); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := touchEpoch(file); err != nil {
		return err
	}
	if err := tool(ctx, "mcopy", "-o", "-m", "-i", at, file, "::/"+ConfigPath); err != nil {
		return fmt.Errorf("image %s: writing %s: %w", img, ConfigPath, err)
	}
	return nil
}

func touchEpoch(file string) error {
	if err := os.Chtimes(file, time.Unix(epoch, 0), time.Unix(epoch, 0)); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}
