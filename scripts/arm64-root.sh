#!/usr/bin/env bash
# arm64-root.sh ROOT: Debian's arm64 kernel (linux-image-arm64's current
# linux-image-<version>-arm64) and systemd-boot-efi extracted into ROOT,
# with depmod's modules.dep, for `eddy image build --arch arm64 --sysroot
# ROOT` (make image-deps-arm64 runs it).
#
# Nothing is installed and the machine's dpkg and apt state are not
# touched: apt runs with its own state in ROOT.apt (arm64 package lists of
# the mirrors in the machine's apt sources), `apt-get download` fetches the
# two .deb files and `dpkg-deb -x` unpacks them. Does nothing when ROOT is
# complete; remove ROOT (and ROOT.apt) to fetch again.
set -euo pipefail

root=${1:?usage: $0 ROOT}
root=$(realpath -m "$root") # apt takes relative Dir:: paths as relative to Dir
stamp=$root/.eddy-arm64-root
if [ -f "$stamp" ]; then
	exit 0
fi
for tool in apt-get apt-cache dpkg-deb depmod; do
	command -v "$tool" >/dev/null || { echo "$0: $tool not found (Debian's apt, dpkg and kmod)" >&2; exit 1; }
done

state=$root.apt
mkdir -p "$state/lists/partial" "$state/archives/partial" "$state/debs"
touch "$state/status"
apt=(-o "Dir::State=$state" -o "Dir::State::Lists=$state/lists" -o "Dir::State::status=$state/status"
	-o "Dir::Cache=$state" -o "Dir::Cache::archives=$state/archives"
	-o "APT::Architecture=arm64" -o "APT::Architectures=arm64"
	-o "Acquire::Languages=none" -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
	-o "Debug::NoLocking=1" -o "APT::Sandbox::User=$(id -un)")

echo "arm64 package lists (apt state in $state)"
apt-get "${apt[@]}" -qq update
kpkg=$(apt-cache "${apt[@]}" depends linux-image-arm64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-arm64\)$/\1/p' | head -1)
if [ -z "$kpkg" ]; then
	echo "$0: linux-image-arm64 names no linux-image-<version>-arm64 in the arm64 lists" >&2
	exit 1
fi
kver=${kpkg#linux-image-}
echo "downloading $kpkg and systemd-boot-efi:arm64"
(cd "$state/debs" && rm -f ./*.deb && apt-get "${apt[@]}" -qq download "$kpkg" systemd-boot-efi)

tmp=$root.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
for deb in "$state"/debs/*.deb; do
	dpkg-deb -x "$deb" "$tmp"
done
# The kernel package's postinst runs depmod; dpkg-deb -x does not.
depmod -b "$tmp" "$kver"
test -f "$tmp/boot/vmlinuz-$kver" -a -f "$tmp/lib/modules/$kver/modules.dep" \
	-a -f "$tmp/usr/lib/systemd/boot/efi/linuxaa64.efi.stub" -a -f "$tmp/usr/lib/systemd/boot/efi/systemd-bootaa64.efi"
(cd "$state/debs" && ls ./*.deb) | sed 's|^\./||' >"$tmp/.eddy-arm64-root"
rm -rf "$root"
mv "$tmp" "$root"
echo "$root: $(cat "$stamp" | tr '\n' ' ')($(du -sh "$root" | cut -f1))"
