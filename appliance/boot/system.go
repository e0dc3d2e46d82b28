//go:build linux

package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/eddybroker/eddy/appliance/adminapi"
	"github.com/eddybroker/eddy/appliance/device"
	"github.com/eddybroker/eddy/appliance/slots"
)

// applianceSystem is the box as its node reports it and updates it: the
// image version, this boot's id, and the A/B slots.
type applianceSystem struct {
	version string
	bootID  string
	slots   *slots.Slots // nil when updates are unavailable
	// unavailable says why updates are refused; nil when they are taken.
	unavailable error
	// reboot asks PID 1 for a clean reboot.
	reboot    func()
	rebooting atomic.Bool
	log       zerolog.Logger
}

// openSystem finds the slots: efivarfs for the boot loader's variables,
// the EFI partition (mounted read-only at espMount by loadConfig) for the
// kernel images. A box without them boots and serves, but takes no
// updates.
func openSystem(log zerolog.Logger, cfg device.Config, version string, reboot func()) *applianceSystem {
	s := &applianceSystem{
		version: version,
		bootID:  strings.TrimSpace(readString("/proc/sys/kernel/random/boot_id")),
		reboot:  reboot,
		log:     log,
	}
	if err := unix.Mount("efivarfs", slots.DefaultEFIVars, "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		log.Warn().Err(err).Msg("efivarfs (the boot loader's variables); updates are unavailable")
		s.unavailable = fmt.Errorf("no EFI variables: %w", err)
		return s
	}
	sl, err := slots.Open(espMount, slots.EFIVars{Dir: slots.DefaultEFIVars}, espWritable)
	if err != nil {
		log.Warn().Err(err).Msg("boot slots; updates are unavailable")
		s.unavailable = err
		return s
	}
	s.slots = sl
	if cfg.Update.Disabled {
		s.unavailable = errors.New("update.disabled is set in the device config")
	}
	return s
}

// espWritable remounts the EFI partition read-write for a change, and
// read-only after it.
func espWritable(rw bool) error {
	flags := uintptr(unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if !rw {
		unix.Sync()
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", espMount, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", espMount, err)
	}
	return nil
}

// slot is the running slot, or "" when unknown.
func (s *applianceSystem) slot() string {
	if s.slots == nil {
		return ""
	}
	return s.slots.Running()
}

// trial reports whether this boot is a new slot's trial.
func (s *applianceSystem) trial() bool { return s.slots != nil && s.slots.Trial() }

func (s *applianceSystem) Status() slots.Status {
	st := slots.Status{Version: s.version, BootID: s.bootID, Updates: "enabled"}
	if s.slots != nil {
		s.slots.Status(&st)
	}
	switch {
	case s.unavailable != nil:
		st.Updates = "unavailable: " + s.unavailable.Error()
	case s.rebooting.Load():
		st.Updates = "rebooting into the new slot"
	case st.State == slots.StateTrial:
		st.Updates = "on trial: waits until this slot is marked good"
	}
	return st
}

func (s *applianceSystem) Update(_ context.Context, r io.Reader) (slots.Installed, error) {
	if s.unavailable != nil {
		return slots.Installed{}, fmt.Errorf("%w: %v", adminapi.ErrUpdatesUnavailable, s.unavailable)
	}
	if s.rebooting.Load() {
		return slots.Installed{}, errors.New("an update is installed and the box is rebooting into it; push again once it is back")
	}
	start := time.Now()
	got, err := s.slots.Install(r)
	if err != nil {
		return got, err
	}
	if !s.rebooting.CompareAndSwap(false, true) {
		return slots.Installed{}, errors.New("another update won the race; the box is rebooting into it")
	}
	s.log.Info().Str("slot", got.Slot).Str("version", got.Version).Int64("bytes", got.Bytes).Dur("took", time.Since(start)).
		Msg("update written; rebooting into it once (it becomes the default only after serving)")
	// Late enough for the answer to reach the client.
	time.AfterFunc(time.Second, s.reboot)
	return got, nil
}

// markGood makes the running slot the default after its trial.
func (s *applianceSystem) markGood() error {
	if s.slots == nil {
		return nil
	}
	return s.slots.MarkGood()
}
