#!/bin/sh
# Security checks of issue 7 item 5. Run by run-in-vm.sh as root in a test VM, with spillway loaded
# as pool_mb=32 user_limit_mb=8 test_ioctls=0 and /dev/spillway given to group spillway the way
# the udev rule does it. DEVMODE0 is the device's mode:owner:group before that chgrp.
# Users: 9901 and 9903 are members of group spillway, 9902 is not; setpriv (util-linux) switches.
set -u

here=$(cd "$(dirname "$0")" && pwd)
swctl=$here/build/swctl
sysfs=/sys/class/misc/spillway
gid=$(getent group spillway | cut -d: -f3)
member=9901 member2=9903 outsider=9902
tmp=$(mktemp -d)
chmod 0777 "$tmp"

as_user() { uid=$1 groups=$2; shift 2; setpriv --reuid="$uid" --regid="$uid" "--groups=$groups" --inh-caps=-all -- "$swctl" "$@"; }
as_member() { as_user $member "$gid" "$@"; }
as_member2() { as_user $member2 "$gid" "$@"; }
as_outsider() { setpriv --reuid=$outsider --regid=$outsider --clear-groups --inh-caps=-all -- "$swctl" "$@"; }
as_root_without_sys_admin() { setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin -- "$swctl" "$@"; }

# expect NAME WANT GOT
expect() {
	if [ "$3" = "$2" ]; then
		echo "ok - security: $1"
	else
		echo "not ok - security: $1"
		echo "# expected: $2"
		echo "#      got: $3"
	fi
}

# wait_for FILE: a holder wrote "PID FD..." there
wait_for() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
}

# --- the device node and sysfs ---
expect "the kernel creates /dev/spillway as a character device 0660 root:root (udev then sets the group)" \
	"character special file:660:root:root" "${DEVMODE0:-unknown}"
expect "/dev/spillway is 0660 root:spillway with the udev rule's group" \
	"660:root:spillway" "$(stat -c %a:%U:%G /dev/spillway)"
expect "no spillway sysfs attribute is writable by group or others" \
	"" "$(find $sysfs/ /sys/module/spillway/parameters/ -maxdepth 1 -type f -perm /022 | tr '\n' ' ')"
expect "the test_ioctls parameter is read-only (0444): it can not be switched on after load" \
	"444" "$(stat -c %a /sys/module/spillway/parameters/test_ioctls)"

# --- who may open ---
expect "a user outside group spillway can not open /dev/spillway (read-write or read-only)" \
	"EACCES EACCES" "$(as_outsider open) $(as_outsider open-ro)"

# --- what a member may do: allocate within user_limit_mb=8, nothing privileged ---
expect "a member allocates up to the 8 MiB per-user limit, gets EDQUOT past it (also for one 9 MiB buffer), may allocate again after a close, and gets EPERM for RESIZE and SET_WATERMARKS" \
	"OK 0 OK OK EDQUOT OK OK EDQUOT EPERM EPERM" \
	"$(as_member open version alloc:4M alloc:4M alloc:4k close:0 alloc:4M alloc:9M resize:64M wm:1M:1M)"
expect "TEST_PIN does not exist without test_ioctls=1: ENOTTY for a member and for root" \
	"ENOTTY ENOTTY" "$(as_member open pin | cut -d' ' -f2) $("$swctl" open pin | cut -d' ' -f2)"
expect "a member can not write the pool size or the watermarks in sysfs" \
	"EACCES EACCES EACCES" \
	"$(as_member write:$sysfs/pool_bytes:16777216 write:$sysfs/watermark_warn_mb:64 write:$sysfs/watermark_critical_mb:32)"

expect "8 threads of a member allocating 256 KiB buffers at once stop at the limit together: 8 MiB held, then EDQUOT" \
	"OK 8M:EDQUOT" "$(as_member open race:8:256k)"

# --- the limit is per user, across processes ---
rm -f "$tmp/hold1"
as_member open alloc:6M hold:"$tmp/hold1" >"$tmp/out1" &
wait_for "$tmp/hold1"
expect "the limit counts all of a user's processes: with 6 MiB held elsewhere, 4 MiB is EDQUOT and 2 MiB fits; another member still gets 4 MiB" \
	"OK EDQUOT OK | OK OK" "$(as_member open alloc:4M alloc:2M) | $(as_member2 open alloc:4M)"
rm -f "$tmp/hold1"
wait

# --- privilege is CAP_SYS_ADMIN, not uid 0 ---
pool_before=$(cat $sysfs/pool_bytes)
wm_before=$(cat $sysfs/watermark_warn_mb):$(cat $sysfs/watermark_critical_mb)
expect "root without CAP_SYS_ADMIN gets EPERM for RESIZE, SET_WATERMARKS and the sysfs pool_bytes and watermark writes" \
	"OK EPERM EPERM EPERM EPERM" \
	"$(as_root_without_sys_admin open resize:16M wm:64M:32M write:$sysfs/pool_bytes:16777216 write:$sysfs/watermark_warn_mb:64)"
expect "... and nothing changed (pool_bytes, watermarks)" \
	"$pool_before $wm_before" \
	"$(cat $sysfs/pool_bytes) $(cat $sysfs/watermark_warn_mb):$(cat $sysfs/watermark_critical_mb)"
expect "root with CAP_SYS_ADMIN may resize (control)" "OK OK" "$("$swctl" open resize:$pool_before)"

# --- a buffer is reachable only through its fd ---
rm -f "$tmp/hold2"
as_member open alloc:1M fill:0:SECRET-A cloexec:0 hold:"$tmp/hold2" >"$tmp/out2" &
wait_for "$tmp/hold2"
read -r pid fd <"$tmp/hold2"
expect "another member and a non-member can not open the owner's fd through /proc/$pid/fd/$fd" \
	"EACCES EACCES" "$(as_member2 openmap:/proc/$pid/fd/$fd) $(as_outsider openmap:/proc/$pid/fd/$fd)"
root_reopen=$("$swctl" openmap:/proc/$pid/fd/$fd)
expect "even root can not reopen the buffer by path (/proc/$pid/fd/$fd gives $root_reopen, not the data)" \
	"no" "$(case $root_reopen in OK:SECRET*) echo yes ;; *) echo no ;; esac)"
list=$(as_member2 open list | cut -d' ' -f2)
expect "LIST_BUFFERS as another member shows none of the owner's buffers (count:uids), root sees it" \
	"0: yes" "$list $("$swctl" open list | cut -d' ' -f2 | grep -q ":.*\b$member\b" && echo yes || echo no)"
rm -f "$tmp/hold2"
wait
expect "the owner's fd is O_CLOEXEC and a program it execs holds no dma-buf" \
	"OK OK OK OK OK" "$(cat "$tmp/out2")"
rm -f "$tmp/sock"
as_outsider recv:"$tmp/sock" >"$tmp/out3" &
# the receiver binds the socket before it listens; send retries connect() for 5 s after that
i=0
while [ ! -S "$tmp/sock" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sent=$(as_member open alloc:1M fill:0:PASSED send:"$tmp/sock":0)
wait
expect "the fd is the capability: passed over a unix socket, it maps the buffer even for a non-member (control)" \
	"OK OK OK OK | OK:PASSED" "$sent | $(cat "$tmp/out3")"

# --- freed memory carries nothing to the next user ---
res=$(as_member open alloc:8M fill:0:RESIDUE close:0 | cut -d' ' -f3)
scan=$("$swctl" open scan:RESIDUE | cut -d' ' -f2)
expect "a member's freed buffer leaves nothing behind: the next allocations of the pool read zero ($scan)" \
	"OK CLEAN" "$res ${scan%%:*}"

# --- bad input through sysfs: refused, nothing changes (root, CAP_SYS_ADMIN) ---
p=$sysfs/pool_bytes w=$sysfs/watermark_warn_mb c=$sysfs/watermark_critical_mb f=$sysfs/pool_floor_mb
state() { echo "$(cat $p) $(cat $w) $(cat $c) $(cat $f)"; }
before=$(state)
warn_mb=$(cat $w) crit_mb=$(cat $c)
too_much=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024 + 4096))
expect "sysfs writes of junk, negative, overflowing and out-of-range numbers fail (EINVAL, ERANGE for > 2^64) and change nothing" \
	"EINVAL EINVAL ERANGE EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL | $before" \
	"$("$swctl" "write:$p:abc" "write:$p:-1" "write:$p:99999999999999999999999" "write:$p:1e3" \
		"write:$p:$too_much" "write:$w:abc" "write:$w:$((crit_mb - 1))" \
		"write:$w:18446744073709551615" "write:$c:$((warn_mb + 1))" "write:$f:x" \
		"write:$f:18446744073709551615") | $(state)"
expect "sysfs writes of valid values work (pool_bytes in hex, the watermarks and floor as they were)" \
	"OK OK OK OK | $before" \
	"$("$swctl" "write:$p:$(printf '0x%x' "$(cat $p)")" "write:$w:$warn_mb" "write:$c:$crit_mb" \
		"write:$f:$(cat $f)") | $(state)"

# --- the test ioctl stays off ---
expect "root can not switch test_ioctls on at runtime, and VERSION says it is off" \
	"OK 0 EACCES 0" "$("$swctl" open version write:/sys/module/spillway/parameters/test_ioctls:1 version)"
rm -rf "$tmp"
