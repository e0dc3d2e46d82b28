package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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
	t, err := readGPT(r, 1)
	if err != nil {
		return nil, fmt.Errorf("%w; is this an eddy image?", err)
	}
	var out []Partition
	for i := range t.n {
		e := t.entry(i)
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
		p := Partition{Name: entryName(e), Offset: first * sectorSize, Size: (last - first + 1) * sectorSize}
		copy(p.TypeID[:], e[:16])
		copy(p.UUID[:], e[16:32])
		out = append(out, p)
	}
	return out, nil
}

// imagePartitions reads an image file's partitions and returns those
// named, in the order asked; it fails naming the first one missing.
func imagePartitions(img string, names ...string) ([]Partition, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	parts, err := ReadPartitions(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img, err)
	}
	out := make([]Partition, len(names))
	for i, name := range names {
		j := slices.IndexFunc(parts, func(p Partition) bool { return p.Name == name })
		if j < 0 {
			return nil, fmt.Errorf("image %s: no partition named %s; is this an eddy image?", img, name)
		}
		out[i] = parts[j]
	}
	return out, nil
}

// WriteConfig writes a device config into a built image's EFI partition,
// so one image serves a fleet: each device gets its own node id,
// addresses and secrets. The config must fit the image: the modules it
// names must be in the initramfs and its data.size must be the data
// partition's (neither can change without a rebuild).
func WriteConfig(ctx context.Context, img string, cfg device.Config, yml []byte) error {
	parts, err := imagePartitions(img, ESPName, DataName)
	if err != nil {
		return err
	}
	esp, data := parts[0], parts[1]
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
