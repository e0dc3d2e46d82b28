package cli

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddybroker/eddy/appliance/device"
	"github.com/eddybroker/eddy/appliance/image"
)

func newImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build flashable eddy disk images and push them to running boxes (docs/appliance.md)",
	}
	cmd.AddCommand(newImageBuildCmd(), newImageConfigCmd(), newImagePushCmd(g))
	return cmd
}

func newImageBuildCmd() *cobra.Command {
	var (
		configFile, out, initBin, kernel, modules, version string
		arch, sysroot                                      string
		espMiB                                             int64
	)
	cmd := &cobra.Command{
		Use:   "build --config DEVICE.yaml -o eddy.img",
		Short: "Build a raw GPT disk image that boots into eddy",
		Long: `Build a raw GPT disk image from a device config (firmware-config/README.md):
an EFI system partition with systemd-boot, a unified kernel image for update
slots A and B (Debian's kernel, and an initramfs whose /init is eddy), the
device config as /eddy/device.yaml, and an ext4 data partition.

Needs Debian's linux-image-amd64, systemd-boot-efi, binutils, dosfstools,
mtools and e2fsprogs (make image installs them), and no root. The same
inputs give the same bytes. Write the image to a disk with dd, or boot it
under qemu (docs/appliance.md).

--arch arm64 builds an image for 64-bit ARM boards with UEFI: /init must
then be a static linux/arm64 eddy (--init), and the kernel, its modules,
the stub and the boot loader come from Debian's arm64 packages extracted
under --sysroot (make image-deps-arm64 puts them in bin/arm64-root, with
depmod's modules.dep); the UKI is written with an objcopy that knows arm64
PE files (binutils-aarch64-linux-gnu on amd64). make image-arm64 does it all.`,
		Example: `  eddy image build --config firmware-config/examples/qemu.yaml -o eddy.img
  make image
  eddy image build --arch arm64 --sysroot bin/arm64-root --init bin/eddy-linux-arm64 \
    --config firmware-config/examples/qemu.yaml -o eddy-arm64.img
  make image-arm64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			cfg, yml, err := device.Load(configFile)
			if err != nil {
				return err
			}
			a, err := image.ArchFor(arch)
			if err != nil {
				return err
			}
			if initBin == "" {
				if runtime.GOOS != "linux" || runtime.GOARCH != a.Name {
					return fmt.Errorf("--init: this eddy is for %s/%s; give a static linux/%s eddy for the %s image (GOOS=linux GOARCH=%s CGO_ENABLED=0 go build ./cmd/eddy)",
						runtime.GOOS, runtime.GOARCH, a.Name, a.Name, a.Name)
				}
				if initBin, err = os.Executable(); err != nil {
					return err
				}
			}
			if kernel != "" && modules == "" {
				return fmt.Errorf("--modules: give the /lib/modules/<version> directory of %s", kernel)
			}
			if version == "" {
				version = Version
			}
			res, err := image.Build(cmd.Context(), image.Options{
				Config: cfg, ConfigYAML: yml, Arch: a.Name, Sysroot: sysroot, Init: initBin, Kernel: kernel, Modules: modules,
				Version: version, ESPSize: espMiB << 20, Output: out,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d MiB, %s (EFI partition with slots a and b, UKI %.1f MB, initramfs %.1f MB; %d modules: %v) in %s\n",
				out, res.Size>>20, a.Name, float64(res.UKISize)/1e6, float64(res.InitramfsSize)/1e6, len(res.Modules), res.Modules, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "device config (YAML; firmware-config/README.md)")
	f.StringVarP(&out, "output", "o", "eddy.img", "image file to write")
	f.StringVar(&arch, "arch", image.DefaultArch, "architecture of the image: "+strings.Join(image.Arches(), " or "))
	f.StringVar(&sysroot, "sysroot", "", "where Debian's kernel, modules and systemd-boot-efi for --arch are (e.g. bin/arm64-root; default: this machine's /)")
	f.StringVar(&initBin, "init", "", "eddy binary to run as /init: static linux/<arch>, CGO_ENABLED=0 (default: this eddy, when it is for --arch)")
	f.StringVar(&kernel, "kernel", "", "kernel to boot (default: the newest <sysroot>/boot/vmlinuz-* for --arch)")
	f.StringVar(&modules, "modules", "", "the kernel's module directory (default: <sysroot>/lib/modules/<its version>)")
	f.StringVar(&version, "version", "", "image version (default: this eddy's version)")
	f.Int64Var(&espMiB, "esp-mib", image.DefaultESPSize>>20, "EFI system partition size in MiB")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newImageConfigCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "config IMAGE --config DEVICE.yaml",
		Short: "Write a device's config into a built image",
		Long: `Write a device config into an already-built image (its EFI partition's
/eddy/device.yaml), so one image serves a fleet: build once, then give each
box its node id, addresses and secrets before flashing it. No root needed.

The config must fit the image: its kernel.modules must be in the image's
initramfs and its data.size must be the image's data partition size; the
kernel command line is part of the image and is not changed.`,
		Example: `  eddy image config eddy.img --config firmware-config/examples/devices/three-box/box2.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, yml, err := device.Load(configFile)
			if err != nil {
				return err
			}
			if err := image.WriteConfig(cmd.Context(), args[0], cfg, yml); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: device config %s written (node %d, %s)\n", args[0], configFile, cfg.Node.NodeID, cfg.Network.Hostname)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "device config (YAML; firmware-config/README.md)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
