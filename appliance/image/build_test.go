package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eddybroker/eddy/appliance/device"
	"github.com/eddybroker/eddy/appliance/slots"
)

// fakeModules writes a modules directory in the layout of
// /lib/modules/<version>: modules.dep, modules.builtin and the .ko files.
func fakeModules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	dep := `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/crypto/crc32c_generic.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko
kernel/fs/fat/fat.ko:
kernel/fs/nls/nls_cp437.ko:
kernel/fs/nls/nls_ascii.ko:
kernel/fs/nls/nls_utf8.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
`
	for _, l := range strings.Split(dep, "\n") {
		f, _, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("module "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/virtio/virtio_pci.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestResolveModules(t *testing.T) {
	dir := fakeModules(t)
	mods, err := resolveModules(dir, []string{"ext4", "virtio-net", "virtio_pci", "nls_utf8"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	if got, want := strings.Join(names, " "), "crc16 mbcache jbd2 ext4 failover net_failover virtio_net nls_utf8"; got != want {
		t.Fatalf("load order %q, want %q", got, want)
	}
	if _, err := resolveModules(dir, []string{"e1000x"}); err == nil || !strings.Contains(err.Error(), "kernel.modules: e1000x") {
		t.Fatalf("unknown module: %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	ks := []string{"/boot/vmlinuz-6.1.0-10-amd64", "/boot/vmlinuz-6.1.0-9-amd64", "/boot/vmlinuz-6.12.1-amd64", "/boot/vmlinuz-6.2.0-1-amd64"}
	slices.SortFunc(ks, compareVersions)
	if got, want := strings.Join(ks, " "), "/boot/vmlinuz-6.1.0-9-amd64 /boot/vmlinuz-6.1.0-10-amd64 /boot/vmlinuz-6.2.0-1-amd64 /boot/vmlinuz-6.12.1-amd64"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
}

func TestCPIO(t *testing.T) {
	b, err := initramfs([]cpioEntry{
		{Name: "dev", Mode: modeDir | 0o755},
		{Name: "dev/console", Mode: modeChar | 0o600, Major: 5, Minor: 1},
		{Name: "init", Mode: modeFile | 0o755, Data: []byte("#!hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw)%4 != 0 || !bytes.HasPrefix(raw, []byte("070701")) || !bytes.Contains(raw, []byte("TRAILER!!!")) {
		t.Fatalf("not a newc archive: %q", raw[:min(len(raw), 120)])
	}
	// dev/console's header: rdevmajor 5, rdevminor 1 (fields 10 and 11).
	i := bytes.Index(raw, []byte("dev/console"))
	h := raw[i-110 : i]
	if string(h[6+9*8:6+10*8]) != "00000005" || string(h[6+10*8:6+11*8]) != "00000001" {
		t.Fatalf("console header %q", h)
	}
	if cpio, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command(cpio, "-t", "-v")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "5,   1") && !strings.Contains(string(out), "5, 1") {
			t.Fatalf("cpio -t: %v\n%s", err, out)
		}
	}
}

// The stand-in /init is built once for the package's tests.
var (
	initOnce sync.Once
	initDir  string
	initBin  string
	initErr  error
)

func TestMain(m *testing.M) {
	var err error
	if initDir, err = os.MkdirTemp("", "eddy-image-test-*"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(initDir)
	os.Exit(code)
}

// testImageOptions returns a build's inputs: a stand-in kernel, modules
// and /init, the real stub and boot loader; it skips when the tools are
// missing.
func testImageOptions(t *testing.T) Options {
	t.Helper()
	for _, tool := range []string{"objcopy", "mkfs.fat", "mcopy", "mke2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make image-deps installs it)", tool)
		}
	}
	for _, f := range []string{DefaultStub, DefaultBootloader} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s missing: install systemd-boot-efi (make image-deps does)", f)
		}
	}
	dir := t.TempDir()
	initOnce.Do(func() {
		initBin = filepath.Join(initDir, "init")
		build := exec.Command("go", "build", "-trimpath", "-o", initBin, "./testdata/hello")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			initErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if initErr != nil {
		t.Fatal(initErr)
	}
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, bytes.Repeat([]byte("kernel"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	yml, err := os.ReadFile("../../firmware-config/examples/qemu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yml = bytes.Replace(yml, []byte("size: 512MiB"), []byte("size: 64MiB"), 1)
	yml = bytes.Replace(yml, []byte("modules: [virtio_pci, virtio_net, virtio_blk]"), []byte("modules: [virtio_net, virtio_pci]"), 1)
	cfg, err := device.Parse(yml)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Config: cfg, ConfigYAML: yml, Init: initBin, Kernel: kernel, Modules: fakeModules(t), Version: "test", ESPSize: 64 << 20, Output: filepath.Join(dir, "eddy.img")}
}

// TestBuildReproducible builds an image twice from the same inputs and
// wants identical bytes, a valid GPT and the device config on the EFI
// partition.
func TestBuildReproducible(t *testing.T) {
	opts := testImageOptions(t)
	dir := filepath.Dir(opts.Output)
	yml := opts.ConfigYAML
	var sums [2][32]byte
	var res0 Result
	for i := range sums {
		opts.Output = filepath.Join(dir, fmt.Sprintf("eddy%d.img", i))
		res, err := Build(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Size != 130<<20 || res.UKISize == 0 || len(res.Modules) != 13 {
			t.Fatalf("result %+v", res)
		}
		res0 = res
		b, err := os.ReadFile(opts.Output)
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(b)
	}
	if sums[0] != sums[1] {
		out, _ := exec.Command("cmp", "-l", filepath.Join(dir, "eddy0.img"), opts.Output).CombinedOutput()
		t.Fatalf("two builds differ: %x vs %x; cmp -l:\n%.600s", sums[0], sums[1], out)
	}
	if sgdisk, err := exec.LookPath("sgdisk"); err == nil {
		out, err := exec.Command(sgdisk, "-v", opts.Output).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No problems found") {
			t.Fatalf("sgdisk -v: %v\n%s", err, out)
		}
		out, _ = exec.Command(sgdisk, "-p", opts.Output).CombinedOutput()
		if !strings.Contains(string(out), ESPName) || !strings.Contains(string(out), DataName) || !strings.Contains(string(out), "EF00") {
			t.Fatalf("sgdisk -p:\n%s", out)
		}
	}
	if got := mtype(t, opts.Output, ConfigPath); got != string(yml) {
		t.Fatalf("%s on the EFI partition:\n%s", ConfigPath, got)
	}
	// Both slots hold the same UKI, slot a is the boot loader's default,
	// and ReadUKI finds what an update push sends.
	if a, b := mtype(t, opts.Output, "EFI/Linux/eddy-a.efi"), mtype(t, opts.Output, "EFI/Linux/eddy-b.efi"); a != b || len(a) < 1000 {
		t.Fatalf("slot UKIs differ or are empty: %d and %d bytes", len(a), len(b))
	}
	if got := mtype(t, opts.Output, slots.LoaderConf); got != string(slots.LoaderConfFor("a")) {
		t.Fatalf("loader.conf:\n%s", got)
	}
	uki, osrel, err := ReadUKI(context.Background(), opts.Output)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(uki)) != res0.UKISize || osrel["IMAGE_VERSION"] != "test" {
		t.Fatalf("ReadUKI: %d bytes (built %d), os-release %v", len(uki), res0.UKISize, osrel)
	}
	if _, err := slots.CheckUKI(bytes.NewReader(uki)); err != nil {
		t.Fatalf("the built UKI fails the update check: %v", err)
	}
}

func mtype(t *testing.T, img, file string) string {
	t.Helper()
	cmd := exec.Command("mtype", "-i", img+"@@1M", "::/"+file)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mtype %s: %v\n%s", file, err, out)
	}
	return string(out)
}

// TestWriteConfig writes a per-device config into a built image, and
// refuses configs the image cannot honour.
func TestWriteConfig(t *testing.T) {
	opts := testImageOptions(t)
	if _, err := Build(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(opts.Output)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := ReadPartitions(f)
	f.Close()
	if err != nil || len(parts) != 2 || parts[0].Name != ESPName || parts[0].Offset != 1<<20 || parts[1].Name != DataName || parts[1].Size != 64<<20 {
		t.Fatalf("partitions %+v, %v", parts, err)
	}
	base := string(opts.ConfigYAML)
	tests := []struct{ name, yml, err string }{
		{"other device", strings.Replace(base, "hostname: eddy-qemu", "hostname: eddy-qemu-2", 1), ""},
		{"module not in the image", strings.Replace(base, "modules: [virtio_net, virtio_pci]", "modules: [virtio_net, e1000e]", 1), "kernel.modules[1]: e1000e is not in this image"},
		{"other data size", strings.Replace(base, "size: 64MiB", "size: 128MiB", 1), "data.size: 128MiB, but the image's data partition is 64 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.yml == base {
				t.Fatal("the edit did not apply: the test config changed; update the test")
			}
			cfg, err := device.Parse([]byte(tt.yml))
			if err != nil {
				t.Fatal(err)
			}
			err = WriteConfig(context.Background(), opts.Output, cfg, []byte(tt.yml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := mtype(t, opts.Output, ConfigPath); got != tt.yml {
				t.Fatalf("%s after WriteConfig:\n%s", ConfigPath, got)
			}
		})
	}
	// The rest of the image is untouched: the GPT still checks out.
	if sgdisk, err := exec.LookPath("sgdisk"); err == nil {
		if out, err := exec.Command(sgdisk, "-v", opts.Output).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
			t.Fatalf("sgdisk -v: %v\n%s", err, out)
		}
	}
}
