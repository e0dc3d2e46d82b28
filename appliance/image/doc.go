// Package image builds eddy's flashable disk image from a device config
// (appliance/device): a raw GPT disk with an EFI system partition and an
// ext4 data partition. The EFI partition holds systemd-boot, one unified
// kernel image (UKI: Debian's kernel, the kernel command line and an
// initramfs whose /init is the eddy binary) per update slot, A and B, and
// the device config as /eddy/device.yaml.
//
// It runs without root and without loop devices: the initramfs and GPT
// are written here in Go, the FAT and ext4 file systems by mkfs.fat,
// mtools and mke2fs into plain files, the UKI by objcopy onto systemd's
// stub. Every input that would make output vary between runs (clock,
// random GUIDs and serials, directory order) is fixed, so the same inputs
// give the same bytes.
//
// Images are for amd64 (the default) or arm64 (Arch, arch.go): the
// /init machine, the stub, the boot loader and the kernel must agree, and
// the kernel, modules, stub and boot loader may come from a sysroot where
// Debian's packages for the other architecture were unpacked. arm64
// kernels go into the UKI decompressed: systemd 252's stub needs a PE.
//
// It does not boot anything (appliance/boot does, inside the image) and
// does not talk to a running box.
package image
