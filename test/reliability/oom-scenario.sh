#!/bin/sh
# The OOM-safe scenario of issue 7 item 4, run as root inside a test VM (about 1 GiB of RAM, no swap):
# spillway.ko holds half the RAM, `spillway watch` runs, a job started with
# `spillway run --oom-safe` computes a checkable result, and a hog eats memory until the OOM killer
# stops it. Each run must show: the job runs with oom_score_adj -1000, the watchdog warned before
# the first OOM kill, free pool chunks were released, watch froze the job and thawed it, the job
# finished with the right result, and the OOM killer never killed the job, its `spillway run` or
# watch. Prints TAP, and "OOM_MARGIN ..." lines with the figures.
#
# Who the OOM killer may take (docs/reliability.md): the scenario itself (this shell, its awk and
# helpers, oomwatch, and the guest's shells above it) is the test harness and runs at
# oom_score_adj -1000; what it tests gets the adj it would have on a real machine: the hog 0,
# `spillway run` 0 at its start (it must exempt itself and the job), watch the service's -900. A
# bystander (32 MB, adj 0) stands for the rest of the machine: on 6.12 a stale second OOM
# invocation was seen to kill whatever was left; whether it killed the bystander is reported.
#
#   sh test/reliability/oom-scenario.sh
#
# Env: SPILLWAY_KO (the module), SPILLWAY_OOM_RUNS (3).
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$here/build
ko=${SPILLWAY_KO:-}
runs=${SPILLWAY_OOM_RUNS:-3}
sysfs=/sys/class/misc/spillway
# the job: ROUNDS rounds over a WS_MB working set, DELAY_MS apart
rounds=150 ws_mb=48 delay_ms=100
# the bystander: the rest of the machine, for a stale second OOM kill to take
bystander_mb=32

# shellcheck source=lib.sh
. "$here/lib.sh"
require_vm "$0" "it drives the machine into the OOM killer"
# field NAME FILE: NAME=value from the OOMWATCH summary line
field() { sed -n "s/^OOMWATCH.* $1=\([^ ]*\).*/\1/p" "$2"; }
# lt A B: A < B for decimals, where -1 means never
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= 0 && (b < 0 || a < b)) }'; }

cli=$repo/cli/bin/spillway.js

# rss_at_least PID KB
rss_at_least() { [ "$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" -ge "$2" ] 2>/dev/null; }

one_run() {
	run=$1
	job_status=
	tmp=$(mktemp -d)
	half_mb=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 2048))
	if ! insmod "$ko" pool_mb=$half_mb watchdog_ms=100; then
		not_ok "run $run: insmod pool_mb=$half_mb"
		return
	fi
	log0=$(dmesg_lines)
	pool=$(cat $sysfs/pool_bytes)
	rm -rf /run/spillway
	# as the installed service runs it (OOMScoreAdjust=); at 0 the OOM killer was seen to kill it
	choom -n "$watch_adj" -- node "$cli" watch --no-psi --log-format json >"$tmp/watch.log" 2>&1 &
	watch_pid=$!
	wait_for 60 grep -q '"event":"start"' "$tmp/watch.log"
	# started at 0, as from a user's shell: --oom-safe must exempt itself and the job
	choom -n 0 -- node "$cli" run --oom-safe -- "$bin/oomjob" $rounds $ws_mb $delay_ms >"$tmp/job.out" 2>"$tmp/job.err" &
	run_pid=$!
	wait_for 60 grep -q 'round 5$' "$tmp/job.out"
	job_cgroup=$(dirname "$(grep -l . /sys/fs/cgroup/spillway/*/cgroup.procs | head -n 1)")
	job_pid=$(head -n 1 "$job_cgroup/cgroup.procs")
	# --oom-safe must exempt every process of the job from the OOM killer (without it the OOM
	# killer was seen to kill the frozen job on 6.12: docs/reliability.md)
	adj= unsafe=0
	for p in $(cat "$job_cgroup/cgroup.procs"); do
		a=$(cat "/proc/$p/oom_score_adj" 2>/dev/null)
		adj="$adj $p:$a"
		[ "$a" = -1000 ] || unsafe=1
	done
	[ -n "$job_pid" ] && [ "$unsafe" = 0 ]
	verdict "run $run: spillway run --oom-safe set oom_score_adj -1000 on the job's processes (pid:adj$adj)" $?
	run_adj=$(adj_of $run_pid)
	check "run $run: spillway run --oom-safe, started at 0, set its own oom_score_adj to -1000 (pid $run_pid: $run_adj; watch $watch_pid: $(adj_of $watch_pid))" \
		[ "$run_adj" = -1000 ]
	ln -s "$bin/hog" "$tmp/bystander"
	choom -n 0 -- "$tmp/bystander" $bystander_mb 0 $bystander_mb 3600 >/dev/null 2>&1 &
	bystander_pid=$!
	wait_for 30 rss_at_least $bystander_pid $((bystander_mb * 1000))
	diag "run $run: bystander $bystander_pid: oom_score_adj $(adj_of $bystander_pid), $(awk '/^VmRSS:/ { print $2 }' /proc/$bystander_pid/status) kB RSS"
	"$bin/oomwatch" -i 50 -t 120 -s 2 -c "$job_cgroup" -- choom -n 0 -- "$bin/hog" 8 50 4096 >"$tmp/oomwatch.out" 2>&1
	# the job must now finish on its own
	n=0
	while kill -0 $run_pid 2>/dev/null && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
	if kill -0 $run_pid 2>/dev/null; then
		job_status=timeout
		kill $run_pid
	fi
	wait $run_pid
	job_status=${job_status:-$?}
	if kill -0 $bystander_pid 2>/dev/null; then
		kill -9 $bystander_pid
	fi
	wait $bystander_pid 2>/dev/null
	kill -TERM $watch_pid
	wait $watch_pid
	released=$(cat $sysfs/released_bytes)
	pool_after=$(cat $sysfs/pool_bytes)

	diag "$(cat "$tmp/oomwatch.out")"
	# everything watch logged but the OOM adjustments (a freeze that failed logs why)
	grep -v '"event":"oom-adjust"' "$tmp/watch.log" | tail -n 60 | sed 's/^/# watch: /'
	got=$(sed -n 's/^oomjob: result \([0-9a-f]*\) .*/\1/p' "$tmp/job.out")
	gap=$(sed -n 's/.* longest_gap_ms \([0-9]*\)$/\1/p' "$tmp/job.out")
	[ "$job_status" = 0 ] && [ "$got" = "$expected" ]
	verdict "run $run: the --oom-safe job exited 0 with the right result ($got, expected $expected; exit $job_status)" $?
	if [ "$job_status" != 0 ]; then
		sed 's/^/# job: /' "$tmp/job.err" | tail -n 5
		# who died: spillway run removes the job's cgroup when it exits by itself, not when killed
		diag "run $run: after spillway run exited $job_status, the job's cgroup $([ -d "$job_cgroup" ] && echo still exists || echo is gone)"
		diag "$(dmesg | tail -n +$((log0 + 1)) | grep -E 'segfault|traps:|trap |invalid opcode|Killed process|general protection' | tail -n 5)"
	fi
	killed=$(field killed "$tmp/oomwatch.out")
	hog=$(field hog "$tmp/oomwatch.out")
	# the job, the `spillway run` process that waits for it and reports its exit status, or watch
	case ",$killed," in *",$job_pid:"* | *":oomjob,"* | *",$run_pid:"* | *",$watch_pid:"*) job_killed=yes ;; *) job_killed=no ;; esac
	[ "$job_killed" = no ] && [ -n "$job_pid" ] && [ "$hog" = signal9 ]
	verdict "run $run: the OOM killer stopped the hog ($hog) and never killed the protected job $job_pid, its spillway run $run_pid or watch $watch_pid (killed: $killed)" $?
	# a diagnostic, not a failure: the bystander is there to be taken by a stale second kill
	case ",$killed," in *",$bystander_pid:"*) bystander_killed=yes ;; *) bystander_killed=no ;; esac
	diag "run $run: the bystander $bystander_pid was killed by the OOM killer: $bystander_killed"
	warn_s=$(field warn_s "$tmp/oomwatch.out")
	crit_s=$(field critical_s "$tmp/oomwatch.out")
	oom_s=$(field oom_s "$tmp/oomwatch.out")
	release_s=$(field release_s "$tmp/oomwatch.out")
	check "run $run: the watchdog warned before the first OOM kill (warn at $warn_s s, critical at $crit_s s, first OOM kill at $oom_s s after the hog started)" \
		lt "$warn_s" "$oom_s"
	[ "$release_s" != -1 ] && [ "$released" -gt 0 ] && [ "$pool_after" -lt "$pool" ]
	verdict "run $run: free pool chunks went back to the kernel (first RELEASE event at $release_s s; released_bytes $released; pool $pool -> $pool_after)" $?
	freeze=$(grep -c '"event":"freeze"' "$tmp/watch.log")
	thaw=$(grep -c '"event":"thaw"' "$tmp/watch.log")
	periods=$(field frozen_periods "$tmp/oomwatch.out")
	frozen_ms=$(field frozen_ms "$tmp/oomwatch.out")
	[ "$freeze" -ge 1 ] && [ "$thaw" -ge "$freeze" ] && [ "${periods:-0}" -ge 1 ] && [ "$job_status" = 0 ]
	verdict "run $run: watch froze the job and thawed it ($freeze freezes, $thaw thaws; the kernel showed the cgroup frozen $periods times, $frozen_ms ms in all; the job's longest pause between rounds $gap ms)" $?
	low=$(field lowest_avail_kb "$tmp/oomwatch.out")
	warn_kb=$(field warn_avail_kb "$tmp/oomwatch.out")
	echo "OOM_MARGIN kernel=$(uname -r) run=$run frozen_ms=$frozen_ms lowest_avail_kb=$low warn_event_avail_kb=$warn_kb warn_s=$warn_s critical_s=$crit_s release_s=$release_s oom_s=$oom_s released_bytes=$released oom_kills=$(field oom_kills "$tmp/oomwatch.out") killed=$killed bystander_killed=$bystander_killed"
	# a job whose `spillway run` died runs on unwatched: end it, so the next run starts clean
	wait_for 30 sh -c "! grep -q . $job_cgroup/cgroup.procs 2>/dev/null"
	leftover=$(cat "$job_cgroup/cgroup.procs" 2>/dev/null)
	[ -n "$leftover" ] && diag "job processes left after spillway run ended: $leftover (killed)" &&
		kill -9 $leftover
	check "run $run: rmmod spillway" rmmod spillway
	problems=$(dmesg_problems "$log0")
	check "run $run: no BUG, WARNING, Oops, corruption or leak in the kernel log" [ -z "$problems" ]
	[ -n "$problems" ] && diag "$problems"
	rm -rf "$tmp"
}

main() {
	[ -n "$ko" ] && [ -f "$ko" ] || { not_ok "SPILLWAY_KO names the module to test (got '$ko')"; return; }
	[ -f "$repo/cli/dist/main.js" ] || { not_ok "the CLI is built (cli/dist/main.js)"; return; }
	grep -q '^spillway ' /proc/modules && rmmod spillway
	command -v choom >/dev/null || { not_ok "choom (util-linux) is installed"; return; }
	[ -f /sys/fs/cgroup/cgroup.controllers ] || mount -t cgroup2 cgroup2 /sys/fs/cgroup
	watch_adj=$(sed -n 's/^OOMScoreAdjust=//p' "$repo/systemd/spillway-watch.service")
	[ -n "$watch_adj" ] || { not_ok "systemd/spillway-watch.service sets OOMScoreAdjust"; return; }
	expected=$("$bin/oomjob" $rounds $ws_mb 0 | sed -n 's/^oomjob: result \([0-9a-f]*\) .*/\1/p')
	echo "# kernel $(uname -r), $(awk '/^MemTotal/ { print $2 }' /proc/meminfo) kB RAM, $(grep -c . /proc/swaps) swap lines, expected job result $expected"
	i=1
	while [ $i -le "$runs" ]; do
		one_run $i
		i=$((i + 1))
	done
}

exempt_harness
main 2>&1 | tap_number
