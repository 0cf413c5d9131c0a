# Shared by run-in-vm.sh and oom-scenario.sh (sourced): TAP output and the kernel log check.

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }
diag() { echo "$*" | sed 's/^/# /'; }

# check NAME COMMAND...: one TAP line from the command's status
check() {
	name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# verdict NAME STATUS: one TAP line from the status of the test just run
verdict() { if [ "$2" = 0 ]; then ok "$1"; else not_ok "$1"; fi; }

# require_vm SCRIPT WHY: these scripts load modules and change the machine; only a test VM may
require_vm() {
	[ "${SPILLWAY_VM:-}" = 1 ] && return
	echo "$1: $2: run it in a test VM" >&2
	echo "  (node test/vm/run-vm.mjs --kernel 6.1 --mem 1024 --smp 2 -- sh $1)" >&2
	exit 2
}

dmesg_lines() { dmesg | wc -l; }

# Kernel log lines since line $1 that show a kernel bug, corruption or a leak.
dmesg_problems() {
	dmesg | tail -n +$(($1 + 1)) |
		grep -E 'BUG:|WARNING:|Oops|general protection|kmemleak|refcount_t|list_(add|del) corruption|UBSAN|KASAN|Bad page|page dumped because|soft lockup|still referenced|blocked for more than|leak' |
		head -n 20
}

# Numbers the "ok - " / "not ok - " lines read from stdin and ends with the plan; fails if one failed.
tap_number() {
	awk '
		/^(not )?ok - / { n++; sub(/^ok - /, "ok " n " - "); sub(/^not ok - /, "not ok " n " - ");
			if ($0 ~ /^not ok/) failed++ }
		{ print; fflush() }
		END { print "1.." n; exit failed ? 1 : 0 }'
}

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds, polled every 0.1 s
	n=$(($1 * 10))
	shift
	while ! "$@" && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	"$@"
}

# exempt_harness: this shell and its ancestors up to init (the guest's job shells) at -1000; what
# the scenario starts inherits it, so the processes under test are started through `choom -n`.
exempt_harness() {
	p=$$
	while [ "$p" -gt 1 ]; do
		echo -1000 >"/proc/$p/oom_score_adj"
		p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status")
	done
}

adj_of() { cat "/proc/$1/oom_score_adj" 2>/dev/null; }
