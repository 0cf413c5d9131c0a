#!/bin/sh
# GPU acceptance run for libspillway-cuda.so (issue 4).  Run from the repository root on a
# machine with an NVIDIA GPU, nvcc and PyTorch:  OUT=/some/dir sh test/gpu/run.sh
# Writes log.txt and results.txt to $OUT; exits non-zero when a check fails.
set -u
OUT=${OUT:-/tmp/spillway-gpu}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
RES="$OUT/results.txt"
: >"$LOG"
: >"$RES"
B=test/gpu/build
SHIM=$PWD/shim/build/libspillway-cuda.so
LIMIT=${LIMIT:-4G}
LIMIT_GIB=${LIMIT_GIB:-4}
fail=0

say() { echo "$*" | tee -a "$RES"; }
run() { echo "+ $*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }

say "date: $(date -u +%Y-%m-%dT%H:%MZ)"
say "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
say "host: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1048576)}' /proc/meminfo) GiB RAM, hugepages $(cat /proc/sys/vm/nr_hugepages)"

CUDA_INC=$(dirname "$(command -v nvcc)")/../include
make -s -C shim CUDA_INC="$CUDA_INC" >>"$LOG" 2>&1 || { say "shim build FAILED"; exit 1; }
mkdir -p "$B"
for p in spill_kernels threads bandwidth; do
	nvcc -O2 -std=c++17 -arch=sm_90 -o "$B/$p" "test/gpu/$p.cu" -ldl >>"$LOG" 2>&1 ||
		{ say "nvcc $p FAILED"; fail=1; }
done

T=$(mktemp -d)

# (a) kernels across VRAM and spilled allocations
LD_PRELOAD=$SHIM SPILLWAY_VRAM_LIMIT=2G SPILLWAY_LOG=info,stats "$B/spill_kernels" >"$T/a.txt" 2>&1 || fail=1
cat "$T/a.txt" >>"$LOG"; grep -E "allocated|bad words|spilled memory|RESULT" "$T/a.txt" | sed 's/^/(a) /' | tee -a "$RES"

# (d) many threads, with a budget small enough that a quarter of the requests spill
LD_PRELOAD=$SHIM SPILLWAY_VRAM_LIMIT=256M SPILLWAY_LOG=stats "$B/threads" >"$T/d.txt" 2>&1 || fail=1
cat "$T/d.txt" >>"$LOG"; grep -v "spillway stats" "$T/d.txt" | sed 's/^/(d) /' | tee -a "$RES"

# (e) bandwidth
LD_PRELOAD=$SHIM SPILLWAY_VRAM_LIMIT=1G SPILLWAY_BACKEND=host "$B/bandwidth" >"$T/e.txt" 2>&1 || fail=1
cat "$T/e.txt" >>"$LOG"; sed 's/^/(e) /' "$T/e.txt" | tee -a "$RES"

# (b) + (c) PyTorch: 2 x LIMIT of tensors, with and without the shim, expandable segments off/on
TOTAL=$((LIMIT_GIB * 2))
for es in False True; do
	export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:$es
	PYTHONUNBUFFERED=1 python3 test/gpu/torch_spill.py plain "$TOTAL" >"$T/plain.txt" 2>&1 || fail=1
	PYTHONUNBUFFERED=1 LD_PRELOAD=$SHIM SPILLWAY_VRAM_LIMIT=$LIMIT SPILLWAY_LOG=info,stats \
		python3 test/gpu/torch_spill.py shim "$TOTAL" >"$T/shim.txt" 2>&1 || fail=1
	echo "+ torch expandable_segments=$es" >>"$LOG"
	cat "$T/plain.txt" "$T/shim.txt" >>"$LOG"
	plain=$(sed -n 's/^TORCH //p' "$T/plain.txt")
	shim=$(sed -n 's/^TORCH //p' "$T/shim.txt")
	say "(c) expandable_segments=$es plain: $plain"
	say "(c) expandable_segments=$es shim:  $shim"
	h1=$(echo "$plain" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])' 2>/dev/null)
	h2=$(echo "$shim" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])' 2>/dev/null)
	spilled=$(echo "$shim" | python3 -c 'import json,sys; print(json.load(sys.stdin)["shim_spill_mib"])' 2>/dev/null)
	checks=$(echo "$shim" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pointer_checks"])' 2>/dev/null)
	if [ -n "$h1" ] && [ "$h1" = "$h2" ] && [ "${spilled:-0}" -gt 0 ] && [ "$checks" = True ]; then
		say "RESULT c (expandable_segments=$es): PASS bit-identical, ${spilled} MiB spilled, pointer checks pass"
	else
		say "RESULT c (expandable_segments=$es): FAIL ($h1 vs $h2, spilled ${spilled:-?}, pointer checks ${checks:-?})"; fail=1
	fi
done
unset PYTORCH_CUDA_ALLOC_CONF
say "RESULT overall: $([ $fail = 0 ] && echo PASS || echo FAIL)"
exit $fail
