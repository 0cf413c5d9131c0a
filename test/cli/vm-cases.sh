# Sourced by the guest scripts (vm-guest.sh, vm-up.sh, test/package/guest-check.sh); test/cli/vm-cases.ts reads what
# case_ prints.

# case_ NAME CMD...: runs CMD and prints
#   @@BEGIN NAME / its output (stdout and stderr) / @@END NAME EXIT-STATUS
# then "@@TIME NAME START END" (guest uptime), for timings in docs.
case_() {
	name=$1
	shift
	start=$(cut -d' ' -f1 /proc/uptime)
	echo "@@BEGIN $name"
	"$@" 2>&1
	echo "@@END $name $?"
	echo "@@TIME $name $start $(cut -d' ' -f1 /proc/uptime)"
}

wait_for() { # wait_for SECONDS TEST...: polls TEST every 0.2 s
	n=$(($1 * 5))
	shift
	while [ $n -gt 0 ] && ! "$@"; do sleep 0.2; n=$((n - 1)); done
}
