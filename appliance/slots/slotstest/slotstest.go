// Package slotstest builds what slots reads, for tests: a minimal PE
// file with a unified kernel image's sections, and a box's EFI partition
// and EFI variables in temporary directories.
package slotstest

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/eddybroker/eddy/appliance/slots"
)

// Machine is the PE machine of this build's kernel images.
var Machine = map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[runtime.GOARCH]

// PE returns a PE file for machine with the named sections, each holding
// its data; debug/pe reads it as slots does a UKI.
func PE(machine uint16, sections map[string]string) []byte {
	var present []string
	for _, n := range []string{".osrel", ".cmdline", ".linux", ".initrd"} {
		if _, ok := sections[n]; ok {
			present = append(present, n)
		}
	}
	var b bytes.Buffer
	dos := make([]byte, 64)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], 64)
	b.Write(dos)
	b.WriteString("PE\x00\x00")
	_ = binary.Write(&b, binary.LittleEndian, pe.FileHeader{Machine: machine, NumberOfSections: uint16(len(present))})
	dataAt := uint32(b.Len() + 40*len(present))
	var data bytes.Buffer
	for _, n := range present {
		var sh pe.SectionHeader32
		copy(sh.Name[:], n)
		sh.VirtualSize = uint32(len(sections[n]))
		sh.SizeOfRawData = uint32(len(sections[n]))
		sh.PointerToRawData = dataAt + uint32(data.Len())
		_ = binary.Write(&b, binary.LittleEndian, sh)
		data.WriteString(sections[n])
	}
	b.Write(data.Bytes())
	return b.Bytes()
}

// UKI is an eddy unified kernel image of the given version, for this
// machine.
func UKI(version string) []byte {
	return PE(Machine, map[string]string{
		".osrel":   "NAME=eddy\nID=eddy\nPRETTY_NAME=\"eddy " + version + "\"\nIMAGE_VERSION=\"" + version + "\"\n\x00\x00",
		".cmdline": "console=ttyS0 panic=10\x00",
		".linux":   "kernel",
		".initrd":  "initrd",
	})
}

// Box is an EFI partition and efivarfs as a fresh image leaves them,
// booted from slot a, in temporary directories.
type Box struct {
	ESP  string
	Vars slots.EFIVars
}

// NewBox returns a box with version in both slots.
func NewBox(t testing.TB, version string) *Box {
	t.Helper()
	b := &Box{ESP: t.TempDir(), Vars: slots.EFIVars{Dir: t.TempDir()}}
	for _, d := range []string{slots.UKIDir, "loader"} {
		if err := os.MkdirAll(filepath.Join(b.ESP, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range slots.Names {
		if err := os.WriteFile(filepath.Join(b.ESP, slots.UKIDir, slots.EntryID(n)), UKI(version), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(b.ESP, slots.LoaderConf), slots.LoaderConfFor("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Boot(t, "a")
	return b
}

// Boot does what systemd-boot does when it boots slot: record the entry
// and consume a one-shot entry.
func (b *Box) Boot(t testing.TB, slot string) {
	t.Helper()
	if err := b.Vars.Set(slots.LoaderEntrySelected, slots.EntryID(slot)); err != nil {
		t.Fatal(err)
	}
	os.Remove(b.Vars.File(slots.LoaderEntryOneShot))
}
