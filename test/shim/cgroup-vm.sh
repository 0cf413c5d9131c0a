#!/bin/sh
# In a VM guest (test/shim/cgroup-vm.test.ts): runs t_cgroup inside a real cgroup v2 whose
# memory.max is 96 MiB, under the shim on the fake driver. Run from the repository root.
set -u
mnt=/sys/fs/cgroup
max=$((96 * 1024 * 1024))
if [ ! -f $mnt/cgroup.controllers ]; then
	mount -t cgroup2 none $mnt || { echo "not ok 1 - mount cgroup2 on $mnt"; exit 1; }
fi
echo +memory >$mnt/cgroup.subtree_control || { echo "not ok 1 - enable the memory controller"; exit 1; }
mkdir -p $mnt/spillway-t_cgroup
echo $max >$mnt/spillway-t_cgroup/memory.max || { echo "not ok 1 - set memory.max"; exit 1; }
echo 0 >$mnt/spillway-t_cgroup/memory.swap.max 2>/dev/null
cd test/shim/build || exit 1
# The shell moves itself into the cgroup, then becomes the test: nothing of it runs outside.
sh -c "echo \$\$ >$mnt/spillway-t_cgroup/cgroup.procs && exec env T_CGROUP_MAX=$max \
	LD_PRELOAD=$PWD/../../../shim/build/libspillway-cuda.so LD_LIBRARY_PATH=$PWD ./t_cgroup"
