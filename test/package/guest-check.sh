#!/bin/sh
# Runs in the booted trixie image for test/package/boot.test.ts, as the oneshot unit
# spillway-boot-check.service after multi-user.target. Prints @@BEGIN/@@END cases (vm-cases.sh) to
# /dev/ttyS1, a serial port of its own (the console on ttyS0 carries systemd's and the kernel's
# lines), then powers off. The phase comes from the kernel command line: spillway_test.phase=
#   installed: the pool, the device node, the service after a boot; then `spillway uninstall --purge`
#   removed:   nothing left after a reboot (the initramfs uninstall rebuilt: the test reads it from the disk)
exec >/dev/ttyS1 2>&1
. /usr/local/lib/spillway-test/vm-cases.sh
phase=$(sed -n 's/.*spillway_test\.phase=\([a-z]*\).*/\1/p' /proc/cmdline)
rel=$(uname -r)
meminfo() { sync; echo 3 > /proc/sys/vm/drop_caches; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; }
echo "@@PHASE $phase $(cut -d' ' -f1 /proc/uptime)"
case_ kernel uname -r
# "kmsg " in front: the test drops lines that start like kernel console lines.
case_ boot-order sh -c "dmesg | grep -E 'spillway|Run /init as init process|EXT4-fs \(vda\): mounted|systemd\[1\]: systemd [0-9]' | sed 's/^/kmsg /'"
case_ module sh -c 'lsmod | grep "^spillway " || true'
# udev applies the rule's GROUP when it handles the coldplug "add" after the switch from the
# initramfs (which has no spillway group), asynchronously: multi-user.target does not wait for it.
# Under slub_debug the check once came first and saw root:root.
case_ dev-node sh -c 'udevadm settle --timeout=120; stat -c "%A %U %G" /dev/spillway 2>&1 || true'
case_ unit-active systemctl is-active spillway-watch.service
case_ unit-enabled systemctl is-enabled spillway-watch.service
# What DKMS built and installed (dkms status itself takes about a minute under TCG).
case_ dkms sh -c "ls -d /var/lib/dkms/spillway /lib/modules/$rel/updates/dkms/spillway.ko* 2>/dev/null; true"
case_ etc-files sh -c 'ls /etc/modprobe.d/spillway.conf /etc/udev/rules.d/60-spillway.rules /etc/systemd/system/spillway-watch.service /etc/spillway 2>/dev/null; grep -x spillway /etc/initramfs-tools/modules; true'
case_ group sh -c 'getent group spillway || true'
if [ "$phase" = installed ]; then
	case_ sysfs sh -c 'for a in pool_bytes requested_bytes used_bytes; do echo "$a $(cat /sys/class/misc/spillway/$a)"; done'
	case_ status spillway status --json
	case_ journal journalctl -b -u spillway-watch.service -o cat --no-pager
	systemctl stop spillway-watch.service
	case_ meminfo meminfo
	case_ uninstall spillway uninstall --purge
	case_ uninstall-again spillway uninstall --purge
else
	case_ meminfo meminfo
fi
echo "@@DONE $(cut -d' ' -f1 /proc/uptime)"
# The UART drains slowly under TCG: give it time before power-off.
sleep 2
systemctl poweroff --no-block
