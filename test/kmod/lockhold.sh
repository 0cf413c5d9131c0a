#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Measures pool lock hold times for a multi-GiB buffer (issue 14 A), inside
# a test VM with several GiB; prints the figures, asserts nothing:
#
#   node test/vm/run-vm.mjs --kernel 6.1 --mem 6144 -- \
#       sh test/kmod/lockhold.sh MODULE.ko [POOL_MB]
#
# The module is loaded with test_ioctls=1, which turns on its debugfs
# timing (spillway/timing).  One buffer takes the whole pool; it is
# allocated, mapped, touched and released, and the longest pool lock hold,
# mmap and release of each step are printed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ko=$1
pool_mb=${2:-4096}
t0=$(date +%s.%N)
insmod "$ko" pool_mb="$pool_mb" test_ioctls=1 watchdog_ms=1000
echo "# kernel $(uname -r), pool $(($(cat /sys/class/misc/spillway/pool_bytes) >> 20)) MiB," \
	"loaded in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
"$here/build/lockhold"
rmmod spillway
