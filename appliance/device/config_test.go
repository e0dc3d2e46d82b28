package device

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// examples are the device configs shipped in firmware-config.
func examples(t *testing.T) []string {
	t.Helper()
	files := []string{"../../firmware-config/examples/qemu.yaml"}
	more, err := filepath.Glob("../../firmware-config/examples/devices/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	three, _ := filepath.Glob("../../firmware-config/examples/devices/three-box/*.yaml")
	qemuCluster, _ := filepath.Glob("../../firmware-config/examples/qemu-cluster/*.yaml")
	files = append(append(append(files, more...), three...), qemuCluster...)
	if len(files) < 8 {
		t.Fatalf("found only %d example device configs: %v", len(files), files)
	}
	return files
}

func TestExamplesParse(t *testing.T) {
	for _, f := range examples(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The qemu example is what the issue promises a laptop user: user
// networking, all interfaces, 127.0.0.1:19092 advertised, insecure.
func TestQEMUExample(t *testing.T) {
	c, _, err := Load("../../firmware-config/examples/qemu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := c.Node
	if !n.Insecure || n.Listen.Kafka != "0.0.0.0:9092" || n.Listen.QUIC != "0.0.0.0:9092" || n.Listen.Admin != "0.0.0.0:9644" {
		t.Fatalf("listeners: insecure=%v %+v", n.Insecure, n.Listen)
	}
	if n.Advertise.Kafka != "127.0.0.1:19092" || n.Advertise.QUIC != "127.0.0.1:19092" || n.Advertise.Admin != "127.0.0.1:19644" {
		t.Fatalf("advertise: %+v", n.Advertise)
	}
	if c.Network.DHCP || c.Network.Address != "10.0.2.15/24" || c.Network.Gateway != "10.0.2.2" {
		t.Fatalf("network: %+v", c.Network)
	}
	if c.Node.DataDir != DefaultDataDir {
		t.Fatalf("data_dir %q", c.Node.DataDir)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Network.DHCP || c.Network.Interface != "eth0" || c.Network.Hostname != "eddy-1" {
		t.Fatalf("network defaults: %+v", c.Network)
	}
	if size, _ := c.DataSize(); size != DefaultDataSize {
		t.Fatalf("data size %d", size)
	}
	if c.TrialDeadline() != DefaultTrialTimeout || c.HealthyDelay().String() != "30s" || c.Kernel.Cmdline != DefaultCmdline {
		t.Fatalf("defaults: %+v %+v", c.Update, c.Kernel)
	}
	if got := strings.Join(c.Modules(), ","); got != "crc32c_generic,ext4,vfat,nls_cp437,nls_ascii,nls_utf8" {
		t.Fatalf("modules %s", got)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "netwrok: {}\n", "field netwrok not found"},
		{"unknown node key", "node:\n  node_idd: 2\n", "field node_idd not found"},
		{"node field", "node:\n  listen:\n    kafka: 0.0.0.0:9092\n", "node.listen.kafka: 0.0.0.0:9092 is not a loopback address"},
		{"data dir off the partition", "node:\n  data_dir: /var/lib/eddy\n", "node.data_dir: \"/var/lib/eddy\" is not on the data partition"},
		{"data dir prefix trick", "node:\n  data_dir: /database\n", "node.data_dir"},
		{"address", "network:\n  address: 10.0.2.15\n", "network.address: \"10.0.2.15\" is not an address with a prefix length"},
		{"dhcp and address", "network:\n  dhcp: true\n  address: 10.0.2.15/24\n", "network.dhcp"},
		{"gateway outside", "network:\n  address: 10.0.2.15/24\n  gateway: 10.0.3.2\n", "network.gateway: 10.0.3.2 is outside 10.0.2.0/24"},
		{"gateway with dhcp", "network:\n  gateway: 10.0.3.2\n", "network.gateway and network.dns are for a static address"},
		{"dns", "network:\n  address: 10.0.2.15/24\n  dns: [resolver]\n", "network.dns[0]"},
		{"ntp", "network:\n  ntp: [pool.ntp.org, 'bad host']\n", "network.ntp[1]"},
		{"ntp port", "network:\n  ntp: ['pool.ntp.org:99']\n", "network.ntp[0]"},
		{"hostname", "network:\n  hostname: -edge\n", "network.hostname"},
		{"interface", "network:\n  interface: a-very-long-interface-name\n", "network.interface"},
		{"size unit", "data:\n  size: 4GB\n", "data.size: \"4GB\" is not a size"},
		{"size small", "data:\n  size: 16MiB\n", "data.size: \"16MiB\" is below the 64MiB minimum"},
		{"size partial MiB", "data:\n  size: 1000KiB\n", "whole number of MiB"},
		{"module", "kernel:\n  modules: [virtio_net.ko]\n", "kernel.modules[0]"},
		{"module twice", "kernel:\n  modules: [nvme, nvme]\n", "kernel.modules: nvme is listed twice"},
		{"cmdline slot", "kernel:\n  cmdline: console=ttyS0 eddy.slot=a\n", "kernel.cmdline: eddy.slot=a is set by the image builder"},
		{"boot tries", "update:\n  boot_tries: 3\n", "field boot_tries not found"},
		{"trial timeout", "update:\n  trial_timeout: 30s\n", "update.trial_timeout: \"30s\" is not a duration between 1m and 1h"},
		{"trial shorter than healthy", "update:\n  trial_timeout: 1m\n  healthy_after: 2m\n", "leaves no time to serve"},
		{"healthy after", "update:\n  healthy_after: soon\n", "update.healthy_after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"64MiB": 64 << 20, "4GiB": 4 << 30, "1 TiB": 1 << 40, "134217728": 128 << 20, "65536KiB": 64 << 20} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, file := range []string{"../../firmware-config/examples/qemu.yaml", "../../firmware-config/examples/devices/single-box.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A config that parses is a fixed point: written back as YAML (all
	// defaults filled in) it parses again to the same config.
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("parsed config, written back, fails: %v\n%s", err, out)
		}
		if out2, err := yaml.Marshal(c2); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("config changed on a second parse (%v):\n%s\nthen\n%s", err, out, out2)
		}
	})
}
