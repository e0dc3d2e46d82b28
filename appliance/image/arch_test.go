package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/eddybroker/eddy/appliance/device"
)

func TestArchFor(t *testing.T) {
	for _, tt := range []struct{ name, want, err string }{
		{"", "amd64", ""},
		{"amd64", "amd64", ""},
		{"arm64", "arm64", ""},
		{"aarch64", "", `unknown architecture "aarch64" (arm64?); images are built for amd64 or arm64`},
		{"x86_64", "", `unknown architecture "x86_64" (amd64?)`},
		{"riscv64", "", `unknown architecture "riscv64"; images are built for amd64 or arm64`},
	} {
		a, err := ArchFor(tt.name)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ArchFor(%q): %v, want an error containing %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || a.Name != tt.want {
			t.Errorf("ArchFor(%q) = %q, %v; want %q", tt.name, a.Name, err, tt.want)
		}
	}
}

// TestArchPaths checks where each architecture's stub and boot loader
// are looked for and where the boot loader goes on the EFI partition.
func TestArchPaths(t *testing.T) {
	amd, _ := ArchFor("amd64")
	arm, _ := ArchFor("arm64")
	for _, tt := range []struct{ got, want string }{
		{amd.Stub(""), DefaultStub},
		{amd.Bootloader(""), DefaultBootloader},
		{amd.Stub("/"), DefaultStub},
		{amd.BootFile(), "EFI/BOOT/BOOTX64.EFI"},
		{arm.Stub(""), "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"},
		{arm.Bootloader("bin/arm64-root"), "bin/arm64-root/usr/lib/systemd/boot/efi/systemd-bootaa64.efi"},
		{arm.Stub("/srv/root/"), "/srv/root/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"},
		{arm.BootFile(), "EFI/BOOT/BOOTAA64.EFI"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
	if arm.ELF != elf.EM_AARCH64 || arm.PE != pe.IMAGE_FILE_MACHINE_ARM64 || amd.ELF != elf.EM_X86_64 || amd.PE != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Fatalf("machines: %+v %+v", amd, arm)
	}
	if _, err := objcopyFor(0x5064); err == nil || !strings.Contains(err.Error(), "PE machine 0x5064") {
		t.Fatalf("objcopy for riscv64: %v", err)
	}
}

// hello is testdata/hello built for GOARCH arch, once per test binary.
var (
	helloMu   sync.Mutex
	helloBins = map[string]string{}
)

func helloFor(t *testing.T, arch string) string {
	t.Helper()
	helloMu.Lock()
	defer helloMu.Unlock()
	if p, ok := helloBins[arch]; ok {
		return p
	}
	p := filepath.Join(initDir, "hello-"+arch)
	build := exec.Command("go", "build", "-trimpath", "-o", p, "./testdata/hello")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s: %v\n%s", arch, err, out)
	}
	helloBins[arch] = p
	return p
}

func TestCheckInitArch(t *testing.T) {
	amd, _ := ArchFor("amd64")
	arm, _ := ArchFor("arm64")
	armBin, amdBin := helloFor(t, "arm64"), helloFor(t, "amd64")
	if err := checkInit(armBin, arm); err != nil {
		t.Fatalf("arm64 init for an arm64 image: %v", err)
	}
	if err := checkInit(amdBin, amd); err != nil {
		t.Fatalf("amd64 init for an amd64 image: %v", err)
	}
	if err := checkInit(armBin, amd); err == nil || !strings.Contains(err.Error(), "is for EM_AARCH64; the image is amd64") {
		t.Fatalf("arm64 init for an amd64 image: %v", err)
	}
	if err := checkInit(amdBin, arm); err == nil || !strings.Contains(err.Error(), "is for EM_X86_64; the image is arm64 (build eddy with GOOS=linux GOARCH=arm64 CGO_ENABLED=0)") {
		t.Fatalf("amd64 init for an arm64 image: %v", err)
	}
	notELF := filepath.Join(t.TempDir(), "init.sh")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkInit(notELF, arm); err == nil || !strings.Contains(err.Error(), "init binary") {
		t.Fatalf("a shell script as init: %v", err)
	}
}

// fakeKernel is the start of an EFI stub kernel for PE machine m: the
// DOS header, arm64's Image magic for arm64, a PE header at 0x40.
func fakeKernel(m uint16, size int) []byte {
	b := make([]byte, size)
	copy(b, "MZ")
	if m == pe.IMAGE_FILE_MACHINE_ARM64 {
		copy(b[0x38:], "ARMd")
	}
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x44:], m)
	for i := 0x100; i < size; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestKernelFor: a gzip-compressed arm64 kernel goes into the UKI
// decompressed (systemd 252's stub cannot decompress it), a PE one as is;
// kernels for the other architecture are refused.
func TestKernelFor(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	armImage := fakeKernel(pe.IMAGE_FILE_MACHINE_ARM64, 3<<20)
	armPlain := write("vmlinuz-arm64", armImage)
	// Padding after the gzip stream (as some kernel packages have) is
	// not part of the kernel.
	armGz := write("vmlinuz-arm64.gz", append(gzipped(t, armImage), make([]byte, 512)...))
	amdPlain := write("vmlinuz-amd64", fakeKernel(pe.IMAGE_FILE_MACHINE_AMD64, 64<<10))
	stand := write("vmlinuz-standin", bytes.Repeat([]byte("kernel"), 1000))
	noStub := write("Image-nostub", append(make([]byte, 0x38), "ARMd\x00\x00\x00\x00"...))
	amd, _ := ArchFor("amd64")
	arm, _ := ArchFor("arm64")

	work := t.TempDir()
	got, err := arm.kernelFor(armGz, work)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); got == armGz || !bytes.Equal(b, armImage) {
		t.Fatalf("decompressed kernel %s: %d bytes, want the %d of the image", got, len(b), len(armImage))
	}
	if got, err := arm.kernelFor(armPlain, t.TempDir()); err != nil || got != armPlain {
		t.Fatalf("uncompressed arm64 kernel: %s, %v; want it as is", got, err)
	}
	if got, err := amd.kernelFor(amdPlain, t.TempDir()); err != nil || got != amdPlain {
		t.Fatalf("amd64 kernel: %s, %v; want it as is", got, err)
	}
	if got, err := amd.kernelFor(stand, t.TempDir()); err != nil || got != stand {
		t.Fatalf("stand-in kernel for amd64: %s, %v; want it as is", got, err)
	}
	for _, tt := range []struct {
		a      Arch
		kernel string
		err    string
	}{
		{arm, amdPlain, "is for amd64; the image is arm64"},
		{amd, armGz, "is for arm64; the image is amd64"},
		{amd, armPlain, "is for arm64; the image is amd64"},
		{arm, stand, "is not an EFI stub kernel"},
		{arm, noStub, "arm64 kernel without an EFI stub"},
		{arm, filepath.Join(dir, "missing"), "no such file"},
	} {
		if _, err := tt.a.kernelFor(tt.kernel, t.TempDir()); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s kernel %s: %v, want an error containing %q", tt.a.Name, filepath.Base(tt.kernel), err, tt.err)
		}
	}
}

// TestKernelIn finds the newest kernel of an architecture in a sysroot
// that has kernels of both, and says what to run when it has none.
func TestKernelIn(t *testing.T) {
	root := t.TempDir()
	put := func(p string, b []byte) {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	arm := fakeKernel(pe.IMAGE_FILE_MACHINE_ARM64, 8<<10)
	put("boot/vmlinuz-6.1.0-9-arm64", arm)
	put("boot/vmlinuz-6.1.0-10-arm64", gzipped(t, arm))
	put("boot/vmlinuz-6.1.0-12-amd64", fakeKernel(pe.IMAGE_FILE_MACHINE_AMD64, 8<<10))
	put("boot/config-6.1.0-12-amd64", []byte("CONFIG_EFI_STUB=y\n"))
	put("lib/modules/6.1.0-10-arm64/modules.dep", nil)
	put("usr/lib/modules/6.1.0-12-amd64/modules.dep", nil)

	k, m, err := KernelIn("arm64", root)
	if err != nil || k != filepath.Join(root, "boot/vmlinuz-6.1.0-10-arm64") || m != filepath.Join(root, "lib/modules/6.1.0-10-arm64") {
		t.Fatalf("arm64: %s %s %v", k, m, err)
	}
	k, m, err = KernelIn("amd64", root)
	if err != nil || k != filepath.Join(root, "boot/vmlinuz-6.1.0-12-amd64") || m != filepath.Join(root, "usr/lib/modules/6.1.0-12-amd64") {
		t.Fatalf("amd64: %s %s %v", k, m, err)
	}
	if _, _, err := KernelIn("arm64", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no arm64 kernel in") || !strings.Contains(err.Error(), "make image-deps-arm64") {
		t.Fatalf("empty root: %v", err)
	}
	if _, _, err := KernelIn("mips", root); err == nil || !strings.Contains(err.Error(), "unknown architecture") {
		t.Fatalf("unknown arch: %v", err)
	}

	// Build takes its defaults from the sysroot, and says when a kernel
	// package was extracted without depmod's modules.dep.
	o := Options{Arch: "arm64", Sysroot: root}
	if _, err := o.resolve(); err != nil {
		t.Fatal(err)
	}
	if o.Kernel != filepath.Join(root, "boot/vmlinuz-6.1.0-10-arm64") || o.Stub != filepath.Join(root, "usr/lib/systemd/boot/efi/linuxaa64.efi.stub") ||
		o.Bootloader != filepath.Join(root, "usr/lib/systemd/boot/efi/systemd-bootaa64.efi") {
		t.Fatalf("defaults: %+v", o)
	}
	if err := os.Remove(filepath.Join(root, "lib/modules/6.1.0-10-arm64/modules.dep")); err != nil {
		t.Fatal(err)
	}
	o = Options{Arch: "arm64", Sysroot: root}
	if _, err := o.resolve(); err == nil || !strings.Contains(err.Error(), "has no modules.dep; run depmod") {
		t.Fatalf("no modules.dep: %v", err)
	}
}

// TestBuildArchRefusals: a build for an architecture refuses an /init for
// another, and an unknown architecture, before it needs any package.
func TestBuildArchRefusals(t *testing.T) {
	yml, err := os.ReadFile("../../firmware-config/examples/qemu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := device.Parse(yml)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, fakeKernel(pe.IMAGE_FILE_MACHINE_ARM64, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	base := Options{Config: cfg, ConfigYAML: yml, Kernel: kernel, Modules: fakeModules(t), Output: filepath.Join(dir, "eddy.img")}
	for _, tt := range []struct {
		arch, init, err string
	}{
		{"arm64", helloFor(t, "amd64"), "is for EM_X86_64; the image is arm64"},
		{"", helloFor(t, "arm64"), "is for EM_AARCH64; the image is amd64"},
		{"riscv64", helloFor(t, "arm64"), `unknown architecture "riscv64"`},
	} {
		o := base
		o.Arch, o.Init = tt.arch, tt.init
		if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("arch %q, init %s: %v, want an error containing %q", tt.arch, filepath.Base(tt.init), err, tt.err)
		}
	}
	if _, err := os.Stat(base.Output); err == nil {
		t.Fatal("a refused build wrote the image")
	}
}

// arm64Root is where make image-deps-arm64 extracts Debian's arm64
// kernel and systemd-boot-efi (EDDY_ARM64_ROOT overrides it).
func arm64Root(t *testing.T) string {
	t.Helper()
	root := os.Getenv("EDDY_ARM64_ROOT")
	if root == "" {
		root = "../../bin/arm64-root"
	}
	arm, _ := ArchFor("arm64")
	if _, err := os.Stat(arm.Stub(root)); err != nil {
		t.Skipf("no arm64 root at %s (run make image-deps-arm64, or set EDDY_ARM64_ROOT): %v", root, err)
	}
	if _, err := arm.objcopy(); err != nil {
		t.Skipf("%v", err)
	}
	for _, tool := range []string{"mkfs.fat", "mcopy", "mmd", "mke2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make image-deps-arm64 installs it)", tool)
		}
	}
	return root
}

// TestBuildArm64 builds an arm64 image from Debian's arm64 packages (make
// image-deps-arm64) with an arm64 stand-in /init: the GPT, the UKI (a PE
// for arm64 with the four sections, the kernel as a PE for arm64), the
// boot loader, /init in the initramfs, and the same bytes from two builds
// and from a build with the kernel gzip-compressed. Booting it is not
// tested (docs/appliance.md, "arm64").
func TestBuildArm64(t *testing.T) {
	root := arm64Root(t)
	kernel, modules, err := KernelIn("arm64", root)
	if err != nil {
		t.Fatal(err)
	}
	yml, err := os.ReadFile("../../firmware-config/examples/qemu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yml = bytes.Replace(yml, []byte("size: 512MiB"), []byte("size: 64MiB"), 1)
	yml = bytes.Replace(yml, []byte("cmdline: console=ttyS0,115200"), []byte("cmdline: console=ttyAMA0"), 1)
	cfg, err := device.Parse(yml)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := Options{Config: cfg, ConfigYAML: yml, Arch: "arm64", Sysroot: root, Init: helloFor(t, "arm64"), Version: "test", ESPSize: 128 << 20}

	// The kernel as the UKI must hold it (Debian's signed arm64 kernel
	// is an uncompressed Image), and gzip-compressed, as Debian's
	// unsigned arm64 kernels are.
	arm, _ := ArchFor("arm64")
	unpacked, err := arm.kernelFor(kernel, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(unpacked)
	if err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(dir, filepath.Base(kernel)+".gz")
	if err := os.WriteFile(gz, gzipped(t, plain), 0o644); err != nil {
		t.Fatal(err)
	}
	var sums [3][32]byte
	var res Result
	for i, k := range []string{"", "", gz} {
		o := opts
		o.Output = filepath.Join(dir, fmt.Sprintf("eddy%d.img", i))
		if k != "" {
			o.Kernel, o.Modules = k, modules
		}
		r, err := Build(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(o.Output)
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(b)
		res = r
		t.Logf("build %d (kernel %s): %d MiB, UKI %.1f MB, initramfs %.1f MB, modules %v", i, filepath.Base(kernel+strings.TrimPrefix(k, kernel)), r.Size>>20, float64(r.UKISize)/1e6, float64(r.InitramfsSize)/1e6, r.Modules)
	}
	img := filepath.Join(dir, "eddy0.img")
	if sums[0] != sums[1] {
		t.Fatalf("two builds differ: %x vs %x", sums[0], sums[1])
	}
	if sums[0] != sums[2] {
		t.Fatalf("the build from the gzip-compressed kernel differs: %x vs %x", sums[0], sums[2])
	}
	if res.Size != (1+128+64+1)<<20 {
		t.Fatalf("image size %d", res.Size)
	}
	for _, m := range []string{"virtio_net", "virtio_pci", "ext4", "vfat"} {
		if !strings.Contains(" "+strings.Join(res.Modules, " ")+" ", " "+m+" ") {
			t.Fatalf("module %s not in the initramfs: %v", m, res.Modules)
		}
	}

	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := ReadPartitions(f)
	f.Close()
	if err != nil || len(parts) != 2 || parts[0].Name != ESPName || parts[1].Name != DataName || parts[1].Size != 64<<20 {
		t.Fatalf("partitions %+v, %v", parts, err)
	}
	if sgdisk, err := exec.LookPath("sgdisk"); err == nil {
		if out, err := exec.Command(sgdisk, "-v", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
			t.Fatalf("sgdisk -v: %v\n%s", err, out)
		}
	}

	// The boot loader, where arm64 UEFI firmware looks for it.
	boot := espFile(t, img, arm.BootFile())
	if want, _ := os.ReadFile(arm.Bootloader(root)); !bytes.Equal(boot, want) {
		t.Fatalf("%s is not %s", arm.BootFile(), arm.Bootloader(root))
	}
	if p, err := pe.NewFile(bytes.NewReader(boot)); err != nil || p.Machine != pe.IMAGE_FILE_MACHINE_ARM64 {
		t.Fatalf("%s: %v", arm.BootFile(), err)
	}

	// Both slots' UKIs: PE files for arm64 with the four sections.
	for _, slot := range []string{"a", "b"} {
		uki := espFile(t, img, "EFI/Linux/eddy-"+slot+".efi")
		p, err := pe.NewFile(bytes.NewReader(uki))
		if err != nil {
			t.Fatalf("slot %s UKI: %v", slot, err)
		}
		if p.Machine != pe.IMAGE_FILE_MACHINE_ARM64 {
			t.Fatalf("slot %s UKI is for PE machine %#x", slot, p.Machine)
		}
		section := func(name string) []byte {
			s := p.Section(name)
			if s == nil {
				t.Fatalf("slot %s UKI has no %s section", slot, name)
			}
			b, err := s.Data()
			if err != nil {
				t.Fatal(err)
			}
			return b[:min(len(b), int(s.VirtualSize))]
		}
		if osrel := string(section(".osrel")); !strings.Contains(osrel, "ID=eddy\n") || !strings.Contains(osrel, `IMAGE_VERSION="test"`) {
			t.Fatalf(".osrel %q", osrel)
		}
		if cmdline := string(section(".cmdline")); !strings.HasPrefix(cmdline, cfg.Kernel.Cmdline) {
			t.Fatalf(".cmdline %q", cmdline)
		}
		if linux := section(".linux"); !bytes.Equal(linux, plain) {
			t.Fatalf(".linux: %d bytes, not the kernel's %d", len(linux), len(plain))
		}
		if _, err := pe.NewFile(bytes.NewReader(plain)); err != nil {
			t.Fatalf("the kernel is not a PE file: %v", err)
		}
		initrd := section(".initrd")
		if int64(len(initrd)) != res.InitramfsSize {
			t.Fatalf(".initrd: %d bytes, built %d", len(initrd), res.InitramfsSize)
		}
		init := cpioFile(t, initrd, "init")
		e, err := elf.NewFile(bytes.NewReader(init))
		if err != nil {
			t.Fatalf("/init: %v", err)
		}
		if e.Machine != elf.EM_AARCH64 {
			t.Fatalf("/init is for %s", e.Machine)
		}
	}
}

// espFile reads a file of a built image's EFI partition.
func espFile(t *testing.T, img, file string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("mcopy", "-n", "-i", img+"@@1M", "::/"+file, out)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy %s: %v\n%s", file, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cpioFile returns the contents of name in a gzip-compressed newc
// archive.
func cpioFile(t *testing.T, gz []byte, name string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; off+110 <= len(raw); {
		h := raw[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("cpio: bad magic at %d", off)
		}
		field := func(i int) int {
			n, err := strconv.ParseUint(string(h[6+i*8:14+i*8]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
		size, nameSize := field(6), field(11)
		n := string(raw[off+110 : off+110+nameSize-1])
		data := align(off + 110 + nameSize)
		if n == name {
			return raw[data : data+size]
		}
		if n == "TRAILER!!!" {
			break
		}
		off = align(data + size)
	}
	t.Fatalf("no %s in the initramfs", name)
	return nil
}
