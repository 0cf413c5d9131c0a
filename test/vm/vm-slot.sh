#!/bin/sh
# sh test/vm/vm-slot.sh SLOTS DIR CMD...: waits for one of SLOTS lock files in DIR, says which on
# stderr ("run-vm-slot N"), and execs CMD with the lock's fd open, so every VM on this machine
# (run-vm.mjs, test/package/boot.test.ts) shares SPILLWAY_VM_SLOTS.
n=$1 dir=$2
shift 2
while :; do
	i=0
	while [ "$i" -lt "$n" ]; do
		exec 9>>"$dir/slot$i"
		if flock -n 9; then
			echo "run-vm-slot $i" >&2
			exec "$@"
		fi
		i=$((i + 1))
	done
	exec 9>&-
	sleep 1
done
