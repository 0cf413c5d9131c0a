# SPDX-License-Identifier: GPL-2.0
# Free-memory readings for the VM tests (sourced by test/kmod/run-tests.sh and
# test/reliability/run-in-vm.sh).

# MemAvailable plus the pages on per-cpu free lists, in KiB, after giving back
# what the kernel frees lazily: clean caches, and the empty slabs SLUB keeps on
# per-cpu partial lists.  Freed pages sit on the per-cpu free lists, missing
# from MemAvailable.
mem_available_kb() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for f in /sys/kernel/slab/*/shrink; do echo 1 >"$f"; done 2>/dev/null
	_avail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
	_pcp=$(awk '$1 == "count:" { s += $2 } END { print s + 0 }' /proc/zoneinfo)
	echo $((_avail + _pcp * $(getconf PAGESIZE) / 1024))
}

# A settled reading: right after insmod, rmmod or a stress run a guest of
# 1 GiB is 5-20 MiB short for a second or two (seen on 7.2: RCU callbacks,
# exiting processes, per-cpu lists draining), which made single readings miss
# a 2 % check.  Reads once a second until two readings differ by at most
# 256 KiB, at most 10 times, and prints the last.
mem_available_settled_kb() {
	_prev=$(mem_available_kb)
	_tries=0
	while [ $_tries -lt 10 ]; do
		sleep 1
		_cur=$(mem_available_kb)
		_diff=$((_cur - _prev))
		[ $_diff -lt 0 ] && _diff=$((-_diff))
		[ $_diff -le 256 ] && break
		_prev=$_cur
		_tries=$((_tries + 1))
	done
	echo "$_cur"
}
