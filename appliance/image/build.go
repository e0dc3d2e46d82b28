package image

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eddybroker/eddy/appliance/device"
	"github.com/eddybroker/eddy/appliance/slots"
)

// Where things are in the image. appliance/boot reads the same names.
const (
	// ESPName and DataName are the GPT partition names boot looks for.
	ESPName  = "EDDY-ESP"
	DataName = "eddy-data"
	// ConfigPath is the device config on the EFI partition (FAT, so a
	// flashing station can replace it with mtools, without root).
	ConfigPath = "eddy/device.yaml"
	// InitramfsConfig is the device config built into the initramfs,
	// used when the EFI partition has none.
	InitramfsConfig = "etc/eddy/device.yaml"
	// LoadOrder lists the initramfs' modules, one file name a line, in
	// the order they must be loaded.
	LoadOrder = "lib/modules/load-order"
	// DefaultESPSize holds systemd-boot and two UKIs of about 25 MB each,
	// with room for bigger kernels.
	DefaultESPSize = 256 << 20
	// Debian's paths for the amd64 boot loader and UKI stub
	// (systemd-boot-efi); Arch.Stub and Arch.Bootloader give every
	// architecture's.
	DefaultStub       = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	DefaultBootloader = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
)

// platformModules are added when the kernel has them: the ACPI power
// button and evdev, through which boot reads it, and efivarfs, through
// which updates talk to the boot loader.
var platformModules = []string{"button", "evdev", "efivarfs"}

// epoch is the time stamped on every file of the image: 1980-01-01, the
// FAT epoch, so nothing depends on when or where the image was built.
const epoch = 315532800

// Options are a build's inputs. The same inputs give the same bytes.
type Options struct {
	// Config is the parsed device config; ConfigYAML its file, written
	// as is (comments kept) to the EFI partition and the initramfs.
	Config     device.Config
	ConfigYAML []byte
	// Arch is the architecture the image is for: amd64 (the default)
	// or arm64 (Arches).
	Arch string
	// Sysroot is where the defaults of Kernel, Modules, Stub and
	// Bootloader are looked for: "" is this machine; a directory where
	// Debian's packages for Arch were extracted is another (bin/arm64-root
	// from make image-deps-arm64).
	Sysroot string
	// Init is the eddy binary to run as /init: a static linux ELF for
	// Arch (CGO_ENABLED=0).
	Init string
	// Kernel is the kernel (vmlinuz); Modules its /lib/modules/<version>
	// directory. Their versions must match. Both default to the newest
	// Sysroot/boot/vmlinuz-* for Arch (KernelIn).
	Kernel  string
	Modules string
	// Stub and Bootloader default to Debian's systemd-boot-efi files for
	// Arch under Sysroot.
	Stub       string
	Bootloader string
	// Version is the image version shown by the boot loader and eddy.
	Version string
	// ESPSize is the EFI partition's size; 0 means DefaultESPSize.
	ESPSize int64
	// Output is the image file to write (replaced atomically).
	Output string
}

// Result describes a built image.
type Result struct {
	Size          int64    // bytes of the image file (sparse: less is allocated)
	UKISize       int64    // bytes of one slot's unified kernel image
	InitramfsSize int64    // bytes of the compressed initramfs
	Modules       []string // modules in the initramfs, in load order
}

// KernelFor returns this machine's newest amd64 /boot/vmlinuz-* and its
// module directory (KernelIn for other architectures and roots).
func KernelFor() (kernel, modules string, err error) {
	return KernelIn(DefaultArch, "")
}

var digits = regexp.MustCompile(`\d+|\D+`)

// compareVersions orders 6.1.0-9 before 6.1.0-10 (for slices.SortFunc).
func compareVersions(a, b string) int {
	pa, pb := digits.FindAllString(a, -1), digits.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil && na != nb {
			return cmp.Compare(na, nb)
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(pa), len(pb))
}

// Build writes the image.
func Build(ctx context.Context, o Options) (Result, error) {
	var res Result
	arch, err := o.resolve()
	if err != nil {
		return res, err
	}
	if o.ESPSize == 0 {
		o.ESPSize = DefaultESPSize
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if err := checkInit(o.Init, arch); err != nil {
		return res, err
	}
	for _, f := range []string{o.Kernel, o.Stub, o.Bootloader} {
		if _, err := os.Stat(f); err != nil {
			return res, fmt.Errorf("image: %w (%s)", err, arch.deps)
		}
	}
	if _, err := arch.objcopy(); err != nil {
		return res, err
	}
	for _, tool := range []string{"mkfs.fat", "mcopy", "mmd", "mke2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			return res, fmt.Errorf("image: %s not found; install binutils, dosfstools, mtools and e2fsprogs (make image does)", tool)
		}
	}
	dataSize, err := o.Config.DataSize()
	if err != nil {
		return res, fmt.Errorf("image: data.size: %w", err)
	}
	work, err := os.MkdirTemp(filepath.Dir(o.Output), ".eddy-image-*")
	if err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(work)
	// A gzip-compressed kernel (Debian's unsigned arm64 ones) goes into
	// the UKI decompressed: the stub needs a PE file.
	if o.Kernel, err = arch.kernelFor(o.Kernel, work); err != nil {
		return res, err
	}

	// Initramfs: eddy as /init, the modules, the build-time device config.
	mods, err := resolveModules(o.Modules, o.Config.Modules())
	if err != nil {
		return res, err
	}
	for _, name := range platformModules {
		more, err := resolveModules(o.Modules, []string{name})
		if err != nil {
			continue
		}
		for _, m := range more {
			if !slices.ContainsFunc(mods, func(x module) bool { return x.Name == m.Name }) {
				mods = append(mods, m)
			}
		}
	}
	initBin, err := os.ReadFile(o.Init)
	if err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	entries := []cpioEntry{
		{Name: "boot", Mode: modeDir | 0o755},
		{Name: "data", Mode: modeDir | 0o755},
		{Name: "dev", Mode: modeDir | 0o755},
		{Name: "dev/console", Mode: modeChar | 0o600, Major: 5, Minor: 1},
		{Name: "dev/null", Mode: modeChar | 0o666, Major: 1, Minor: 3},
		{Name: "etc", Mode: modeDir | 0o755},
		{Name: "etc/eddy", Mode: modeDir | 0o755},
		{Name: InitramfsConfig, Mode: modeFile | 0o644, Data: o.ConfigYAML},
		{Name: "etc/eddy/version", Mode: modeFile | 0o644, Data: []byte(o.Version + "\n")},
		{Name: "init", Mode: modeFile | 0o755, Data: initBin},
		{Name: "lib", Mode: modeDir | 0o755},
		{Name: "lib/modules", Mode: modeDir | 0o755},
		{Name: "proc", Mode: modeDir | 0o755},
		{Name: "run", Mode: modeDir | 0o755},
		{Name: "sys", Mode: modeDir | 0o755},
		{Name: "tmp", Mode: modeDir | 0o1777},
	}
	var order strings.Builder
	for _, m := range mods {
		b, err := os.ReadFile(m.Path)
		if err != nil {
			return res, fmt.Errorf("image: module %s: %w", m.Name, err)
		}
		entries = append(entries, cpioEntry{Name: "lib/modules/" + m.Name + ".ko", Mode: modeFile | 0o644, Data: b})
		fmt.Fprintln(&order, m.Name+".ko")
		res.Modules = append(res.Modules, m.Name)
	}
	entries = append(entries, cpioEntry{Name: LoadOrder, Mode: modeFile | 0o644, Data: []byte(order.String())})
	initrd, err := initramfs(entries)
	if err != nil {
		return res, err
	}
	res.InitramfsSize = int64(len(initrd))
	// Written once, for both slots' UKIs.
	initrdFile := filepath.Join(work, "initrd")
	if err := os.WriteFile(initrdFile, initrd, 0o644); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}

	// The same UKI in both slots: the running one learns its slot from
	// the boot loader (LoaderEntrySelected), so an update is one file,
	// whichever slot it goes to.
	stage := filepath.Join(work, "esp")
	for _, d := range []string{"EFI/BOOT", slots.UKIDir, "loader", "eddy"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			return res, fmt.Errorf("image: %w", err)
		}
	}
	osrel := fmt.Sprintf("NAME=eddy\nID=eddy\nPRETTY_NAME=\"eddy %s\"\nVERSION_ID=%q\nIMAGE_ID=eddy\nIMAGE_VERSION=%q\n", o.Version, o.Version, o.Version)
	uki := filepath.Join(stage, slots.UKIDir, slots.EntryID(slots.Names[0]))
	if err := buildUKI(ctx, o.Stub, uki, []ukiSection{
		{Name: ".osrel", Data: []byte(osrel)},
		{Name: ".cmdline", Data: []byte(o.Config.Kernel.Cmdline + "\x00")},
		{Name: ".linux", File: o.Kernel},
		{Name: ".initrd", File: initrdFile},
	}); err != nil {
		return res, err
	}
	st, err := os.Stat(uki)
	if err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	res.UKISize = st.Size()
	if err := copyFile(uki, filepath.Join(stage, slots.UKIDir, slots.EntryID(slots.Names[1]))); err != nil {
		return res, err
	}
	if err := copyFile(o.Bootloader, filepath.Join(stage, arch.BootFile())); err != nil {
		return res, err
	}
	// Slot a is the default; an update boots the other slot once and
	// makes it the default when it proves itself (appliance/slots).
	if err := os.WriteFile(filepath.Join(stage, slots.LoaderConf), slots.LoaderConfFor(slots.Names[0]), 0o644); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stage, ConfigPath), o.ConfigYAML, 0o644); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	// What a per-device config may ask for: the modules in the initramfs
	// and the requested ones built into the kernel.
	have := slices.Clone(res.Modules)
	for _, m := range o.Config.Modules() {
		if m = modName(m); !slices.Contains(have, m) {
			have = append(have, m)
		}
	}
	if err := os.WriteFile(filepath.Join(stage, ModulesPath), []byte(strings.Join(have, "\n")+"\n"), 0o644); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}

	// The disk: 1 MiB for the GPT and alignment, the ESP, the data
	// partition, 1 MiB for the backup GPT.
	const mib = 1 << 20
	espSize := alignUp64(o.ESPSize, mib)
	total := mib + espSize + alignUp64(dataSize, mib) + mib
	tmp := filepath.Join(work, "disk.img")
	f, err := os.Create(tmp)
	if err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(total); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	espFirst := int64(mib / sectorSize)
	dataFirst := espFirst + espSize/sectorSize
	dataLast := (total-mib)/sectorSize - 1
	seed := sha256.Sum256(o.ConfigYAML)
	serial := fmt.Sprintf("%X", seed[:4])
	// FAT32 needs 65525 clusters or more, or readers take it for FAT16;
	// mkfs.fat's default cluster size falls short of that below 512 MiB.
	spc := int64(8)
	for spc > 1 && espSize/sectorSize/spc < 70000 {
		spc /= 2
	}
	if err := tool(ctx, "mkfs.fat", "--invariant", "-i", serial, "-F", "32", "-s", strconv.FormatInt(spc, 10), "-h", strconv.FormatInt(espFirst, 10),
		"-n", "EDDY-ESP", "--offset", strconv.FormatInt(espFirst, 10), tmp, strconv.FormatInt(espSize/1024, 10)); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	fsUUID := derivedGUID(seed[:], "data-fs").String()
	if err := tool(ctx, "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L", DataName, "-U", fsUUID, "-m", "0",
		"-E", "root_owner=0:0,hash_seed="+fsUUID+",offset="+strconv.FormatInt(dataFirst*sectorSize, 10),
		tmp, strconv.FormatInt((dataLast-dataFirst+1)*sectorSize/4096, 10)); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	// Files in a fixed order with fixed times, directories first.
	img := fmt.Sprintf("%s@@%d", tmp, espFirst*sectorSize)
	var dirs, files []string
	err = filepath.WalkDir(stage, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == stage {
			return err
		}
		rel, _ := filepath.Rel(stage, p)
		if d.IsDir() {
			dirs = append(dirs, rel)
		} else {
			files = append(files, rel)
		}
		return os.Chtimes(p, time.Unix(epoch, 0), time.Unix(epoch, 0))
	})
	if err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	slices.Sort(dirs)
	slices.Sort(files)
	for _, d := range dirs {
		if err := tool(ctx, "mmd", "-i", img, "::/"+d); err != nil {
			return res, fmt.Errorf("image: %w", err)
		}
	}
	for _, fl := range files {
		if err := tool(ctx, "mcopy", "-m", "-i", img, filepath.Join(stage, fl), "::/"+fl); err != nil {
			return res, fmt.Errorf("image: %w", err)
		}
	}
	// The GPT goes last: nothing above may overwrite it.
	if err := writeGPT(f, total/sectorSize, derivedGUID(seed[:], "disk"), []gptPart{
		{Type: guidESP, ID: derivedGUID(seed[:], "esp"), First: espFirst, Last: dataFirst - 1, Name: ESPName},
		{Type: guidLinux, ID: derivedGUID(seed[:], "data"), First: dataFirst, Last: dataLast, Name: DataName},
	}); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(tmp, o.Output); err != nil {
		return res, fmt.Errorf("image: %w", err)
	}
	res.Size = total
	return res, nil
}

// tool runs one of the file system tools (mkfs.fat, mke2fs, mtools) with
// the clock and time zone fixed, so what it writes does not depend on when
// or where it ran.
func tool(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "SOURCE_DATE_EPOCH="+strconv.Itoa(epoch), "E2FSPROGS_FAKE_TIME="+strconv.Itoa(epoch), "MTOOLS_SKIP_CHECK=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(b))
	}
	return nil
}

func alignUp64(n, a int64) int64 { return (n + a - 1) / a * a }

// checkInit refuses an /init the kernel cannot run: not an ELF, for
// another machine than arch's, or dynamically linked (the initramfs has
// no libc).
func checkInit(path string, arch Arch) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("image: init binary %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != arch.ELF {
		return fmt.Errorf("image: init binary %s is for %s; the image is %s (build eddy with GOOS=linux GOARCH=%s CGO_ENABLED=0)", path, f.Machine, arch.Name, arch.Name)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("image: init binary %s is dynamically linked; build it with CGO_ENABLED=0 (make image does)", path)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}
