#!/bin/sh
# Runs as root inside the 6.1 VM for test/cli/vm.test.ts, in the repository. Every case prints
#   @@BEGIN name / its output (stdout and stderr) / @@END name EXIT-STATUS
# and the host test asserts on them. Needs SPILLWAY_KO (a spillway.ko for this kernel).
S="node cli/bin/spillway.js"
. test/cli/vm-cases.sh
as_user() {
	u=$1
	shift
	setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
}

mount -t cgroup2 none /sys/fs/cgroup
# What `spillway install` sets up: the group and the udev rule (run by hand: no udevd in the guest).
groupadd --system spillway
useradd -M -N -G spillway tester
useradd -M -N outsider
cp udev/60-spillway.rules /etc/udev/rules.d/

case_ load-as-user as_user tester $S load --module "$SPILLWAY_KO" --pool 128M
case_ load $S load --module "$SPILLWAY_KO" --pool 128M --warn 550M --critical 400M --watchdog-ms 100 --force
case_ udev-test udevadm test --action=add /sys/class/misc/spillway
case_ dev-node stat -c '%A %U %G' /dev/spillway
case_ status-root $S status --json
case_ status-tester as_user tester $S status --json
case_ status-outsider as_user outsider $S status --json
case_ pool-set $S pool set 192M
case_ pool-set-unsafe $S pool set 900M
case_ pool-set-tester as_user tester $S pool set 64M
case_ pool-show-tester as_user tester $S pool show --json

# A member of the group holds an 8 MiB buffer: unload must refuse and name it.
setpriv --reuid=tester --regid="$(id -g tester)" --init-groups -- node -e '
const b = require(process.cwd() + "/cli/native/build/Release/spillway.node")
const fd = b.open("/dev/spillway", true)
const buf = b.alloc(fd, 8 << 20)
console.log("holding", buf.id)
setInterval(() => {}, 1000)' >/tmp/holder.out 2>&1 &
holder=$!
wait_for 30 grep -q holding /tmp/holder.out
case_ status-buffers $S status --json
case_ ps-buffers $S ps --json
case_ ps-text $S ps
case_ unload-busy $S unload
kill $holder
wait $holder
case_ unload-tester as_user tester $S unload

# The --oom-safe job of the watch cases counts until the hog is gone, so it surely runs while the
# level is critical. It is started the way sudo would (SUDO_UID/GID).
JOB='
id -u
n=0
while [ $n -lt 120 ]; do
	n=$((n + 1))
	echo "step $n $(date +%s.%N)"
	[ -f /tmp/hog-done ] && break
	sleep 1
done
echo done'
start_job() { # start_job OUT ERR: sets $job
	SUDO_UID=$(id -u tester) SUDO_GID=$(id -g tester) $S run --oom-safe -- sh -c "$JOB" >"$1" 2>"$2" &
	job=$!
}

# watch under a memory hog: the module's events only.
$S watch --no-psi --log-format json >/tmp/watch.log 2>&1 &
watch=$!
wait_for 30 test -f /run/spillway/watch.pid
start_job /tmp/job.out /tmp/job.err
wait_for 30 sh -c 'ls /run/spillway/jobs/*.json >/dev/null 2>&1'
wait_for 30 grep -q 'step 1 ' /tmp/job.out
node -e 'const a = []; for (let i = 0; i < 380; i++) a.push(Buffer.alloc(1 << 20, 1)); setTimeout(() => {}, 4000)'
touch /tmp/hog-done
wait $job
job_status=$?
sleep 2
kill $watch
wait $watch
case_ watch-log cat /tmp/watch.log
case_ job-output sh -c "cat /tmp/job.out; exit $job_status"
case_ job-stderr cat /tmp/job.err
case_ jobs-left sh -c 'ls /run/spillway/jobs; ls -d /sys/fs/cgroup/spillway/job-* 2>/dev/null; true'

case_ unload $S unload
case_ status-unloaded $S status --json

# watch on PSI alone (the module is unloaded now). A hog held at memory.high stalls in the kernel's
# throttling: every other task sleeps, so the system's memory "full" stall grows and the critical
# trigger fires. The hog stops after 8 s; the level falls back to ok after holdMs.
echo '{"watch":{"psi":{"holdMs":2000}}}' >/tmp/watch-psi.json
$S watch --config /tmp/watch-psi.json --log-format json >/tmp/watch-psi.log 2>&1 &
watch=$!
wait_for 30 test -f /run/spillway/watch.pid
rm -f /tmp/hog-done
start_job /tmp/job-psi.out /tmp/job-psi.err
wait_for 30 sh -c 'ls /run/spillway/jobs/*.json >/dev/null 2>&1'
wait_for 30 grep -q 'step 1 ' /tmp/job-psi.out
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/hog
echo 32M >/sys/fs/cgroup/hog/memory.high
sh -c 'echo $$ >/sys/fs/cgroup/hog/cgroup.procs; exec timeout 8 tail /dev/zero'
touch /tmp/hog-done
wait $job
job_status=$?
sleep 1
kill $watch
wait $watch
case_ psi-watch-log cat /tmp/watch-psi.log
case_ psi-job-output sh -c "cat /tmp/job-psi.out; exit $job_status"
case_ install-dry-run $S install --dry-run --pool 256M
