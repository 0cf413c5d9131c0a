#!/bin/sh
# For test/package/boot.test.ts: installs the package into an unpacked trixie image natively (chroot
# + apt, not in the emulated guest, where a DKMS build takes minutes), runs `spillway install` for
# the image's kernel and adds the boot-check unit; or, once the disk image is made from ROOT,
# removes the package again with apt purge (its prerm runs `spillway uninstall`). Prints
# @@BEGIN/@@END cases (vm-cases.sh).
#   sh test/package/image-install.sh install ROOT DEB POOL
#   sh test/package/image-install.sh purge ROOT
set -u
action=$1 root=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/vm-cases.sh"
rel=$(ls "$root/lib/modules" | head -1)
echo "@@KERNEL $rel"
# In a mount namespace of its own, so the mounts go away with it. /run/systemd/system tells
# spillway install that systemd manages the system; SYSTEMD_OFFLINE=1 makes systemctl enable write
# the links without asking a running systemd.
in_chroot() {
	unshare -m sh -c '
		root=$1; shift
		mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" && mount --rbind /dev "$root/dev" &&
		mount -t tmpfs tmpfs "$root/run" && mkdir -p "$root/run/systemd/system" &&
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive SYSTEMD_OFFLINE=1 "$@"
	' in_chroot "$root" "$@"
}
if [ "$action" = purge ]; then
	case_ purge in_chroot apt-get purge -y spillway
	case_ after-purge in_chroot sh -c 'dpkg-query -W spillway 2>&1; getent group spillway; ls -d /usr/lib/spillway /usr/src/spillway-* /var/lib/dkms/spillway /etc/modprobe.d/spillway.conf /etc/systemd/system/multi-user.target.wants/spillway-watch.service 2>/dev/null; grep -x spillway /etc/initramfs-tools/modules; true'
	exit 0
fi
deb=$3 pool=$4
debname=$(basename "$deb")
cp "$deb" "$root/tmp/"
mkdir -p "$root/usr/local/lib/spillway-test"
cp "$here/guest-check.sh" "$here/../cli/vm-cases.sh" "$root/usr/local/lib/spillway-test/"
cp "$here/spillway-boot-check.service" "$root/etc/systemd/system/"
ln -sf ../spillway-boot-check.service "$root/etc/systemd/system/multi-user.target.wants/spillway-boot-check.service"
# Every dependency from Debian's archive alone: apt resolves the package against trixie's lists as
# if nothing were installed (the lists are in the image; nothing is downloaded).
case_ resolve in_chroot sh -c "apt-get install --simulate -o Dir::State::status=/dev/null /tmp/$debname | grep -E '^(Inst|E:)' | sed 's/ \[.*//'"
case_ apt-install in_chroot apt-get install -y --no-install-recommends "/tmp/$debname"
case_ which in_chroot sh -c 'command -v spillway; spillway --version'
case_ install in_chroot spillway install --pool "$pool" --kernel "$rel"
case_ install-again in_chroot spillway install --pool "$pool" --kernel "$rel"
case_ initramfs in_chroot sh -c "lsinitramfs /boot/initrd.img-$rel | grep -E 'spillway|modprobe.d'"
rm -f "$root/tmp/$debname"
