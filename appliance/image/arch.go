package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultArch is the architecture an image is built for when Options.Arch
// is empty.
const DefaultArch = "amd64"

// Arch is what differs between the architectures an image can be built
// for: the machine /init, the boot loader, the UKI stub and the kernel
// must all be for.
type Arch struct {
	// Name is Go's name for it (GOARCH): amd64, arm64.
	Name string
	// ELF is the machine /init must be built for.
	ELF elf.Machine
	// PE is the machine of the stub, the boot loader, the UKI and the
	// kernel (an EFI stub kernel is a PE file).
	PE uint16
	// EFI is the architecture's suffix in UEFI's and systemd's file names:
	// BOOTX64.EFI, linuxaa64.efi.stub.
	EFI string
	// bfd is objcopy's name for the PE format; objcopies the commands
	// tried for one that writes it (a host's own objcopy writes its own
	// architecture's PE files only).
	bfd       string
	objcopies []string
	// deps says how to get the kernel, stub and boot loader.
	deps string
}

var arches = []Arch{
	{
		Name: "amd64", ELF: elf.EM_X86_64, PE: pe.IMAGE_FILE_MACHINE_AMD64, EFI: "x64",
		bfd: "pei-x86-64", objcopies: []string{"objcopy", "x86_64-linux-gnu-objcopy"},
		deps: "make image-deps installs Debian's linux-image-amd64, systemd-boot-efi and binutils",
	},
	{
		Name: "arm64", ELF: elf.EM_AARCH64, PE: pe.IMAGE_FILE_MACHINE_ARM64, EFI: "aa64",
		bfd: "pei-aarch64-little", objcopies: []string{"objcopy", "aarch64-linux-gnu-objcopy"},
		deps: "make image-deps-arm64 extracts Debian's arm64 kernel and systemd-boot-efi into bin/arm64-root (pass --sysroot bin/arm64-root) and installs binutils-aarch64-linux-gnu",
	},
}

// Arches lists the architectures images can be built for.
func Arches() []string {
	var names []string
	for _, a := range arches {
		names = append(names, a.Name)
	}
	return names
}

// ArchFor returns the architecture named name; "" is DefaultArch.
func ArchFor(name string) (Arch, error) {
	if name == "" {
		name = DefaultArch
	}
	for _, a := range arches {
		if a.Name == name {
			return a, nil
		}
	}
	hint := ""
	switch name {
	case "x86_64", "x86-64", "x64":
		hint = " (amd64?)"
	case "aarch64", "aa64", "armv8":
		hint = " (arm64?)"
	}
	return Arch{}, fmt.Errorf("image: unknown architecture %q%s; images are built for %s", name, hint, strings.Join(Arches(), " or "))
}

// efiDir is where Debian's systemd-boot-efi puts the boot loader and the
// stub.
const efiDir = "usr/lib/systemd/boot/efi"

// Stub is Debian's UKI stub for a under sysroot ("" or "/": this
// machine's).
func (a Arch) Stub(sysroot string) string {
	return filepath.Join(rootDir(sysroot), efiDir, "linux"+a.EFI+".efi.stub")
}

// Bootloader is Debian's systemd-boot for a under sysroot.
func (a Arch) Bootloader(sysroot string) string {
	return filepath.Join(rootDir(sysroot), efiDir, "systemd-boot"+a.EFI+".efi")
}

// BootFile is where UEFI firmware looks for a's boot loader on a
// removable disk: EFI/BOOT/BOOTX64.EFI, EFI/BOOT/BOOTAA64.EFI.
func (a Arch) BootFile() string {
	return "EFI/BOOT/BOOT" + strings.ToUpper(a.EFI) + ".EFI"
}

func rootDir(sysroot string) string {
	if sysroot == "" {
		return "/"
	}
	return sysroot
}

// KernelIn returns the newest sysroot/boot/vmlinuz-* for arch and its
// module directory, sysroot/lib/modules/<version> (or usr/lib/modules).
// Kernels for other architectures are passed over: a machine that has
// Debian's amd64 kernel may have an arm64 one extracted next to it.
func KernelIn(arch, sysroot string) (kernel, modules string, err error) {
	a, err := ArchFor(arch)
	if err != nil {
		return "", "", err
	}
	root := rootDir(sysroot)
	all, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	var ks []string
	var others []string
	for _, k := range all {
		if got, _, err := kernelArch(k); err == nil && got.Name == a.Name {
			ks = append(ks, k)
		} else {
			others = append(others, filepath.Base(k))
		}
	}
	if len(ks) == 0 {
		msg := fmt.Sprintf("image: no %s kernel in %s", a.Name, filepath.Join(root, "boot"))
		if len(others) > 0 {
			msg += fmt.Sprintf(" (%s: other architectures, or not EFI stub kernels)", strings.Join(others, ", "))
		}
		return "", "", fmt.Errorf("%s; %s, or pass --kernel and --modules", msg, a.deps)
	}
	slices.SortFunc(ks, compareVersions)
	k := ks[len(ks)-1]
	ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
	modules = filepath.Join(root, "lib", "modules", ver)
	if _, err := os.Stat(modules); err != nil {
		if alt := filepath.Join(root, "usr", "lib", "modules", ver); dirExists(alt) {
			modules = alt
		}
	}
	return k, modules, nil
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// resolve checks o.Arch and fills in what o leaves to the defaults: the
// stub, the boot loader, and the kernel and its modules, from o.Sysroot.
func (o *Options) resolve() (Arch, error) {
	a, err := ArchFor(o.Arch)
	if err != nil {
		return a, err
	}
	o.Arch = a.Name
	if o.Stub == "" {
		o.Stub = a.Stub(o.Sysroot)
	}
	if o.Bootloader == "" {
		o.Bootloader = a.Bootloader(o.Sysroot)
	}
	if o.Kernel == "" {
		k, m, err := KernelIn(a.Name, o.Sysroot)
		if err != nil {
			return a, err
		}
		o.Kernel = k
		if o.Modules == "" {
			o.Modules = m
		}
	}
	if o.Modules == "" {
		return a, fmt.Errorf("image: no module directory for %s: give its /lib/modules/<version>", o.Kernel)
	}
	if _, err := os.Stat(filepath.Join(o.Modules, "modules.dep")); errors.Is(err, os.ErrNotExist) && dirExists(o.Modules) {
		// A kernel package extracted with dpkg-deb -x has no modules.dep:
		// its postinst runs depmod.
		return a, fmt.Errorf("image: %s has no modules.dep; run depmod -b SYSROOT VERSION (make image-deps-arm64 does)", o.Modules)
	}
	return a, nil
}

// objcopy returns an objcopy command that writes a's PE files: the host's
// own, or a cross binutils' (binutils-aarch64-linux-gnu on amd64).
func (a Arch) objcopy() (string, error) {
	for _, name := range a.objcopies {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "--info").Output()
		if err == nil && bytes.Contains(out, []byte(a.bfd)) {
			return path, nil
		}
	}
	return "", fmt.Errorf("image: no objcopy writes %s (%s) files; %s", a.bfd, a.Name, a.deps)
}

// objcopyFor returns an objcopy command for PE files of machine m.
func objcopyFor(m uint16) (string, error) {
	for _, a := range arches {
		if a.PE == m {
			return a.objcopy()
		}
	}
	return "", fmt.Errorf("image: the stub is for PE machine %#x, not one images are built for", m)
}

// kernelHead is how much of a kernel image kernelArch reads: the PE and
// boot headers.
const kernelHead = 4096

// kernelArch reads what a kernel image is for: the machine of its PE
// header (an EFI stub kernel, which systemd's stub starts), looking
// through gzip as Debian's unsigned arm64 kernels are compressed.
// compressed reports that. An image it cannot place is an error.
func kernelArch(path string) (a Arch, compressed bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return a, false, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return a, true, fmt.Errorf("%s: %w", path, err)
		}
		r, compressed = zr, true
	}
	head := make([]byte, kernelHead)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return a, compressed, fmt.Errorf("%s: %w", path, err)
	}
	head = head[:n]
	if len(head) < 0x40 || string(head[:2]) != "MZ" {
		if len(head) >= 0x3c && string(head[0x38:0x3c]) == "ARMd" {
			return a, compressed, fmt.Errorf("%s is an arm64 kernel without an EFI stub (CONFIG_EFI_STUB)", path)
		}
		return a, compressed, fmt.Errorf("%s is not an EFI stub kernel (no PE header)", path)
	}
	at := int(binary.LittleEndian.Uint32(head[0x3c:]))
	if at < 0 || at+6 > len(head) || string(head[at:at+4]) != "PE\x00\x00" {
		return a, compressed, fmt.Errorf("%s is not an EFI stub kernel (no PE header)", path)
	}
	m := binary.LittleEndian.Uint16(head[at+4:])
	for _, x := range arches {
		if x.PE == m {
			return x, compressed, nil
		}
	}
	return a, compressed, fmt.Errorf("%s is a kernel for PE machine %#x, not one images are built for", path, m)
}

// kernelFor returns the kernel to put into a's UKIs: kernel itself, or,
// when it is gzip-compressed (Debian's unsigned arm64 kernels are),
// kernel decompressed into dir. systemd 252's stub hands the .linux
// section to the firmware as a PE image and cannot decompress it; arm64
// kernels do not decompress themselves unless built with
// CONFIG_EFI_ZBOOT, which is then a PE file and passed as is.
//
// A kernel that is recognisably for another architecture is refused. An
// amd64 kernel the check cannot place is passed as is (a bzImage is
// recognised; the build tests use stand-ins); an arm64 one must be a PE
// file for arm64.
func (a Arch) kernelFor(kernel, dir string) (string, error) {
	got, compressed, err := kernelArch(kernel)
	switch {
	case err != nil && a.Name == DefaultArch:
		return kernel, nil
	case err != nil:
		return "", fmt.Errorf("image: kernel %w", err)
	case got.Name != a.Name:
		return "", fmt.Errorf("image: kernel %s is for %s; the image is %s", kernel, got.Name, a.Name)
	case !compressed:
		return kernel, nil
	}
	in, err := os.Open(kernel)
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(bufio.NewReader(in))
	if err != nil {
		return "", fmt.Errorf("image: kernel %s: %w", kernel, err)
	}
	zr.Multistream(false) // what follows the kernel (padding) is not kernel
	out := filepath.Join(dir, "linux")
	f, err := os.Create(out)
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	if _, err := io.Copy(f, zr); err != nil {
		f.Close()
		return "", fmt.Errorf("image: decompressing kernel %s: %w", kernel, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	return out, nil
}
