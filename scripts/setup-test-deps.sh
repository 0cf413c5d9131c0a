#!/bin/sh
# Makes sure the tools npm test needs are on this machine. As root it installs the missing Debian
# packages; as anyone else it names them and the command that installs them, and stops. Then it
# fills the download cache with progress (prepare-test-cache.sh).
set -e
here=$(dirname "$0")
# command -> Debian package that provides it
needs="qemu-system-x86_64:qemu-system-x86 busybox:busybox-static modinfo:kmod pahole:dwarves
cpio:cpio zstd:zstd xz:xz-utils make:make gcc:gcc udevadm:udev dkms:dkms mmdebstrap:mmdebstrap
perl:perl update-initramfs:initramfs-tools systemd-analyze:systemd clang-format:clang-format
sparse:sparse lintian:lintian mkfs.ext4:e2fsprogs debugfs:e2fsprogs dpkg-shlibdeps:dpkg-dev unshare:util-linux"
missing=""
for pair in $needs; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
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
if [ -z "$missing" ]; then
	exec sh "$here/prepare-test-cache.sh"
fi
if [ "$(id -u)" != 0 ]; then
	echo "spillway tests need these Debian packages:$missing" >&2
	echo "Install them as root:  apt-get install -y$missing" >&2
	exit 1
fi
echo "Installing the Debian packages the tests need (apt-get install --no-install-recommends):$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# apt's own lines say how much it downloads, and each package as it is set up.
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 $missing |
	grep -E '^(Need to get|After this operation|Setting up)' || true
for pair in $needs; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || { echo "setup-test-deps: ${pair%%:*} is still missing (package ${pair#*:})" >&2; exit 1; }
done
exec sh "$here/prepare-test-cache.sh"
