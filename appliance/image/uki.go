package image

import (
	"context"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// buildUKI writes a unified kernel image to out: systemd's EFI stub with
// the os-release, command line, kernel and initramfs added as sections.
// bookworm has no ukify, so objcopy adds them; each section's address must
// lie past the stub's own sections (fixed addresses from older recipes
// overlap this stub), so they are laid out from the stub's last section.
// The objcopy used is one that writes PE files for the stub's machine
// (a cross binutils' for another architecture's stub).
func buildUKI(ctx context.Context, stub, out string, sections []ukiSection) error {
	f, err := pe.Open(stub)
	if err != nil {
		return fmt.Errorf("uki: stub %s: %w", stub, err)
	}
	var base, end uint64
	if oh, ok := f.OptionalHeader.(*pe.OptionalHeader64); ok {
		base = oh.ImageBase
	}
	for _, s := range f.Sections {
		end = max(end, uint64(s.VirtualAddress)+uint64(max(s.VirtualSize, s.Size)))
	}
	f.Close()
	if end == 0 {
		return fmt.Errorf("uki: stub %s has no sections", stub)
	}
	objcopy, err := objcopyFor(f.Machine)
	if err != nil {
		return err
	}
	args := []string{}
	vma := base + alignUp(end, 4096)
	dir := filepath.Dir(out)
	for _, s := range sections {
		file := s.File
		if file == "" {
			tmp, err := os.CreateTemp(dir, "section-*")
			if err != nil {
				return fmt.Errorf("uki: %w", err)
			}
			defer os.Remove(tmp.Name())
			if _, err := tmp.Write(s.Data); err != nil {
				tmp.Close()
				return fmt.Errorf("uki: %w", err)
			}
			if err := tmp.Close(); err != nil {
				return fmt.Errorf("uki: %w", err)
			}
			file = tmp.Name()
		}
		st, err := os.Stat(file)
		if err != nil {
			return fmt.Errorf("uki: %w", err)
		}
		args = append(args, "--add-section", s.Name+"="+file, "--change-section-vma", fmt.Sprintf("%s=%#x", s.Name, vma))
		vma += alignUp(uint64(st.Size()), 4096)
	}
	args = append(args, stub, out)
	if b, err := exec.CommandContext(ctx, objcopy, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("uki: objcopy: %w: %s", err, b)
	}
	return fixTimestamp(out)
}

// fixTimestamp sets the PE header's time stamp, which objcopy sets to the
// current time (bookworm's binutils ignores SOURCE_DATE_EPOCH there), to
// the image epoch and recomputes the PE checksum over the result.
func fixTimestamp(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	if len(b) < 0x40 {
		return fmt.Errorf("uki: %s is not a PE file", file)
	}
	pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if pe < 0 || pe+92 > len(b) || string(b[pe:pe+4]) != "PE\x00\x00" {
		return fmt.Errorf("uki: %s is not a PE file", file)
	}
	binary.LittleEndian.PutUint32(b[pe+8:], epoch)
	sumAt := pe + 24 + 64
	binary.LittleEndian.PutUint32(b[sumAt:], 0)
	binary.LittleEndian.PutUint32(b[sumAt:], peChecksum(b))
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	return nil
}

// peChecksum is the PE image checksum: the 16-bit one's-complement-style
// sum of the file (its checksum field zero) plus the file's length.
func peChecksum(b []byte) uint32 {
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return uint32(sum) + uint32(len(b))
}

// ukiSection is a section to add: Data, or the contents of File.
type ukiSection struct {
	Name string
	Data []byte
	File string
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }
