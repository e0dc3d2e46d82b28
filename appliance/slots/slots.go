package slots

import (
	"bytes"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Where slots live on the EFI partition; the image builder writes the same
// names.
const (
	// UKIDir holds one unified kernel image per slot.
	UKIDir = "EFI/Linux"
	// LoaderConf is systemd-boot's configuration; its default line names
	// the good slot.
	LoaderConf = "loader/loader.conf"
	// MaxUKISize bounds an update: two slots and room to spare fit the
	// image's 256 MiB EFI partition.
	MaxUKISize = 100 << 20
)

// Names of the two slots.
var Names = [2]string{"a", "b"}

// EntryID is systemd-boot's entry id for a slot's UKI.
func EntryID(slot string) string { return "eddy-" + slot + ".efi" }

// LoaderConfFor is loader.conf with slot as the default entry: no menu,
// no editor.
func LoaderConfFor(slot string) []byte {
	return []byte("timeout 0\ndefault " + EntryID(slot) + "\neditor no\n")
}

// States of the running slot.
const (
	// StateGood: the running slot is the boot loader's default.
	StateGood = "good"
	// StateTrial: the running slot was booted once after an update and is
	// not the default yet; a reboot before MarkGood boots the other.
	StateTrial = "trial"
)

// Status is what a node says about the system it runs on.
type Status struct {
	// Version of the running eddy.
	Version string `json:"version"`
	// Slot is the running slot, a or b; empty when eddy was not booted
	// from an eddy image.
	Slot string `json:"slot,omitempty"`
	// State is StateGood or StateTrial.
	State string `json:"state,omitempty"`
	// Slots lists both slots' versions.
	Slots []SlotInfo `json:"slots,omitempty"`
	// BootID changes with every boot (the kernel's boot_id).
	BootID string `json:"boot_id,omitempty"`
	// Updates says whether this node takes pushed updates, and if not,
	// why.
	Updates string `json:"updates,omitempty"`
}

// SlotInfo is one slot.
type SlotInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Default bool   `json:"default"`
}

// Installed is the result of an install.
type Installed struct {
	Slot    string `json:"slot"`
	Version string `json:"version"`
	Bytes   int64  `json:"bytes"`
}

// Slots is the EFI partition of a running appliance. Its methods are safe
// for concurrent use.
type Slots struct {
	esp     string // where the EFI partition is mounted
	vars    EFIVars
	running string
	// writable makes the EFI partition writable for the duration of a
	// change (it stays mounted read-only otherwise); nil means it is
	// writable already.
	writable func(rw bool) error

	// What the EFI partition holds, read at Open and kept up to date by
	// Install and MarkGood, the only writers: status is asked for every
	// second (peers poll it), and the partition is not read for it.
	mu       sync.Mutex
	def      string            // loader.conf's default slot
	versions map[string]string // each slot's IMAGE_VERSION
}

// Open returns the slots of the EFI partition mounted at esp. The running
// slot is the entry systemd-boot says it booted (LoaderEntrySelected);
// the default is loader.conf's.
func Open(esp string, vars EFIVars, writable func(rw bool) error) (*Slots, error) {
	sel, err := vars.Get(LoaderEntrySelected)
	if err != nil {
		return nil, fmt.Errorf("slots: which entry booted: %w", err)
	}
	running := ""
	for _, n := range Names {
		if strings.EqualFold(sel, EntryID(n)) {
			running = n
		}
	}
	if running == "" {
		return nil, fmt.Errorf("slots: the boot loader booted %q, not an eddy slot", sel)
	}
	s := &Slots{esp: esp, vars: vars, running: running, writable: writable, versions: map[string]string{}}
	if s.def, err = readDefault(filepath.Join(esp, LoaderConf)); err != nil {
		return nil, err
	}
	for _, n := range Names {
		if f, err := os.Open(s.ukiPath(n)); err == nil {
			if osrel, err := ReadOSRelease(f); err == nil {
				s.versions[n] = osrel["IMAGE_VERSION"]
			}
			f.Close()
		}
	}
	return s, nil
}

// readDefault returns the slot a loader.conf boots by default.
func readDefault(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("slots: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "default" {
			for _, n := range Names {
				if strings.EqualFold(f[1], EntryID(n)) || strings.EqualFold(f[1], "eddy-"+n+"*") {
					return n, nil
				}
			}
			return "", fmt.Errorf("slots: %s: default %q is not an eddy slot", LoaderConf, f[1])
		}
	}
	return "", fmt.Errorf("slots: %s has no default line", LoaderConf)
}

// Running is the running slot.
func (s *Slots) Running() string { return s.running }

// Other is the slot an update goes to.
func (s *Slots) Other() string {
	if s.running == Names[0] {
		return Names[1]
	}
	return Names[0]
}

// Default is the slot loader.conf boots.
func (s *Slots) Default() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.def
}

// Trial reports whether the running slot is on trial: booted, but not the
// default.
func (s *Slots) Trial() bool { return s.Default() != s.running }

// Status fills the slot fields of st.
func (s *Slots) Status(st *Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Slot = s.running
	st.State = StateGood
	if s.def != s.running {
		st.State = StateTrial
	}
	st.Slots = nil
	for _, n := range Names {
		st.Slots = append(st.Slots, SlotInfo{Name: n, Version: s.versions[n], Default: n == s.def})
	}
}

func (s *Slots) ukiPath(slot string) string {
	return filepath.Join(s.esp, UKIDir, EntryID(slot))
}

// Install writes a unified kernel image to the other slot and tells the
// boot loader to boot it once, next boot. The running slot stays the
// default until the new one marks itself good, so a new slot that fails
// to come up falls back to this one at the following boot.
func (s *Slots) Install(r io.Reader) (Installed, error) {
	if s.Trial() {
		return Installed{}, errTrial
	}
	// Read and check the upload before taking the lock: it may take
	// minutes over a slow link, and status is asked for meanwhile.
	uki, err := io.ReadAll(io.LimitReader(r, MaxUKISize+1))
	if err != nil {
		return Installed{}, fmt.Errorf("slots: reading the update: %w", err)
	}
	if len(uki) > MaxUKISize {
		return Installed{}, fmt.Errorf("slots: the update is over %d MiB; a unified kernel image is about 25 MB", MaxUKISize>>20)
	}
	osrel, err := CheckUKI(bytes.NewReader(uki))
	if err != nil {
		return Installed{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.def != s.running {
		return Installed{}, errTrial
	}
	slot := s.Other()
	if err := s.change(func() error { return writeFileSync(s.ukiPath(slot), uki) }); err != nil {
		return Installed{}, err
	}
	s.versions[slot] = osrel["IMAGE_VERSION"]
	if err := s.vars.Set(LoaderEntryOneShot, EntryID(slot)); err != nil {
		return Installed{}, fmt.Errorf("slots: asking the boot loader to try slot %s: %w", slot, err)
	}
	return Installed{Slot: slot, Version: osrel["IMAGE_VERSION"], Bytes: int64(len(uki))}, nil
}

var errTrial = errors.New("slots: this node runs a slot on trial; wait until it is marked good (or reboot to roll back) before pushing another update")

// MarkGood makes the running slot the boot loader's default.
func (s *Slots) MarkGood() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.def == s.running {
		return nil
	}
	if err := s.change(func() error { return writeFileSync(filepath.Join(s.esp, LoaderConf), LoaderConfFor(s.running)) }); err != nil {
		return err
	}
	s.def = s.running
	return nil
}

// change runs write with the EFI partition writable.
func (s *Slots) change(write func() error) error {
	if s.writable != nil {
		if err := s.writable(true); err != nil {
			return fmt.Errorf("slots: making the EFI partition writable: %w", err)
		}
		defer func() { _ = s.writable(false) }()
	}
	return write()
}

// writeFileSync replaces file through a temporary file in its directory,
// synced before the rename and the directory after it. FAT renames are
// not atomic, but a power loss leaves either file whole.
func writeFileSync(file string, data []byte) error {
	tmp := file + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("slots: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("slots: writing %s: %w", file, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("slots: syncing %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("slots: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("slots: %w", err)
	}
	if d, err := os.Open(filepath.Dir(file)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// CheckUKI checks that r holds a unified kernel image for this machine
// (a PE file with a kernel, an initramfs and an os-release naming eddy)
// and returns its os-release.
func CheckUKI(r io.ReaderAt) (map[string]string, error) {
	f, err := pe.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("slots: not a unified kernel image (a PE file): %w", err)
	}
	defer f.Close()
	if f.Machine != peMachine {
		return nil, fmt.Errorf("slots: the kernel image is for PE machine %#x; this box needs %#x (build the image for its architecture)", f.Machine, peMachine)
	}
	for _, name := range []string{".linux", ".initrd", ".osrel", ".cmdline"} {
		if f.Section(name) == nil {
			return nil, fmt.Errorf("slots: the kernel image has no %s section; push an image built by eddy image build", name)
		}
	}
	osrel, err := osRelease(f)
	if err != nil {
		return nil, err
	}
	if osrel["ID"] != "eddy" {
		return nil, fmt.Errorf("slots: the kernel image is %q, not eddy's", osrel["PRETTY_NAME"])
	}
	return osrel, nil
}

// ReadOSRelease returns the os-release of a unified kernel image.
func ReadOSRelease(r io.ReaderAt) (map[string]string, error) {
	f, err := pe.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("slots: %w", err)
	}
	defer f.Close()
	return osRelease(f)
}

func osRelease(f *pe.File) (map[string]string, error) {
	sec := f.Section(".osrel")
	if sec == nil {
		return nil, errors.New("slots: no .osrel section")
	}
	b, err := io.ReadAll(io.LimitReader(sec.Open(), 64<<10))
	if err != nil {
		return nil, fmt.Errorf("slots: .osrel: %w", err)
	}
	// The section is padded to its file alignment.
	b = bytes.TrimRight(b, "\x00")
	return ParseOSRelease(b), nil
}

// ParseOSRelease parses os-release(5) lines: KEY=value, values optionally
// quoted.
func ParseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || k == "" || strings.HasPrefix(k, "#") {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out
}
