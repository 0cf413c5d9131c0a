#!/bin/sh
# Issue 18 item 2 for real, as root in a VM guest (test/slurm/slurm.test.ts): Debian's slurmctld,
# slurmd and munge (the .debs of test/slurm/fetch-debs.sh, installed into the guest's overlay), the
# spillway GRES from `spillway slurm gres`, the packaged Prolog/Epilog/TaskProlog, spillway.ko with a
# 3 GiB pool. Two jobs at once, --gres=spillway:1 and spillway:2, each running two CUDA processes
# (test/slurm/cuda-job.py under the shim, fake driver) of 768 MiB of spill each, the first holding
# its memory while the second allocates: the job whose share is 1 GiB must get a CUDA
# out-of-memory error in its second process, the other job none. Prints TAP.
#
# Env: SPILLWAY_KO, SPILLWAY_SLURM_DEBS (the .debs' directory). Run from the repository root.
set -u
repo=$(pwd)
ko=${SPILLWAY_KO:?}
debs=${SPILLWAY_SLURM_DEBS:?}
# slurmd runs the hooks with a bare environment: node by its full path.
cli="$(command -v node) $repo/cli/bin/spillway.js"
work=/tmp/slurm-test
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "$l" | sed 's/^/# /'; done; }
check() { # check NAME COMMAND...: ok when it exits 0, else its output as diagnostics
	name=$1
	shift
	if out=$("$@" 2>&1); then ok "$name"; else nok "$name" "$out"; fi
}
logs() { for f in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do echo "--- $f"; tail -n 25 "$f" 2>/dev/null; done; }
wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS (uptime)
	end=$(($(cut -d. -f1 /proc/uptime) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(cut -d. -f1 /proc/uptime)" -ge $end ] && return 1
		sleep 0.2
	done
}
finish() { echo "1..$n"; exit $failed; }
info_used() { $cli status --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).pool?.usedBytes))'; }

say() { echo "slurm-test: [$(cut -d' ' -f1 /proc/uptime) s] $*"; }
export DEBIAN_FRONTEND=noninteractive
ip link set lo up 2>/dev/null
# glibc's getaddrinfo (AI_ADDRCONFIG) resolves nothing on a machine whose only IPv4 address is
# 127.0.0.1, so Slurm could not find "localhost": one more address, on lo.
ip addr add 10.99.0.1/32 dev lo 2>/dev/null
hostname localhost # slurmctld must find itself as SlurmctldHost
[ -f /sys/fs/cgroup/cgroup.controllers ] || mount -t cgroup2 none /sys/fs/cgroup
# Slurm's cgroup/v2 with IgnoreSystemd=yes makes its scope under system.slice, which systemd would
# have made, with the controllers enabled on the way.
mkdir -p /sys/fs/cgroup/system.slice
for c in cpuset cpu memory pids; do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
	echo "+$c" >/sys/fs/cgroup/system.slice/cgroup.subtree_control 2>/dev/null
done
mkdir -p $work /var/log/slurm /var/spool/slurmctld /var/spool/slurmd /run/munge /etc/slurm

say "installing $(ls $debs/*.deb | wc -l) packages"
# Unpacked (dpkg-deb -x) rather than dpkg -i: dpkg reads the whole host's package database over
# 9p, which took 60 to over 200 s under TCG. What the maintainer scripts would add: the munge user
# (munged runs as it), the daemons' alternatives links, Slurm's directories (made below).
# --keep-directory-symlink: /lib and /bin are links into /usr (merged /usr), not to be replaced.
unpack() { for deb in "$debs"/*.deb; do dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C / || return 1; done; }
check "slurmctld, slurmd, slurm-client, munge and their missing dependencies unpacked" unpack
getent passwd munge >/dev/null || useradd -r -M -d /nonexistent -s /usr/sbin/nologin munge
# The postinsts' update-alternatives: slurmctld -> slurmctld-wlm, slurmd, slurmstepd.
for f in /usr/sbin/*-wlm; do ln -sf "$f" "${f%-wlm}"; done
ldconfig
say "installed"
for f in slurmctld slurmd scontrol sbatch munged; do
	command -v $f >/dev/null || { nok "$f is installed"; finish; }
done

# The packaged hooks, pointing at this checkout's CLI instead of /usr/bin/spillway.
mkdir -p /usr/lib/spillway/slurm
for hook in prolog epilog task-prolog; do
	sed "s|@SPILLWAY@|$cli|" packaging/slurm/$hook >/usr/lib/spillway/slurm/$hook
	chmod 755 /usr/lib/spillway/slurm/$hook
done

check "insmod spillway.ko with a 3 GiB pool" insmod "$ko" pool_mb=3072
gres=$($cli slurm gres --node localhost --output /run/spillway/gres.conf 2>&1)
echo "$gres" | sed 's/^/# gres: /'
nodegres=$(echo "$gres" | sed -n 's/^NodeName=localhost //p')
if [ "$nodegres" = "Gres=spillway:3" ] && grep -qx 'Name=spillway Count=3' /run/spillway/gres.conf; then
	ok "spillway slurm gres: Count=3 for a 3 GiB pool, written for gres.conf's Include"
else
	nok "spillway slurm gres: Count=3 for a 3 GiB pool" "$gres"
fi

cat >/etc/slurm/slurm.conf <<CONF
ClusterName=spillway
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
GresTypes=spillway
PrologFlags=Contain
Prolog=/usr/lib/spillway/slurm/prolog
Epilog=/usr/lib/spillway/slurm/epilog
TaskProlog=/usr/lib/spillway/slurm/task-prolog
NodeName=localhost CPUs=2 $nodegres State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
printf 'Include /run/spillway/gres.conf\n' >/etc/slurm/gres.conf
printf 'CgroupPlugin=cgroup/v2\nIgnoreSystemd=yes\nConstrainCores=no\nConstrainRAMSpace=no\nConstrainDevices=no\n' >/etc/slurm/cgroup.conf

[ -f /etc/munge/munge.key ] || mungekey -c -f -k /etc/munge/munge.key 2>/dev/null ||
	dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
chown munge:munge /etc/munge/munge.key 2>/dev/null
chmod 400 /etc/munge/munge.key
say "starting munged, slurmctld, slurmd"
# munge's postinst: its directories belong to munge, closed to others (munged checks).
mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge /etc/munge /etc/munge/munge.key
chmod 0700 /var/log/munge /etc/munge
chmod 0711 /var/lib/munge
check "munged starts" runuser -u munge -- munged
slurmctld
slurmd -N localhost
say "daemons: $(pgrep -l 'munged|slurm' | tr '\n' ' ')"
if wait_for 60 sh -c 'sinfo -h -N -o %T | grep -qE "^idle"'; then
	ok "slurmctld and slurmd run; the node is idle with $(scontrol show node localhost | grep -o 'Gres=[^ ]*')"
else
	nok "slurmctld and slurmd run; the node is idle" "$(sinfo -N 2>&1)" "$(scontrol show node localhost 2>&1)" "$(logs)"
	finish
fi

# Each job: two CUDA processes of 768 MiB, the second allocating while the first holds its memory.
# Environment for the fake driver: a 64 MiB card, so every 128 MiB request spills.
for share in 1 2; do
	cat >$work/job$share.sh <<JOB
#!/bin/sh
export LD_LIBRARY_PATH=$repo/test/shim/build FAKE_CUDA_VRAM=64M
d=$work/j$share
mkdir -p \$d
env | grep -E '^(SPILLWAY_|LD_PRELOAD)' | sort | sed 's/^/ENV /'
echo "CGROUP \$(cat /proc/self/cgroup)"
/usr/bin/python3 $repo/test/slurm/cuda-job.py 768 \$d/held1 \$d/release1 | sed 's/^/P1 /' &
while [ ! -e \$d/held1 ]; do sleep 0.1; done
echo "ADJ \$(cat /proc/\$\$/oom_score_adj)"
touch $work/running$share
while [ ! -e $work/go ]; do sleep 0.1; done
/usr/bin/python3 $repo/test/slurm/cuda-job.py 768 \$d/held2 \$d/release2 </dev/null | sed 's/^/P2 /' &
while [ ! -e \$d/held2 ]; do sleep 0.1; done
touch $work/held$share
while [ ! -e $work/done ]; do sleep 0.1; done
touch \$d/release1 \$d/release2
wait
JOB
	chmod 755 $work/job$share.sh
done
say "submitting the jobs"
id1=$(sbatch --parsable --gres=spillway:1 -o $work/out1 -e $work/err1 $work/job1.sh 2>&1)
id2=$(sbatch --parsable --gres=spillway:2 -o $work/out2 -e $work/err2 $work/job2.sh 2>&1)
if wait_for 90 test -e $work/running1 -a -e $work/running2; then
	ok "both jobs run at once (ids $id1 and $id2); each first process holds its memory"
else
	nok "both jobs run at once" "$id1 $id2" "$(squeue 2>&1)" "$(cat $work/out1 $work/err1 $work/out2 $work/err2 2>&1)" "$(logs)"
fi
list=$($cli share list --json 2>&1)
echo "$list" | sed 's/^/# share list: /' | head -30
shares=$(echo "$list" | node -e '
let s = ""
process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const rows = JSON.parse(s).shares.filter((r) => /\/job_\d+$/.test(r.cgroup ?? ""))
  console.log(rows.map((r) => `${r.cgroup.replace(/.*\/job_/, "")}:${r.maxBytes / 2 ** 30}:${r.minBytes / 2 ** 30}`).sort().join(" "))
})' 2>&1)
expect=$(printf '%s\n' "$id1:1:1" "$id2:2:2" | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$shares" = "$expect" ]; then ok "share list shows the jobs' cgroups with max = min = their GRES ($shares)"; else nok "share list shows each job's share" "got: $shares" "want: $expect"; fi
# watch's view: `status --json` lists registered jobs whose record it accepts and cgroup exists.
registered=$($cli status --json 2>&1 | node -e '
let s = ""
process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).jobs.map((j) => j.id).sort().join(" ")))' 2>&1)
if [ "$registered" = "slurm-$id1 slurm-$id2" ]; then
	ok "both jobs are registered with watch while they run ($registered)"
else
	nok "both jobs are registered with watch while they run" "got: $registered" "$(ls -l /run/spillway/jobs 2>&1)"
fi
say "letting the second processes allocate"
touch $work/go
wait_for 90 test -e $work/held1 -a -e $work/held2
touch $work/done
wait_for 90 sh -c "[ -z \"\$(squeue -h)\" ]" || nok "both jobs ended" "$(squeue 2>&1)"
for s in 1 2; do cat $work/out$s $work/err$s 2>/dev/null | sed "s/^/# job$s: /"; done
p1=$(grep '^P1 ALLOC' $work/out1)
p2=$(grep '^P2 ALLOC' $work/out1)
q1=$(grep '^P1 ALLOC' $work/out2)
q2=$(grep '^P2 ALLOC' $work/out2)
[ "$p1" = "P1 ALLOC ok 768" ] && ok "job with spillway:1: its first process spilled 768 MiB into the pool" || nok "job spillway:1, first process: $p1"
case $p2 in
"P2 ALLOC failed after "*" MiB: CUDA_ERROR_OUT_OF_MEMORY") ok "job with spillway:1: its second process got CUDA_ERROR_OUT_OF_MEMORY at its 1 GiB share (${p2#P2 ALLOC })" ;;
*) nok "job with spillway:1: the second process gets CUDA out of memory at 1 GiB" "$p2" ;;
esac
[ "$q1" = "P1 ALLOC ok 768" ] && [ "$q2" = "P2 ALLOC ok 768" ] &&
	ok "job with spillway:2: both processes got their 768 MiB (1.5 GiB < its 2 GiB share)" ||
	nok "job with spillway:2 is unaffected" "$q1" "$q2"
grep -q '^ENV SPILLWAY_SPILL_LIMIT=2G$' $work/out2 && grep -q '^ENV SPILLWAY_BACKEND=pool$' $work/out2 &&
	grep -q "^ENV LD_PRELOAD=.*libspillway-cuda.so" $work/out2 &&
	ok "the TaskProlog gave the job the shim and its budget (SPILLWAY_SPILL_LIMIT=2G, SPILLWAY_BACKEND=pool)" ||
	nok "the TaskProlog's environment" "$(grep '^ENV' $work/out2)"
grep -q '^ADJ -1000$' $work/out1 && grep -q '^ADJ -1000$' $work/out2 &&
	ok "the jobs' processes run with oom_score_adj -1000" || nok "oom_score_adj -1000 in the jobs" "$(grep '^ADJ' $work/out1 $work/out2)"
grep -q 'spillway stats: ' $work/err2 && ok "the shim's statistics at exit are in the job's output" ||
	nok "the shim's exit report in the job's output" "$(cat $work/err2)"
wait_for 30 sh -c "[ -z \"\$($cli share list --json | grep job_)\" ]" &&
	ok "after the jobs, no job cgroup has a share" || nok "no shares after the jobs" "$($cli share list 2>&1)"
used=$(info_used)
[ "$used" = 0 ] && ok "the pool is back to baseline: 0 bytes used" || nok "pool used after the jobs is 0" "$used"
grep -E 'spillway' /var/log/slurm/slurmd.log | tail -n 8 | sed 's/^/# slurmd.log: /'
ls /run/spillway/jobs 2>/dev/null | grep -q slurm && nok "the epilog removed the watch registrations" "$(ls /run/spillway/jobs)" ||
	ok "the epilog removed the jobs' watch registrations"
finish
