#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Measures ALLOC latency with cgroup shares (test/kmod/sharebench.c) inside a
# test VM; prints the figures, asserts nothing:
#
#   node test/vm/run-vm.mjs --kernel 6.1 -- sh test/kmod/sharebench.sh MODULE.ko
set -eu
here=$(cd "$(dirname "$0")" && pwd)
insmod "$1" pool_mb=64 test_ioctls=1
echo "# kernel $(uname -r)"
"$here/build/sharebench"
rmmod spillway
