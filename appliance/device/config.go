package device

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eddybroker/eddy/appliance/nodecfg"
)

// Defaults of a device.
const (
	// DataMount is where boot mounts the data partition.
	DataMount = "/data"
	// DefaultDataDir is the node's data directory on the data partition.
	DefaultDataDir = DataMount + "/eddy"
	// DefaultDataSize is the data partition's size when data.size is unset.
	DefaultDataSize = 1 << 30
	// MinDataSize keeps ext4's journal and the broker's minimum free disk
	// space (limits.min_free_disk_bytes, 512 MiB by default) in reach of a
	// lab image.
	MinDataSize = 64 << 20
	// DefaultInterface is the NIC configured when network.interface is
	// unset: the first Ethernet device of a Debian kernel without udev.
	DefaultInterface = "eth0"
	// DefaultTrialTimeout is how long a newly pushed slot may take to
	// serve before the box reboots into the old one.
	DefaultTrialTimeout = 10 * time.Minute
	// DefaultHealthyAfter is how long the broker must serve before a newly
	// booted slot is marked good.
	DefaultHealthyAfter = 30 * time.Second
)

// BaseModules are loaded on every device whatever kernel.modules says:
// the data partition's file system (ext4 checksums its metadata with
// crc32c, which it asks the crypto API for at mount time rather than
// through modules.dep) and the EFI partition's, which holds the device
// config.
var BaseModules = []string{"crc32c_generic", "ext4", "vfat", "nls_cp437", "nls_ascii", "nls_utf8"}

// Config is a device configuration.
type Config struct {
	// Node is the broker's configuration, exactly as `eddy serve
	// --config` reads it. Its data_dir defaults to /data/eddy and must lie
	// on the data partition.
	Node nodecfg.Config `yaml:"node"`
	// Network configures the box's network interface.
	Network NetworkConfig `yaml:"network"`
	// Data sizes the data partition.
	Data DataConfig `yaml:"data"`
	// Kernel lists the modules and command line of the booted kernel.
	Kernel KernelConfig `yaml:"kernel"`
	// Update sets how A/B updates are tried and kept.
	Update UpdateConfig `yaml:"update"`
}

// NetworkConfig is the box's network. With address unset the interface is
// configured by DHCP.
type NetworkConfig struct {
	// Hostname of the box; empty means "eddy-<node id>".
	Hostname string `yaml:"hostname"`
	// Interface to configure; empty means eth0.
	Interface string `yaml:"interface"`
	// DHCP asks a DHCP server for the address, gateway and DNS servers.
	// It is the default when address is unset; true with address set is
	// an error.
	DHCP bool `yaml:"dhcp"`
	// Address is a static address with its prefix length (10.0.2.15/24).
	Address string `yaml:"address"`
	// Gateway is the default route's next hop for a static address.
	Gateway string `yaml:"gateway"`
	// DNS servers (IP addresses) for a static address.
	DNS []string `yaml:"dns"`
	// NTP servers (host names or IP addresses, port 123) to set the clock
	// from: at boot, before the broker starts, the first to answer within
	// 10 s steps the clock if it is off by more than a second; without an
	// answer the boot goes on and they are retried in the background
	// (5 s, 10 s, ... up to every 5 min), then asked every hour. Empty
	// leaves the clock as the hardware has it.
	NTP []string `yaml:"ntp"`
}

// DataConfig is the data partition.
type DataConfig struct {
	// Size of the data partition in the image: bytes, or a number with
	// KiB, MiB, GiB or TiB ("4GiB"); a whole number of MiB, 64 MiB or
	// more. Empty means 1 GiB. It is the minimum: on its first boot on a
	// bigger disk the partition (and its ext4 file system) grows to fill
	// the disk.
	Size string `yaml:"size"`
}

// KernelConfig is what the booted kernel needs.
type KernelConfig struct {
	// Modules to load at boot, by name as in modules.dep (virtio_net,
	// e1000e, nvme); their dependencies are added and loaded first.
	// BaseModules are always added.
	Modules []string `yaml:"modules"`
	// Cmdline is the kernel command line; empty means
	// "console=ttyS0,115200 console=tty0 panic=10".
	Cmdline string `yaml:"cmdline"`
}

// UpdateConfig sets how updates are tried.
type UpdateConfig struct {
	// Disabled refuses updates pushed through the admin API.
	Disabled bool `yaml:"disabled"`
	// TrialTimeout is how long a newly pushed slot, booted once on
	// trial, may take to serve and stay healthy before the box reboots
	// into the old slot (Go duration, 1m..1h; empty means 10m). A slot
	// whose kernel panics reboots sooner (panic= on the command line).
	TrialTimeout string `yaml:"trial_timeout"`
	// HealthyAfter is how long the broker must serve before the running
	// slot is marked good (Go duration; empty means 30s).
	HealthyAfter string `yaml:"healthy_after"`
}

// DefaultCmdline is the kernel command line when kernel.cmdline is unset.
const DefaultCmdline = "console=ttyS0,115200 console=tty0 panic=10"

// Load reads, defaults and validates a device config file. It returns
// the file's bytes too: an image carries the file as written, comments
// kept.
func Load(file string) (Config, []byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Config{}, nil, fmt.Errorf("device config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, nil, fmt.Errorf("device config %s: %w", file, err)
	}
	return c, b, nil
}

// Parse decodes YAML (unknown keys are errors), applies defaults and
// validates.
func Parse(b []byte) (Config, error) {
	var c Config
	if err := nodecfg.DecodeYAML(b, &c); err != nil {
		return Config{}, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ApplyDefaults fills every unset field, the node's included.
func (c *Config) ApplyDefaults() {
	if c.Node.DataDir == "" {
		c.Node.DataDir = DefaultDataDir
	}
	c.Node.ApplyDefaults()
	if c.Network.Interface == "" {
		c.Network.Interface = DefaultInterface
	}
	if c.Network.Hostname == "" {
		c.Network.Hostname = "eddy-" + strconv.FormatUint(c.Node.NodeID, 10)
	}
	if c.Network.Address == "" {
		c.Network.DHCP = true
	}
	if c.Data.Size == "" {
		c.Data.Size = "1GiB"
	}
	if c.Kernel.Cmdline == "" {
		c.Kernel.Cmdline = DefaultCmdline
	}
	if c.Update.TrialTimeout == "" {
		c.Update.TrialTimeout = DefaultTrialTimeout.String()
	}
	if c.Update.HealthyAfter == "" {
		c.Update.HealthyAfter = DefaultHealthyAfter.String()
	}
}

var (
	hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)
	moduleRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	ifaceRE    = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)
)

// Validate checks the config and names the first bad field.
func (c *Config) Validate() error {
	if err := c.Node.Validate(); err != nil {
		return fmt.Errorf("node.%w", err)
	}
	if d := path.Clean(c.Node.DataDir); d != DataMount && !strings.HasPrefix(d, DataMount+"/") {
		return fmt.Errorf("node.data_dir: %q is not on the data partition; use a directory under %s (default %s)", c.Node.DataDir, DataMount, DefaultDataDir)
	}
	n := c.Network
	if len(n.Hostname) > 253 || !hostnameRE.MatchString(n.Hostname) {
		return fmt.Errorf("network.hostname: %q is not a host name (letters, digits and inner hyphens, dot-separated labels of 1 to 63)", n.Hostname)
	}
	if !ifaceRE.MatchString(n.Interface) {
		return fmt.Errorf("network.interface: %q is not an interface name (1 to 15 letters, digits, _ . -)", n.Interface)
	}
	if n.Address != "" {
		if n.DHCP {
			return errors.New("network.dhcp: true together with a static network.address; keep one")
		}
		p, err := netip.ParsePrefix(n.Address)
		if err != nil {
			return fmt.Errorf("network.address: %q is not an address with a prefix length such as 10.0.2.15/24: %w", n.Address, err)
		}
		if p.Bits() == p.Addr().BitLen() && n.Gateway != "" {
			return fmt.Errorf("network.address: %s has no room for the gateway; give the network's prefix length, such as /24", n.Address)
		}
		if n.Gateway != "" {
			gw, err := netip.ParseAddr(n.Gateway)
			if err != nil {
				return fmt.Errorf("network.gateway: %q is not an IP address", n.Gateway)
			}
			if !p.Masked().Contains(gw) {
				return fmt.Errorf("network.gateway: %s is outside %s; the gateway must be on the box's network", n.Gateway, p.Masked())
			}
		}
	} else if n.Gateway != "" || len(n.DNS) > 0 {
		return errors.New("network.gateway and network.dns are for a static address; DHCP supplies them (set network.address, or drop them)")
	}
	for i, s := range n.DNS {
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("network.dns[%d]: %q is not an IP address", i, s)
		}
	}
	for i, s := range n.NTP {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			host, port = s, ""
		}
		if _, ipErr := netip.ParseAddr(host); ipErr != nil && !hostnameRE.MatchString(host) || port != "" && port != "123" {
			return fmt.Errorf("network.ntp[%d]: %q is not a host name or IP address (port 123 only)", i, s)
		}
	}
	if _, err := c.DataSize(); err != nil {
		return fmt.Errorf("data.size: %w", err)
	}
	for i, m := range c.Kernel.Modules {
		if !moduleRE.MatchString(m) {
			return fmt.Errorf("kernel.modules[%d]: %q is not a module name (as in modules.dep, without .ko)", i, m)
		}
		if slices.Contains(c.Kernel.Modules[:i], m) {
			return fmt.Errorf("kernel.modules: %s is listed twice", m)
		}
	}
	if strings.ContainsAny(c.Kernel.Cmdline, "\n\x00") || len(c.Kernel.Cmdline) > 2048 {
		return errors.New("kernel.cmdline: must be one line of at most 2048 bytes")
	}
	for _, f := range strings.Fields(c.Kernel.Cmdline) {
		if strings.HasPrefix(f, "eddy.slot=") || strings.HasPrefix(f, "init=") || strings.HasPrefix(f, "rdinit=") {
			return fmt.Errorf("kernel.cmdline: %s is set by the image builder; remove it", f)
		}
	}
	healthy, err := time.ParseDuration(c.Update.HealthyAfter)
	if err != nil || healthy < 0 || healthy > time.Hour {
		return fmt.Errorf("update.healthy_after: %q is not a duration between 0s and 1h", c.Update.HealthyAfter)
	}
	trial, err := time.ParseDuration(c.Update.TrialTimeout)
	if err != nil || trial < time.Minute || trial > time.Hour {
		return fmt.Errorf("update.trial_timeout: %q is not a duration between 1m and 1h", c.Update.TrialTimeout)
	}
	if trial <= healthy {
		return fmt.Errorf("update.trial_timeout: %s leaves no time to serve for update.healthy_after (%s); make it longer", trial, healthy)
	}
	return nil
}

// DataSize returns data.size in bytes.
func (c *Config) DataSize() (int64, error) {
	return parseSize(c.Data.Size)
}

// Modules returns the modules to load: BaseModules, then kernel.modules,
// without repeats.
func (c *Config) Modules() []string {
	out := slices.Clone(BaseModules)
	for _, m := range c.Kernel.Modules {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// TrialDeadline returns update.trial_timeout.
func (c *Config) TrialDeadline() time.Duration {
	d, err := time.ParseDuration(c.Update.TrialTimeout)
	if err != nil {
		return DefaultTrialTimeout
	}
	return d
}

// HealthyDelay returns update.healthy_after.
func (c *Config) HealthyDelay() time.Duration {
	d, err := time.ParseDuration(c.Update.HealthyAfter)
	if err != nil {
		return DefaultHealthyAfter
	}
	return d
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(strings.TrimSpace(s), u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a size such as 512MiB or 4GiB", s)
		}
		if n > (1<<50)/u.mult {
			return 0, fmt.Errorf("%q is too large", s)
		}
		v := n * u.mult
		if v%(1<<20) != 0 {
			return 0, fmt.Errorf("%q is not a whole number of MiB", s)
		}
		if v < MinDataSize {
			return 0, fmt.Errorf("%q is below the 64MiB minimum", s)
		}
		return v, nil
	}
	return 0, fmt.Errorf("%q is not a size such as 512MiB or 4GiB", s)
}
