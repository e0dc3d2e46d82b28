package slots_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/eddybroker/eddy/appliance/slots"
	"github.com/eddybroker/eddy/appliance/slots/slotstest"
)

func fakeUKI(machine uint16, sections map[string]string) []byte {
	return slotstest.PE(machine, sections)
}

func eddyUKI(version string) []byte { return slotstest.UKI(version) }

var peMachine = slotstest.Machine

// box is a fresh image's EFI partition and variables, booted from slot a;
// it records how the EFI partition was made writable.
type box struct {
	*slotstest.Box
	writable []bool
}

func newBox(t *testing.T) *box {
	t.Helper()
	return &box{Box: slotstest.NewBox(t, "v1")}
}

func (b *box) boot(t *testing.T, slot string) { b.Boot(t, slot) }

func (b *box) open(t *testing.T) *Slots {
	t.Helper()
	s, err := Open(b.ESP, b.Vars, func(rw bool) error { b.writable = append(b.writable, rw); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUpdateTrialAndMarkGood(t *testing.T) {
	b := newBox(t)
	s := b.open(t)
	var st Status
	s.Status(&st)
	if st.Slot != "a" || st.State != StateGood || len(st.Slots) != 2 || st.Slots[0].Version != "v1" || !st.Slots[0].Default || st.Slots[1].Default {
		t.Fatalf("fresh box: %+v", st)
	}

	got, err := s.Install(bytes.NewReader(eddyUKI("v2")))
	if err != nil {
		t.Fatal(err)
	}
	if got.Slot != "b" || got.Version != "v2" {
		t.Fatalf("installed %+v", got)
	}
	if v, err := b.Vars.Get(LoaderEntryOneShot); err != nil || v != "eddy-b.efi" {
		t.Fatalf("one-shot entry %q, %v", v, err)
	}
	if d := s.Default(); d != "a" {
		t.Fatalf("default moved to %s before the new slot proved itself", d)
	}
	st = Status{}
	s.Status(&st)
	if st.State != StateGood || st.Slots[1].Version != "v2" {
		t.Fatalf("status after the install: %+v", st)
	}
	if len(b.writable) != 2 || !b.writable[0] || b.writable[1] {
		t.Fatalf("EFI partition writable %v, want made writable then read-only again", b.writable)
	}
	if _, err := os.Stat(filepath.Join(b.ESP, UKIDir, "eddy-b.efi.new")); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}

	// The boot loader boots b once: it is on trial.
	b.boot(t, "b")
	s = b.open(t)
	st = Status{}
	s.Status(&st)
	if st.Slot != "b" || st.State != StateTrial || st.Slots[1].Version != "v2" || !st.Slots[0].Default {
		t.Fatalf("trial boot: %+v", st)
	}
	if _, err := s.Install(bytes.NewReader(eddyUKI("v3"))); err == nil || !strings.Contains(err.Error(), "trial") {
		t.Fatalf("an update on a trial slot: %v", err)
	}
	if err := s.MarkGood(); err != nil {
		t.Fatal(err)
	}
	if d := s.Default(); d != "b" || s.Trial() {
		t.Fatalf("after MarkGood the default is %s (trial %v)", d, s.Trial())
	}
	conf, _ := os.ReadFile(filepath.Join(b.ESP, LoaderConf))
	if string(conf) != string(LoaderConfFor("b")) {
		t.Fatalf("loader.conf:\n%s", conf)
	}
	// The next update goes to a.
	if got, err := s.Install(bytes.NewReader(eddyUKI("v3"))); err != nil || got.Slot != "a" {
		t.Fatalf("second update: %+v %v", got, err)
	}
}

func TestFailedTrialFallsBack(t *testing.T) {
	b := newBox(t)
	s := b.open(t)
	if _, err := s.Install(bytes.NewReader(eddyUKI("broken"))); err != nil {
		t.Fatal(err)
	}
	b.boot(t, "b")
	// b never marks itself good; the box reboots and the boot loader,
	// its one-shot entry spent, boots the default.
	d := b.open(t).Default()
	if d != "a" {
		t.Fatalf("default after a failed trial: %s", d)
	}
	b.boot(t, d)
	s = b.open(t)
	var st Status
	s.Status(&st)
	if st.Slot != "a" || st.State != StateGood || st.Slots[1].Version != "broken" {
		t.Fatalf("after rollback: %+v", st)
	}
	// And it takes a good update again.
	if got, err := s.Install(bytes.NewReader(eddyUKI("v2"))); err != nil || got.Slot != "b" {
		t.Fatalf("update after rollback: %+v %v", got, err)
	}
}

func TestInstallRefusesWhatIsNotAnEddyKernel(t *testing.T) {
	other := peMachine ^ 0x1
	cases := map[string][]byte{
		"not a unified kernel image": []byte("#!/bin/sh\necho hello\n"),
		"machine":                    fakeUKI(other, map[string]string{".osrel": "ID=eddy\n", ".cmdline": "x", ".linux": "k", ".initrd": "i"}),
		".initrd":                    fakeUKI(peMachine, map[string]string{".osrel": "ID=eddy\n", ".cmdline": "x", ".linux": "k"}),
		"not eddy's":                 fakeUKI(peMachine, map[string]string{".osrel": "ID=debian\nPRETTY_NAME=\"Debian\"\n", ".cmdline": "x", ".linux": "k", ".initrd": "i"}),
	}
	for want, uki := range cases {
		b := newBox(t)
		s := b.open(t)
		_, err := s.Install(bytes.NewReader(uki))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
		if _, err := b.Vars.Get(LoaderEntryOneShot); err == nil {
			t.Errorf("%s: a refused update armed the one-shot entry", want)
		}
		if got, _ := os.ReadFile(filepath.Join(b.ESP, UKIDir, "eddy-b.efi")); !bytes.Equal(got, eddyUKI("v1")) {
			t.Errorf("%s: a refused update changed slot b", want)
		}
	}
	b := newBox(t)
	big := bytes.NewReader(make([]byte, MaxUKISize+1))
	if _, err := b.open(t).Install(big); err == nil || !strings.Contains(err.Error(), "MiB") {
		t.Errorf("oversized update: %v", err)
	}
}

func TestOpenNeedsAnEddyEntry(t *testing.T) {
	b := newBox(t)
	if err := b.Vars.Set(LoaderEntrySelected, "debian.conf"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(b.ESP, b.Vars, nil); err == nil || !strings.Contains(err.Error(), "not an eddy slot") {
		t.Fatalf("booted from another entry: %v", err)
	}
	if _, err := Open(b.ESP, EFIVars{Dir: t.TempDir()}, nil); err == nil {
		t.Fatal("no LoaderEntrySelected: no error")
	}
	b.boot(t, "a")
	if err := os.WriteFile(filepath.Join(b.ESP, LoaderConf), []byte("timeout 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(b.ESP, b.Vars, nil); err == nil || !strings.Contains(err.Error(), "no default line") {
		t.Fatalf("loader.conf without a default: %v", err)
	}
}

func TestEFIVarsRoundTrip(t *testing.T) {
	v := EFIVars{Dir: t.TempDir()}
	for _, s := range []string{"eddy-b.efi", "", "slot-ä-€"} {
		if err := v.Set(LoaderEntryOneShot, s); err != nil {
			t.Fatal(err)
		}
		got, err := v.Get(LoaderEntryOneShot)
		if err != nil || got != s {
			t.Fatalf("round trip %q: %q %v", s, got, err)
		}
	}
	raw, _ := os.ReadFile(v.File(LoaderEntryOneShot))
	if binary.LittleEndian.Uint32(raw) != 7 /* non-volatile, boot and runtime access */ {
		t.Fatalf("attributes %x", raw[:4])
	}
	if err := os.WriteFile(v.File(LoaderEntrySelected), []byte{7, 0, 0, 0, 'a'}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get(LoaderEntrySelected); err == nil {
		t.Fatal("odd-length variable: no error")
	}
}

func TestParseOSRelease(t *testing.T) {
	got := ParseOSRelease([]byte("NAME=eddy\n# comment\nPRETTY_NAME=\"eddy 1.2 (x)\"\nVERSION_ID='1.2'\nbroken\n"))
	if got["NAME"] != "eddy" || got["PRETTY_NAME"] != "eddy 1.2 (x)" || got["VERSION_ID"] != "1.2" || len(got) != 3 {
		t.Fatalf("%v", got)
	}
}
