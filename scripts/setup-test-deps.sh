#!/bin/sh
# Makes sure the tools npm test needs are on this machine. As root it installs the missing Debian
# packages; as anyone else it names them and the command that installs them, and stops.
set -e
# command -> Debian package that provides it
needs="qemu-system-x86_64:qemu-system-x86 busybox:busybox-static modinfo:kmod pahole:dwarves
cpio:cpio zstd:zstd xz:xz-utils make:make gcc:gcc udevadm:udev dkms:dkms mmdebstrap:mmdebstrap
perl:perl update-initramfs:initramfs-tools systemd-analyze:systemd clang-format:clang-format
sparse:sparse"
missing=""
for pair in $needs; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -f /usr/share/qemu/bios-256k.bin ] || [ -f /usr/share/seabios/bios-256k.bin ] || missing="$missing seabios"
# python/spillway's tests (test/python) need Debian's CPU torch and numpy (about 4.5 minutes to
# install on a 2-core machine). Optional for non-root users: those tests then skip and say why.
if ! /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		missing="$missing python3-torch python3-numpy"
	else
		echo "note: /usr/bin/python3 lacks torch or numpy: python/spillway's tests will be skipped" \
			"(as root: apt-get install -y python3-torch python3-numpy)" >&2
	fi
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "spillway tests need these Debian packages:$missing" >&2
	echo "Install them as root:  apt-get install -y$missing" >&2
	exit 1
fi
echo "Installing Debian packages the tests need:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
