#!/bin/sh
# Runs as root inside a 6.1 VM for test/cli/install-vm.test.ts: `spillway up`, then a real
# `install`, `load` of the installed module, `uninstall`, with every command and file for real.
# Writes land in the guest's tmpfs overlay, never on the host. Each case prints
#   @@BEGIN name / its output / @@END name EXIT-STATUS
# Needs SPILLWAY_KERNEL_DIR (the harness's cache directory of this kernel).
S="node cli/bin/spillway.js"
. test/cli/vm-cases.sh
rel=$(uname -r)
initramfs_spillway() { lsinitramfs "/boot/initrd.img-$rel" | grep spillway; true; }

# The kernel's modules and headers where a Debian host keeps them, as linux-image and
# linux-headers would install them.
# A bind mount, not a symlink, so that mkinitramfs sees the usual paths; writes (dkms install,
# depmod) still go to the overlay.
mkdir -p "/lib/modules/$rel"
mount --bind "$(readlink -f "$SPILLWAY_KERNEL_DIR/modules")" "/lib/modules/$rel"
ln -sfn "$(readlink -f "$SPILLWAY_KERNEL_DIR/headers")" "/lib/modules/$rel/build"
mkdir -p /boot
cp "$SPILLWAY_KERNEL_DIR/root/boot/config-$rel" /boot/
# MODULES=list keeps update-initramfs to about 80 s under TCG (most: minutes); spillway still gets
# in through /etc/initramfs-tools/modules, which is what install writes.
sed -i 's/^MODULES=.*/MODULES=list/' /etc/initramfs-tools/initramfs.conf
mount -t cgroup2 none /sys/fs/cgroup
# Force `up` to build: a spillway.ko in the checkout would be used as it is.
rm -f kmod/*.ko kmod/*.o

case_ up-dry-run $S up --dry-run
case_ up $S up
case_ up-status $S status --json
case_ up-again $S up
case_ up-watch-log cat /run/spillway/watch.log
kill "$(cat /run/spillway/watch.pid)"
wait_for 20 sh -c '! test -f /run/spillway/watch.pid'
case_ up-unload $S unload

# Booted with systemd as far as install can tell; systemctl itself works offline in a chroot
# (enable/disable write the links; start, stop and daemon-reload are ignored there).
mkdir -p /run/systemd/system
case_ install $S install --pool 160M
case_ dkms-status dkms status -m spillway
case_ modprobe-conf cat /etc/modprobe.d/spillway.conf
case_ initramfs-modules cat /etc/initramfs-tools/modules
case_ initramfs-after-install initramfs_spillway
case_ unit-link readlink /etc/systemd/system/multi-user.target.wants/spillway-watch.service
case_ unit-verify systemd-analyze verify /etc/systemd/system/spillway-watch.service
case_ group getent group spillway
case_ install-again $S install --pool 160M

# udevd applies the installed rule when the module appears.
mkdir -p /run/udev
/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1
case_ load-installed $S load
wait_for 10 sh -c 'stat -c %G /dev/spillway | grep -qx spillway'
case_ dev-node stat -c '%A %U %G' /dev/spillway
case_ modinfo modinfo -n spillway

case_ uninstall $S uninstall --purge
case_ dkms-status-after dkms status -m spillway
case_ files-after sh -c "ls /etc/udev/rules.d/60-spillway.rules /etc/modprobe.d/spillway.conf \
/etc/systemd/system/spillway-watch.service /etc/systemd/system/multi-user.target.wants/spillway-watch.service \
/usr/src/spillway-* /lib/modules/$rel/updates/dkms/spillway.ko* 2>/dev/null; grep -x spillway /etc/initramfs-tools/modules; \
getent group spillway; lsmod | grep '^spillway '; true"
case_ initramfs-after-uninstall initramfs_spillway
case_ uninstall-again $S uninstall --purge
