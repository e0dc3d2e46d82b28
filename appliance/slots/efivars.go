package slots

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf16"
)

// systemd-boot's variables (the Boot Loader Interface), under its vendor
// GUID.
const (
	loaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
	// LoaderEntrySelected is the entry the boot loader booted.
	LoaderEntrySelected = "LoaderEntrySelected"
	// LoaderEntryOneShot is the entry to boot next time only; the boot
	// loader removes it as it boots it.
	LoaderEntryOneShot = "LoaderEntryOneShot"
)

// DefaultEFIVars is where the kernel's efivarfs is mounted.
const DefaultEFIVars = "/sys/firmware/efi/efivars"

// Attributes of a variable set by the OS for the boot loader.
const (
	attrNonVolatile    = 0x1
	attrBootAccess     = 0x2
	attrRuntimeAccess  = 0x4
	loaderVarAttrs     = attrNonVolatile | attrBootAccess | attrRuntimeAccess
	maxLoaderVarLength = 4096
)

// EFIVars reads and writes systemd-boot's string variables through
// efivarfs: a file per variable, holding 4 bytes of attributes and the
// value, here a NUL-terminated UTF-16LE string.
type EFIVars struct {
	// Dir is the efivarfs mount (DefaultEFIVars).
	Dir string
}

// File is the efivarfs file of one of systemd-boot's variables.
func (v EFIVars) File(name string) string {
	return filepath.Join(v.Dir, name+"-"+loaderGUID)
}

// Get returns a variable's value.
func (v EFIVars) Get(name string) (string, error) {
	b, err := os.ReadFile(v.File(name))
	if err != nil {
		return "", fmt.Errorf("efi variable %s: %w", name, err)
	}
	if len(b) < 4 || (len(b)-4)%2 != 0 || len(b) > maxLoaderVarLength {
		return "", fmt.Errorf("efi variable %s: %d bytes is not a UTF-16 string", name, len(b))
	}
	u := make([]uint16, 0, (len(b)-4)/2)
	for i := 4; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// Set writes a variable. efivarfs marks variable files immutable; an
// existing one is made writable first.
func (v EFIVars) Set(name, value string) error {
	u := utf16.Encode([]rune(value))
	b := make([]byte, 4, 4+2*len(u)+2)
	binary.LittleEndian.PutUint32(b, loaderVarAttrs)
	for _, c := range append(u, 0) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	file := v.File(name)
	if err := clearImmutable(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("efi variable %s: %w", name, err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("efi variable %s: %w", name, err)
	}
	// efivarfs takes a variable in one write.
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("efi variable %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("efi variable %s: %w", name, err)
	}
	return nil
}
