#!/bin/sh
# Builds (once) the Debian 13 "trixie" system that test/package/boot.test.ts installs the package
# into and boots: systemd, Debian's kernel and its headers, initramfs-tools, dkms, nodejs. Cached as
# a tar under $SPILLWAY_CACHE/trixie/, keyed by mmdebstrap's arguments; prints the tar's path last.
#   sh test/package/trixie-image.sh
set -eu
cache=${SPILLWAY_CACHE:-$HOME/.cache/spillway}/trixie
mirror=${SPILLWAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=systemd,systemd-sysv,udev,kmod,initramfs-tools,zstd,linux-image-amd64,linux-headers-amd64,dkms,nodejs,e2fsprogs,passwd
# MODULES=list with the two modules a virtio disk with ext4 needs keeps update-initramfs short,
# which matters in the guest (uninstall rebuilds the initramfs under TCG).
hooks='echo spillway-test > "$1/etc/hostname"
echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1/etc/fstab"
sed -i "s/^MODULES=.*/MODULES=list/" "$1/etc/initramfs-tools/initramfs.conf"
printf "virtio_blk\next4\n" >> "$1/etc/initramfs-tools/modules"
chroot "$1" update-initramfs -u -k all'
key=$(printf '%s\n%s\n' "$include" "$hooks" | sha256sum | cut -c1-12)
tar="$cache/trixie-$key.tar"
if [ -s "$tar" ]; then
	echo "trixie image: cached ($(du -m "$tar" | cut -f1) MB)" >&2
	echo "$tar"
	exit 0
fi
mkdir -p "$cache"
# The lists stay in the image: the test resolves the package's dependencies against them.
echo "trixie image: mmdebstrap from $mirror: about 160 packages, an image of about 800 MB (2 to 4 minutes on 2 quiet cores)" >&2
start=$(date +%s)
rc="$cache/mmdebstrap.rc"
{
	mmdebstrap --variant=minbase --format=tar --skip=cleanup/apt/lists --include="$include" \
		--customize-hook="$hooks" trixie "$tar.part" "$mirror" 2>&1
	echo $? > "$rc"
} | sed -u -n 's/^I: /trixie image: /p' >&2
[ "$(cat "$rc")" = 0 ] && [ -s "$tar.part" ] || { echo "trixie image: mmdebstrap failed (exit $(cat "$rc"))" >&2; exit 1; }
mv "$tar.part" "$tar"
echo "trixie image: built in $(($(date +%s) - start)) s, $(du -m "$tar" | cut -f1) MB" >&2
echo "$tar"
