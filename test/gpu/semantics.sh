#!/bin/sh
# CUDA semantics under the shim (issue 13): capture, graph memory, pools, IPC/export, pointer
# attributes.  Run from the repository root on a machine with a GPU, nvcc's headers and
# PyTorch:  OUT=/some/dir sh test/gpu/semantics.sh
# Each check runs without the shim ("plain", what the driver and framework do alone) and with
# it, and prints "<check> <plain|shim>: RESULT <name> PASS|FAIL <detail>".  Also writes the
# real driver's answers (driver_facts all) to $OUT/facts.txt, which test/shim's fake driver
# copies.  Exits non-zero when a check under the shim fails.
set -u
OUT=${OUT:-/tmp/spillway-semantics}
mkdir -p "$OUT"
RES="$OUT/semantics-results.txt"
LOG="$OUT/semantics-log.txt"
: >"$RES"
: >"$LOG"
B=test/gpu/build
SHIM=$PWD/shim/build/libspillway-cuda.so
T=$(mktemp -d)
fail=0
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 PYTHONUNBUFFERED=1

say() { echo "$*" | tee -a "$RES"; }

say "date: $(date -u +%Y-%m-%dT%H:%MZ)"
say "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
say "torch: $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>&1)"
say "shim: $(git log -1 --format='%h %s' 2>/dev/null || echo unknown)"

CUDA_INC=$(dirname "$(command -v nvcc)")/../include
make -s -C shim CUDA_INC="$CUDA_INC" >>"$LOG" 2>&1 || { say "shim build FAILED"; exit 1; }
LIBCUDA=$(ldconfig -p | awk '/libcuda\.so\.1 / {print $NF; exit}')
mkdir -p "$B"
for p in driver_facts semantics; do
	cc -O2 -std=gnu11 -Wall -I"$CUDA_INC" -o "$B/$p" "test/gpu/$p.c" "$LIBCUDA" -lpthread -ldl \
		>>"$LOG" 2>&1 || { say "build $p FAILED"; fail=1; }
done
NCCL=$(python3 -c 'import glob, os, nvidia.nccl as n; print(sorted(glob.glob(os.path.join(list(n.__path__)[0], "lib", "libnccl.so*")))[0])' 2>/dev/null)

# case LABEL WITH_SHIM(0|1) [VAR=VALUE...] -- COMMAND...
case_() {
	label=$1 shim=$2
	shift 2
	envs=""
	while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
	shift
	[ "$shim" = 1 ] && envs="$envs LD_PRELOAD=$SHIM SPILLWAY_LOG=info,stats"
	mode=plain; [ "$shim" = 1 ] && mode=shim
	echo "+ [$label $mode]$envs $*" >>"$LOG"
	# shellcheck disable=SC2086
	env $envs timeout 150 "$@" >"$T/out.txt" 2>&1
	rc=$?
	cat "$T/out.txt" >>"$LOG"
	if grep -q '^RESULT' "$T/out.txt"; then
		grep '^RESULT' "$T/out.txt" | sed "s/^/$label $mode: /" | tee -a "$RES"
	else
		say "$label $mode: RESULT $label FAIL exit $rc: $(tail -n 1 "$T/out.txt")"
	fi
	[ "$shim" = 1 ] && [ $rc != 0 ] && fail=1
	return 0
}

# The real driver's answers, and the shim's for spilled memory.
"$B/driver_facts" all >"$OUT/facts.txt" 2>>"$LOG" || say "driver_facts all: exit $?"
say "driver facts: $(grep -c '^fact' "$OUT/facts.txt") lines in facts.txt"
LD_PRELOAD=$SHIM SPILLWAY_VRAM_LIMIT=64M SPILLWAY_LOG=info "$B/driver_facts" spilled \
	>"$OUT/attrs-shim.txt" 2>>"$LOG" || fail=1
grep '^CHECK' "$OUT/attrs-shim.txt" | sed 's/^CHECK /attrs shim: /' | tee -a "$RES"

# 1: PyTorch CUDA graphs, both allocators, 4 x 512 MiB of weights under a 2 GiB budget.
for conf in "" "backend:cudaMallocAsync"; do
	case_ graphs 0 ${conf:+PYTORCH_CUDA_ALLOC_CONF=$conf} -- python3 test/gpu/torch_graphs.py
	case_ graphs 1 ${conf:+PYTORCH_CUDA_ALLOC_CONF=$conf} SPILLWAY_VRAM_LIMIT=2G -- python3 test/gpu/torch_graphs.py
done
# 2: a 4 GiB graph memory node under a 2 GiB budget.
case_ graph_mem 0 -- "$B/semantics" graph_mem
case_ graph_mem 1 SPILLWAY_VRAM_LIMIT=2G SPILLWAY_REPORT=physical -- "$B/semantics" graph_mem
# 3: the default pool's cached memory serves a stream-ordered request.
case_ pool_reuse 0 -- "$B/semantics" pool_reuse
case_ pool_reuse 1 SPILLWAY_REPORT=physical -- "$B/semantics" pool_reuse
# 4: IPC and export: torch.multiprocessing, ncclMemAlloc.
case_ torch_ipc 0 -- python3 test/gpu/torch_ipc.py
case_ torch_ipc 1 SPILLWAY_VRAM_LIMIT=512M -- python3 test/gpu/torch_ipc.py
if [ -n "$NCCL" ]; then
	case_ nccl 0 -- "$B/semantics" nccl "$NCCL"
	case_ nccl 1 SPILLWAY_VRAM_LIMIT=512M -- "$B/semantics" nccl "$NCCL"
else
	say "nccl: SKIP (no libnccl.so in the nvidia-nccl wheel)"
fi
rm -rf "$T"
say "RESULT overall (under the shim): $([ $fail = 0 ] && echo PASS || echo FAIL)"
exit $fail
