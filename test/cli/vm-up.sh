#!/bin/sh
# Runs as root inside a 6.1 VM for test/cli/up-vm.test.ts: `spillway up` from a checkout (make,
# insmod, watch in the background). install and uninstall are proven from the Debian package by
# booting a whole Debian system: test/package/boot.test.ts.
# Writes land in the guest's tmpfs overlay, never on the host. Each case prints
#   @@BEGIN name / its output / @@END name EXIT-STATUS
# Needs SPILLWAY_KERNEL_DIR (the harness's cache directory of this kernel).
S="node cli/bin/spillway.js"
. test/cli/vm-cases.sh
rel=$(uname -r)

# The kernel's modules and headers where a Debian host keeps them, as linux-image and
# linux-headers would install them (a bind mount: writes still go to the overlay).
mkdir -p "/lib/modules/$rel"
mount --bind "$(readlink -f "$SPILLWAY_KERNEL_DIR/modules")" "/lib/modules/$rel"
ln -sfn "$(readlink -f "$SPILLWAY_KERNEL_DIR/headers")" "/lib/modules/$rel/build"
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
