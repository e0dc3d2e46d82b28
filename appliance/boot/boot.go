//go:build linux

package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/eddybroker/eddy/appliance"
	"github.com/eddybroker/eddy/appliance/device"
	"github.com/eddybroker/eddy/appliance/image"
)

// Mount points inside the initramfs.
const (
	espMount = "/boot"
)

// Main runs the boot mode and never returns: it ends by powering off or
// rebooting.
func Main() {
	console := io.Writer(os.Stdout)
	log := zerolog.New(zerolog.ConsoleWriter{Out: console, NoColor: true, TimeFormat: "15:04:05.000"}).With().Timestamp().Str("pid1", "boot").Logger()
	ctx, stop := context.WithCancel(context.Background())
	go powerSignals(log, stop)
	var reboot atomic.Bool
	err := run(ctx, log, func() { reboot.Store(true); stop() })
	if err != nil && ctx.Err() == nil {
		// A box that cannot come up reboots: after an update that is the
		// way back to the old slot, and otherwise it is a fresh try.
		log.Error().Err(err).Msg("boot failed; rebooting in 10 s")
		time.Sleep(10 * time.Second)
		reboot.Store(true)
	}
	shutdown(log, reboot.Load())
}

// run brings the system up and supervises the broker until ctx ends;
// reboot asks for a clean reboot.
func run(ctx context.Context, log zerolog.Logger, reboot func()) error {
	mountKernelFS(log)
	go reap(ctx)
	version := strings.TrimSpace(readString("/etc/eddy/version"))
	log.Info().Str("version", version).Str("uptime", uptime().String()).Msg("eddy boot")
	if err := loadModules(log); err != nil {
		log.Error().Err(err).Msg("kernel modules")
	}
	cfg, src, err := loadConfig(log)
	if err != nil {
		return err
	}
	log.Info().Str("from", src).Str("hostname", cfg.Network.Hostname).Uint64("node_id", cfg.Node.NodeID).Msg("device config")
	sys := openSystem(log, cfg, version, reboot)
	if sys.slots != nil {
		st := sys.Status()
		log.Info().Str("slot", st.Slot).Str("state", st.State).Str("version", version).Str("updates", st.Updates).Msg("boot slot")
	}
	if err := configureNetwork(ctx, log, cfg.Network); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if len(cfg.Network.NTP) > 0 {
		setClock(ctx, log, cfg.Network.NTP)
	}
	if err := mountData(ctx, log); err != nil {
		return fmt.Errorf("data partition: %w", err)
	}
	if err := unix.Sethostname([]byte(kernelHostname(log, cfg))); err != nil {
		log.Warn().Err(err).Msg("hostname")
	}
	supervise(ctx, log, cfg, sys)
	return nil
}

// mountKernelFS mounts what the kernel does not: /proc, /sys, /dev
// (devtmpfs is built into Debian's kernel, but not mounted by it), /tmp
// and /run.
func mountKernelFS(log zerolog.Logger) {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"}, {"tmpfs", "/run", "tmpfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, unix.MS_NOSUID, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			log.Warn().Err(err).Str("at", m.dst).Msg("mount")
		}
	}
}

// loadModules loads the initramfs' modules in the order the image builder
// wrote from modules.dep (dependencies first).
func loadModules(log zerolog.Logger) error {
	start := time.Now()
	b, err := os.ReadFile("/" + image.LoadOrder)
	if err != nil {
		return err
	}
	n := 0
	for _, name := range strings.Fields(string(b)) {
		f, err := os.Open(filepath.Join("/lib/modules", name))
		if err != nil {
			log.Warn().Err(err).Msg("module")
			continue
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			log.Warn().Err(err).Str("module", name).Msg("load module")
			continue
		}
		n++
	}
	log.Info().Int("modules", n).Dur("took", time.Since(start)).Msg("kernel modules loaded")
	return nil
}

// findPartition waits for the block device whose GPT partition name is
// name (devices appear while their drivers probe) and returns its /dev
// path.
func findPartition(ctx context.Context, name string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		ues, _ := filepath.Glob("/sys/class/block/*/uevent")
		for _, ue := range ues {
			kv := readKV(ue)
			if kv["PARTNAME"] == name && kv["DEVNAME"] != "" {
				return "/dev/" + kv["DEVNAME"], nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no partition named %s after %s", name, wait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// loadConfig reads the device config from the EFI partition, where
// `eddy image config` writes it, else the one built into the initramfs.
func loadConfig(log zerolog.Logger) (device.Config, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if dev, err := findPartition(ctx, image.ESPName, 5*time.Second); err != nil {
		log.Warn().Err(err).Msg("EFI partition")
	} else if err := unix.Mount(dev, espMount, "vfat", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "utf8,shortname=mixed"); err != nil {
		log.Warn().Err(err).Str("device", dev).Msg("mount EFI partition")
	} else {
		file := filepath.Join(espMount, image.ConfigPath)
		if b, err := os.ReadFile(file); err == nil {
			c, err := device.Parse(b)
			if err == nil {
				return c, file, nil
			}
			// A bad per-device config must not brick the box: the
			// built-in one still brings it up for a fix.
			log.Error().Err(err).Str("file", file).Msg("device config is invalid; using the image's built-in config")
		}
	}
	file := "/" + image.InitramfsConfig
	b, err := os.ReadFile(file)
	if err != nil {
		return device.Config{}, "", fmt.Errorf("device config: %w", err)
	}
	c, err := device.Parse(b)
	if err != nil {
		return device.Config{}, "", fmt.Errorf("device config %s: %w", file, err)
	}
	return c, file, nil
}

// mountData mounts the data partition's ext4 file system (made by the
// image build) at /data.
func mountData(ctx context.Context, log zerolog.Logger) error {
	dev, err := findPartition(ctx, image.DataName, 10*time.Second)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(device.DataMount, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, device.DataMount, "ext4", unix.MS_NOATIME|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, device.DataMount, err)
	}
	growData(log, dev, device.DataMount) // first boot on a bigger disk: fill it (grow.go)
	var st unix.Statfs_t
	if err := unix.Statfs(device.DataMount, &st); err == nil {
		log.Info().Str("device", dev).Uint64("free_mib", st.Bavail*uint64(st.Bsize)>>20).Msg("data partition mounted")
	}
	return nil
}

// hostnameFile records the kernel hostname the node's data was made
// under.
const hostnameFile = device.DataMount + "/.eddy-hostname"

// kernelHostname returns the hostname to give the kernel: the configured
// one, unless the node already has Raft data made under another. Dragonboat
// keys its data directory on the hostname and refuses to start when it
// changes ("hostname changed"), which would keep the broker down for good;
// so the first hostname stays the kernel's, and a changed
// network.hostname is reported instead.
func kernelHostname(log zerolog.Logger, cfg device.Config) string {
	want := cfg.Network.Hostname
	had := strings.TrimSpace(readString(hostnameFile))
	if had != "" && had != want {
		if _, err := os.Stat(filepath.Join(cfg.Node.DataDir, "raft")); err == nil {
			log.Warn().Str("configured", want).Str("kept", had).
				Msg("network.hostname changed, but the broker's Raft data is keyed on the old hostname (Dragonboat refuses a changed one); keeping the old kernel hostname")
			return had
		}
	}
	if had != want {
		if err := os.WriteFile(hostnameFile, []byte(want+"\n"), 0o644); err != nil {
			log.Warn().Err(err).Msg("recording the hostname")
		}
	}
	return want
}

// supervise runs the broker and restarts it when it fails, waiting
// 1 s, 2 s, ... up to 30 s between attempts; a broker that served for a
// minute starts the backoff over.
//
// On a new slot's trial boot it also decides the update: serving for
// update.healthy_after marks the slot good (the boot loader's default
// from then on); not getting there within update.trial_timeout of the
// kernel's start reboots, and the boot loader boots the old slot.
func supervise(ctx context.Context, log zerolog.Logger, cfg device.Config, sys *applianceSystem) {
	logCfg := cfg.Node.Log
	if logCfg.Format == "" {
		// The serial console looks like a terminal, but colour codes
		// only garble a captured log.
		logCfg.Format = "json"
	}
	nodeLog := appliance.NewLogger(logCfg, os.Stdout)
	var trialOver <-chan time.Time
	if sys.trial() {
		left := max(cfg.TrialDeadline()-uptime(), 0)
		log.Warn().Str("slot", sys.slot()).Dur("healthy_after", cfg.HealthyDelay()).Dur("trial_left", left).
			Msg("this slot is on trial: serving for healthy_after makes it the default; otherwise a reboot boots the old slot")
		t := time.NewTimer(left)
		defer t.Stop()
		trialOver = t.C
	}
	failTrial := func() {
		log.Error().Str("slot", sys.slot()).Dur("trial_timeout", cfg.TrialDeadline()).
			Msg("the updated slot did not serve within update.trial_timeout; rebooting into the old slot")
		sys.reboot()
	}
	backoff := time.Second
	for ctx.Err() == nil {
		started := time.Now()
		node, err := appliance.StartWith(ctx, cfg.Node, nodeLog, appliance.Options{System: sys})
		if err == nil {
			log.Info().Str("uptime", uptime().String()).Str("slot", sys.slot()).Str("version", sys.version).Msg("EDDY READY: broker serving")
			var healthy <-chan time.Time
			if trialOver != nil {
				healthy = time.After(cfg.HealthyDelay())
			}
		serving:
			for {
				select {
				case <-ctx.Done():
					break serving
				case err = <-node.Errors():
					break serving
				case <-healthy:
					healthy = nil
					if err := sys.markGood(); err != nil {
						log.Error().Err(err).Msg("marking the updated slot good")
						continue
					}
					trialOver = nil
					log.Info().Str("slot", sys.slot()).Str("version", sys.version).Msg("EDDY SLOT GOOD: the updated slot served for healthy_after and is now the default")
				case <-trialOver:
					failTrial()
				}
			}
			node.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		log.Error().Err(err).Dur("restart_in", backoff).Msg("broker stopped")
		select {
		case <-ctx.Done():
			return
		case <-trialOver:
			failTrial()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// reap waits for orphans the kernel re-parents to PID 1, so they do not
// stay zombies.
func reap(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

// powerSignals calls stop on a power-off request: SIGTERM, SIGPWR, SIGINT
// (Ctrl-Alt-Del once the kernel is told to send it) or the ACPI power
// button.
func powerSignals(log zerolog.Logger, stop func()) {
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGPWR, syscall.SIGINT)
	button := make(chan struct{}, 1)
	go watchPowerButton(log, button)
	select {
	case s := <-ch:
		log.Info().Str("signal", s.String()).Msg("power-off requested")
	case <-button:
		log.Info().Msg("power button pressed")
	}
	stop()
}

// watchPowerButton reports a press of the ACPI power button (qemu's
// system_powerdown): without acpid the kernel only turns it into an input
// event.
func watchPowerButton(log zerolog.Logger, pressed chan<- struct{}) {
	for range 480 { // its driver loads after this starts; give up after 2 min
		names, _ := filepath.Glob("/sys/class/input/event*/device/name")
		for _, n := range names {
			if strings.TrimSpace(readString(n)) != "Power Button" {
				continue
			}
			ev := filepath.Base(filepath.Dir(filepath.Dir(n)))
			f, err := os.Open("/dev/input/" + ev)
			if err != nil {
				continue
			}
			log.Debug().Str("device", ev).Msg("watching the power button")
			buf := make([]byte, 24) // struct input_event on 64-bit
			for {
				if _, err := io.ReadFull(f, buf); err != nil {
					f.Close()
					return
				}
				typ, code, val := uint16(buf[16])|uint16(buf[17])<<8, uint16(buf[18])|uint16(buf[19])<<8, buf[20]
				if typ == 1 && code == 116 && val == 1 { // EV_KEY, KEY_POWER, pressed
					pressed <- struct{}{}
					f.Close()
					return
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	log.Warn().Msg("no ACPI power button; power off with SIGTERM or SIGPWR")
}

// shutdown syncs, unmounts the data partition and powers off, or reboots.
func shutdown(log zerolog.Logger, reboot bool) {
	unix.Sync()
	for _, m := range []string{device.DataMount, espMount} {
		if err := unix.Unmount(m, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			log.Warn().Err(err).Str("at", m).Msg("unmount")
		}
	}
	unix.Sync()
	if reboot {
		log.Info().Msg("rebooting")
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	log.Info().Msg("powering off")
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {} // PID 1 must not exit
}

func readKV(file string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(file)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			out[k] = v
		}
	}
	return out
}

func readString(file string) string {
	b, _ := os.ReadFile(file)
	return string(b)
}

// uptime is the time since the kernel started.
func uptime() time.Duration {
	f := strings.Fields(readString("/proc/uptime"))
	if len(f) == 0 {
		return 0
	}
	s, _ := strconv.ParseFloat(f[0], 64)
	return time.Duration(s * float64(time.Second)).Round(10 * time.Millisecond)
}
