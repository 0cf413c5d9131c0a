#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs the spillway.ko tests inside a test VM, as root:
#
#   sh test/kmod/run-tests.sh [MODULE.ko]      (or SPILLWAY_KO=MODULE.ko)
#
# Loads the module once per case with the parameters the case needs (rmmod
# between), runs the case's program from test/kmod/build/ (make -C test/kmod),
# and prints TAP: "ok N - name", "not ok N - name", "# " diagnostics, the plan
# last.  Ends by checking dmesg for BUG, WARNING, Oops and leak lines.
# Exit status: 0 when every test passed.  Expects a VM of about 1 GiB
# (the memory-hog cases size themselves from MemAvailable); the swap case
# runs only when the VM has swap, and needs at least 512 MiB of it.
set -u

here=$(cd "$(dirname "$0")" && pwd)
bin=$here/build
ko=${1:-${SPILLWAY_KO:-}}

pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; }
check() { # check NAME COMMAND...: one test line from a command's status
	name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

load() {
	if out=$(insmod "$ko" "$@" 2>&1); then
		pass "insmod spillway.ko $*"
	else
		fail "insmod spillway.ko $*"
		echo "# $out"
		return 1
	fi
}

unload() {
	if out=$(rmmod spillway 2>&1); then
		pass "rmmod"
	else
		fail "rmmod"
		echo "# $out"
	fi
}

# shellcheck source=../include/meminfo.sh
. "$here/../include/meminfo.sh"

# within A B PCT: |A - B| <= PCT % of B
within() {
	d=$(($1 - $2))
	[ "$d" -lt 0 ] && d=$((-d))
	[ $((d * 100)) -le $(($2 * $3)) ]
}

run_case() { # run_case PROGRAM PARAMS...
	prog=$1
	shift
	t0=$(date +%s.%N)
	if load "$@"; then
		"$bin/$prog" || true
		unload
	fi
	echo "# $prog: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
}

case_memavailable() {
	pool_kb=$((256 * 1024))
	before=$(mem_available_settled_kb)
	load pool_mb=256 || return
	during=$(mem_available_settled_kb)
	check "pool_bytes is 256 MiB" test "$(cat /sys/class/misc/spillway/pool_bytes)" -eq $((pool_kb * 1024))
	check "MemAvailable fell by the pool size within 2 %" within $((before - during)) $pool_kb 2
	echo "# MemAvailable+pcp before ${before} KiB, with the pool ${during} KiB, delta $((before - during)) KiB for ${pool_kb} KiB"
	unload
	after=$(mem_available_settled_kb)
	check "rmmod gave the pool back within 2 %" within $((after - during)) $pool_kb 2
	echo "# after rmmod ${after} KiB, returned $((after - during)) KiB"
}

case_shortfall() {
	load pool_mb=4096 || return
	"$bin/shortfall" || true
	check "and in the kernel log" sh -c 'dmesg | grep -q "spillway: pool: asked for .* (memory short)"'
	dmesg | grep "spillway: pool: asked for" | sed 's/^/# /'
	unload
}

case_bad_params() {
	if insmod "$ko" watchdog_ms=5 2>/dev/null; then
		fail "insmod watchdog_ms=5 refused"
		rmmod spillway
	else
		pass "insmod watchdog_ms=5 refused"
	fi
	if insmod "$ko" watermark_warn_mb=10 watermark_critical_mb=20 2>/dev/null; then
		fail "insmod with critical above warn refused"
		rmmod spillway
	else
		pass "insmod with critical above warn refused"
	fi
}

# fold_tap PROGRAM LABEL STATUS < TAP: a program's numbered TAP folded into this
# suite as "LABEL: name" lines.  A skipped test fails (the device is there), and
# so do a short plan and a non-zero exit status; "1..0 # SKIP why" (the program
# could not run at all) is one skip.
fold_tap() {
	awk -v status="$3" -v label="$2" -v prog="$1" '
		/^1\.\.0 # SKIP/ { sub(/^1\.\.0 # SKIP */, ""); print "ok - " label " # SKIP " $0; skipped = 1; next }
		/^(not )?ok [0-9]+ / {
			n++
			line = $0
			sub(/^(not )?ok [0-9]+ (- )?/, "", line)
			sub(/ # SKIP/, " (skipped: must run here)", line)
			if ($1 == "ok" && !/# SKIP/) print "ok - " label ": " line
			else print "not ok - " label ": " line
			next
		}
		/^1\.\.[0-9]+$/ { plan = substr($0, 4); next }
		{ sub(/^# /, ""); print "# " prog ": " $0 }
		END {
			if (!skipped && (plan == "" || plan + 0 != n))
				print "not ok - " label ": " prog " ran its plan (" n " of " (plan == "" ? "no plan" : plan) ")"
			if (status != 0)
				print "not ok - " label ": " prog " exit status " status
		}'
}

# The shim's pool backend (test/shim/t_pool.c) and its loans for split placement
# (test/shim/t_loan.c), built by make -C shim, against the real module: the
# shim preloaded, the fake libcuda under it, a fresh pool of 128 MiB for each.
# Their TAP lines are folded into this suite's numbering.  Root runs them, so
# the device's group does not matter.
shim_program() { # shim_program PROGRAM LABEL
	root=$(cd "$here/../.." && pwd)
	tprog=$root/test/shim/build/$1
	shim=$root/shim/build/libspillway-cuda.so
	label=$2
	if [ ! -x "$tprog" ] || [ ! -f "$shim" ]; then
		fail "$label: $tprog and $shim built (make -C shim)"
		return
	fi
	load pool_mb=128 || return
	tout=$(LD_PRELOAD=$shim LD_LIBRARY_PATH=$root/test/shim/build "$tprog" 2>&1)
	status=$?
	unload
	echo "$tout" | fold_tap "$1" "$label" "$status"
}

case_shim_pool() {
	shim_program t_pool "shim pool backend"
	shim_program t_loan "shim pool loans"
}

# python/spillway's spill tier (memory.open_pool, pool_map, HostArena without
# CUDA) against the real module: test/python/pool_vm.py with the host's
# /usr/bin/python3 and python3-torch, a fresh pool of 64 MiB; afterwards the
# exit must have given its last arena back.  Importing torch takes 15 to 41 s
# under TCG, so by default only the 6.1 guest (bookworm's kernel, the one
# python3-torch ships with) runs it; SPILLWAY_PYTHON_POOL_KERNELS="6.1 6.12 7.2"
# runs it on more.
case_python_pool() {
	root=$(cd "$here/../.." && pwd)
	label="python/spillway pool path"
	py=${SPILLWAY_PYTHON:-/usr/bin/python3}
	kernels=${SPILLWAY_PYTHON_POOL_KERNELS:-6.1}
	if [ -n "${SPILLWAY_KERNEL:-}" ]; then
		case " $(echo "$kernels" | tr , ' ') " in
		*" $SPILLWAY_KERNEL "*) ;;
		*)
			pass "$label # SKIP runs on $kernels only: import torch takes 15 to 41 s under TCG (SPILLWAY_PYTHON_POOL_KERNELS)"
			return ;;
		esac
	fi
	if [ ! -x "$py" ]; then
		pass "$label # SKIP no $py in the guest"
		return
	fi
	load pool_mb=64 || return
	echo "# pool_vm.py: importing torch (15 to 41 s under TCG)..."
	t0=$(date +%s)
	tout=$(OMP_NUM_THREADS=1 "$py" "$root/test/python/pool_vm.py" 2>&1)
	status=$?
	echo "$tout" | fold_tap pool_vm.py "$label" "$status"
	case $tout in
	*"1..0 # SKIP"*) ;;
	*)
		check "$label: its exit gave the pool back (used_bytes 0, buffers 0)" \
			test "$(cat /sys/class/misc/spillway/used_bytes) $(cat /sys/class/misc/spillway/buffers)" = "0 0" ;;
	esac
	unload
	echo "# pool_vm.py: $(($(date +%s) - t0)) s"
}

# The udev rule gives the device to group spillway, mode 0660.  Bookworm's
# udevadm (252) has no "verify"; "udevadm test" parses the rule and applies it
# to the device.  It adds a group and touches /dev, so only inside the test VM.
case_udev() {
	rules=$here/../../udev/60-spillway.rules
	if [ "${SPILLWAY_VM:-}" != 1 ] || ! command -v udevadm >/dev/null; then
		pass "udev rule # SKIP needs the test VM and udevadm"
		return
	fi
	getent group spillway >/dev/null || groupadd --system spillway
	gid=$(getent group spillway | cut -d: -f3)
	mkdir -p /run/udev/rules.d
	cp "$rules" /run/udev/rules.d/
	load || return
	uout=$(udevadm test --action=add /sys/class/misc/spillway 2>&1)
	unload
	rm -f /run/udev/rules.d/60-spillway.rules
	case $uout in
	*"Setting permissions /dev/spillway, uid=0, gid=$gid, mode=0660"*)
		pass "udev rule sets group spillway (gid $gid) and mode 0660" ;;
	*)
		fail "udev rule sets group spillway (gid $gid) and mode 0660"
		echo "$uout" | grep -i 'spillway\|error' | sed 's/^/# /' ;;
	esac
}

case_dmesg() {
	# The lost case loses 64 pages to a pipe on purpose, and the module says so.
	bad=$(dmesg | grep -E 'BUG|WARNING|Oops|general protection|leak|still referenced|list_del corruption|refcount_t' |
		grep -v -e 'module verification failed' -e 'spillway: pool: 64 pages still referenced at release, not reused')
	if [ -z "$bad" ]; then
		pass "dmesg has no BUG, WARNING, Oops or leak line"
	else
		fail "dmesg has no BUG, WARNING, Oops or leak line"
		echo "$bad" | sed 's/^/# /'
	fi
}

main() {
	if [ -z "$ko" ] || [ ! -f "$ko" ]; then
		fail "module file given (${ko:-none}; pass it as \$1 or SPILLWAY_KO)"
		return
	fi
	if [ ! -x "$bin/hog" ]; then
		fail "test programs built (make -C test/kmod)"
		return
	fi
	echo "# kernel $(uname -r), module $ko"
	start=$(date +%s)
	dmesg -C
	case_memavailable
	case_shortfall
	case_bad_params
	run_case buffer pool_mb=64
	run_case pool pool_mb=64 user_limit_mb=8
	run_case restore pool_mb=32 watchdog_ms=10
	run_case pin pool_mb=64 test_ioctls=1
	run_case badioctl pool_mb=16
	run_case events
	run_case hog pool_mb=128 pool_floor_mb=32 watchdog_ms=50
	run_case oom pool_mb=256 pool_floor_mb=16 watchdog_ms=60000
	run_case oomrace pool_mb=384 watchdog_ms=60000
	run_case wake
	run_case listids pool_mb=64
	run_case lost pool_mb=64 regrow_ms=1000 watchdog_ms=50
	run_case suspect pool_mb=256 watchdog_ms=50
	run_case share pool_mb=64
	run_case loan pool_mb=128 user_limit_mb=96 watchdog_ms=100 regrow_ms=500
	case_shim_pool
	case_python_pool
	if [ "$(wc -l </proc/swaps)" -gt 1 ]; then
		run_case swap watermark_warn_mb=2 watermark_critical_mb=1 swap_warn_mb=1048576 \
			swap_rate_warn=0 swap_rate_critical=64 watchdog_ms=100
	else
		pass "swap signals # SKIP the VM has no swap (run-vm.mjs --swap MB)"
	fi
	case_udev
	case_dmesg
	echo "# run-tests.sh: $(($(date +%s) - start)) s"
}

# Numbers the results across all programs and ends with the plan.
main 2>&1 | awk '
	/^ok - / { n++; print "ok " n substr($0, 3); fflush(); next }
	/^not ok - / { n++; failed++; print "not ok " n substr($0, 7); fflush(); next }
	/^#/ { print; fflush(); next }
	{ print "# " $0; fflush() }
	END { print "1.." n; exit failed ? 1 : 0 }'
