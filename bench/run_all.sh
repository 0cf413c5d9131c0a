#!/bin/bash
# Runs the Spillway benchmarks on a machine with an NVIDIA GPU and writes one
# JSON file (every figure, plus versions), an SVG chart made from it, and the
# log into $OUTDIR (default bench/results).
#
#   bash bench/run_all.sh [PART...]
#
# PARTS: bandwidth dense moe gemm overhead alloc diag. Default: bandwidth
# dense moe gemm overhead (alloc is part of overhead; diag re-runs the dense
# shim with SPILLWAY_MIN_SPILL=64M and the CPU split in bf16). bandwidth
# always runs: the physical bound of every decode figure is computed from the
# bandwidth measured in the same run.
# Environment: OUTDIR; BENCH_SMALL=1 (small models and buffers, to check the
# harness in a minute); SHIM (path of libspillway-cuda.so; built with
# `make -C shim` when missing; "none" to skip the shim); BUDGET_GIB (8); BENCH_MAX_DECODE_S (20).
set -u -o pipefail
export PYTHONUNBUFFERED=1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(bandwidth dense moe gemm overhead)
has() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
outdir=${OUTDIR:-$here/results}
work=$(mktemp -d /tmp/spillway-bench.XXXXXX)
mkdir -p "$outdir" "$work/bin"
small=${BENCH_SMALL:-0}
budget=${BUDGET_GIB:-8}
max_decode_s=${BENCH_MAX_DECODE_S:-20}
size_gib=4
dense=dense
moe=moe
if [ "$small" = 1 ]; then
	size_gib=1; dense=dense-small; moe=moe-small; budget=${BUDGET_GIB:-1}
fi
say() { echo "== $*" >&2; }

# Facts about the machine, recorded with the figures.
python3 - "$work/env.json" <<'EOF'
import json, os, platform, subprocess, sys, datetime
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e:
        return f"error: {e}"
env = dict(
    date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    kernel=platform.release(),
    gpu=sh("nvidia-smi --query-gpu=name,memory.total,driver_version,pcie.link.gen.current,pcie.link.width.current,clocks.max.sm --format=csv,noheader"),
    nvidia_smi_cuda=sh("nvidia-smi | sed -n 's/.*CUDA Version: *\\([0-9.]*\\).*/\\1/p'"),
    nvcc=sh("nvcc --version | tail -2 | head -1"),
    cpu=sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
    cpus=os.cpu_count(),
    mem_total_kb=sh("grep MemTotal /proc/meminfo | awk '{print $2}'"),
    python=platform.python_version(),
)
try:
    import torch, transformers, accelerate
    env.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
               transformers=transformers.__version__, accelerate=accelerate.__version__)
except Exception as e:
    env["python_packages_error"] = repr(e)
json.dump(env, open(sys.argv[1], "w"), indent=1)
print(json.dumps(env), file=sys.stderr)
EOF

nvcc -O3 -arch=sm_90 -o "$work/bin/bandwidth" bench/bandwidth.cu || exit 1
nvcc -O2 -arch=sm_90 -o "$work/bin/alloc_latency" bench/alloc_latency.cu || exit 1

shim=${SHIM:-$repo/shim/build/libspillway-cuda.so}
shim_note=""
if [ "$shim" = none ]; then
	shim_note="SHIM=none"
elif [ ! -f "$shim" ] && [ -f shim/Makefile ]; then
	say "building the shim"
	cuda_inc=/usr/local/cuda-13.0/include
	for d in /usr/local/cuda-13.0/include /usr/local/cuda/include \
		"$(dirname "$(readlink -f "$(command -v nvcc)")")/../include"; do
		[ -f "$d/cuda.h" ] && { cuda_inc=$d; break; }
	done
	make -C shim build/libspillway-cuda.so CUDA_INC="$cuda_inc" >"$work/shim-build.log" 2>&1 \
		|| shim_note="make -C shim failed: $(tail -3 "$work/shim-build.log" | tr '\n' ' ')"
fi
[ -f "$shim" ] || { [ -n "$shim_note" ] || shim_note="no shim at $shim"; }
if [ -n "$shim_note" ]; then say "shim configurations skipped: $shim_note"; shim=""; fi
echo "{\"shim\": \"${shim}\", \"note\": \"${shim_note//\"/\'}\"}" >"$work/shim.json"

deadline=${BENCH_DEADLINE_S:-0}
t0=$SECONDS
# step NAME MAX_S CMD...: runs CMD with a time limit, shortened or skipped when
# BENCH_DEADLINE_S (seconds from the start; 0 = none) is near, so that the
# results of what did run are always collected. Failures go to steps.txt.
step() {
	local name=$1 max=$2 rc; shift 2
	if [ "$deadline" -gt 0 ]; then
		local left=$((deadline - (SECONDS - t0) - 30))
		if [ "$left" -lt 20 ]; then
			say "$name: skipped, deadline near"
			echo "$name: skipped, deadline near" >>"$work/steps.txt"
			return 1
		fi
		[ "$max" -gt "$left" ] && max=$left
	fi
	say "$name"
	timeout -k 5 "$max" "$@"
	rc=$?
	if [ $rc -ne 0 ]; then
		say "$name FAILED (exit $rc; 124 = time limit of ${max} s)"
		echo "$name: exit $rc (124 = time limit of ${max} s)" >>"$work/steps.txt"
	fi
	return $rc
}
shim_env=(env LD_PRELOAD="$shim" SPILLWAY_BACKEND=host)

step "bandwidth, ${size_gib} GiB buffers" 120 \
	"$work/bin/bandwidth" --size-gib "$size_gib" --reps 10 >"$work/bw-noshim.json"
if [ -n "$shim" ]; then
	# A limit under the buffer size: the cudaMalloc'd buffer spills.
	step "bandwidth under the shim, SPILLWAY_VRAM_LIMIT=$((size_gib / 2))G" 120 \
		"${shim_env[@]}" SPILLWAY_VRAM_LIMIT="$((size_gib / 2))G" \
		"$work/bin/bandwidth" --size-gib "$size_gib" --reps 10 --modes malloc,mapped \
		>"$work/bw-shim.json"
fi

decode_set() { # $1 = arch
	local arch=$1 mode
	local common=(python3 bench/decode.py --arch "$arch" --budget-gib "$budget"
		--max-decode-s "$max_decode_s")
	[ "$small" = 1 ] && common+=(--reserve-gib 0.25)
	step "$arch: vram" 150 "${common[@]}" --mode vram --out "$work/dec-$arch-vram.json"
	if [ -n "$shim" ]; then
		step "$arch: shim, SPILLWAY_VRAM_LIMIT=${budget}G" 180 \
			"${shim_env[@]}" SPILLWAY_VRAM_LIMIT="${budget}G" \
			"${common[@]}" --mode shim --out "$work/dec-$arch-shim.json"
	fi
	for mode in zerocopy offload cpusplit; do
		step "$arch: $mode" 180 "${common[@]}" --mode "$mode" --out "$work/dec-$arch-$mode.json"
	done
	if [ -n "$shim" ] && [ "$arch" = "$dense" ]; then
		# The same in-VRAM run with the shim loaded and nothing to spill: its
		# overhead. Then the plain one again, to see the run-to-run spread.
		step "$arch: vram with the shim loaded, no limit" 150 "${shim_env[@]}" \
			"${common[@]}" --mode vram --label vram+shim --out "$work/dec-$arch-vramshim.json"
		step "$arch: vram again" 150 \
			"${common[@]}" --mode vram --label vram-again --out "$work/dec-$arch-vram2.json"
	fi
}

has dense && decode_set "$dense"
has moe && decode_set "$moe"

if has diag; then
	# Why the shim misses its targets on the dense model (docs/performance.md):
	# allocations under 64 MiB (activations, KV cache, the smaller weights)
	# kept in VRAM past the budget; and the CPU split with bf16 weights, as
	# stored, instead of fp32.
	dcommon=(python3 bench/decode.py --arch "$dense" --budget-gib "$budget"
		--max-decode-s "$max_decode_s")
	[ "$small" = 1 ] && dcommon+=(--reserve-gib 0.25)
	if [ -n "$shim" ]; then
		step "$dense: shim, SPILLWAY_MIN_SPILL=64M" 180 \
			"${shim_env[@]}" SPILLWAY_VRAM_LIMIT="${budget}G" SPILLWAY_MIN_SPILL=64M \
			"${dcommon[@]}" --mode shim --label shim-minspill64M \
			--out "$work/dec-$dense-shim-minspill.json"
		step "$dense: shim again" 180 "${shim_env[@]}" SPILLWAY_VRAM_LIMIT="${budget}G" \
			"${dcommon[@]}" --mode shim --out "$work/dec-$dense-shim.json"
	fi
	step "$dense: cpusplit, bf16 on the CPU (no 2048-token prefill)" 150 "${dcommon[@]}" \
		--mode cpusplit --cpu-dtype bfloat16 --prefill 0 --label cpusplit-bf16 \
		--out "$work/dec-$dense-cpusplit-bf16.json"
fi

if has gemm; then
	gargs=()
	[ "$small" = 1 ] && gargs=(--ms 1,64,2048 --reps 3)
	step "GEMM reuse of a weight in mapped host memory" 120 \
		python3 bench/gemm_reuse.py "${gargs[@]}" --out "$work/gemm.json"
fi

if has overhead || has alloc; then
	step "allocation latency, no shim" 60 "$work/bin/alloc_latency" >"$work/alloc-noshim.json"
	if [ -n "$shim" ]; then
		step "allocation latency, shim pass-through" 60 "${shim_env[@]}" \
			"$work/bin/alloc_latency" >"$work/alloc-passthrough.json"
		step "allocation latency, shim spilling (limit 2G, 2 GiB filled first)" 60 \
			"${shim_env[@]}" SPILLWAY_VRAM_LIMIT=2G \
			"$work/bin/alloc_latency" --fill-gib 2 >"$work/alloc-spilled.json"
	fi
fi
if has overhead; then
	nocache=(env PYTORCH_NO_CUDA_MEMORY_CACHING=1)
	step "allocation-heavy PyTorch loop, no shim" 60 \
		"${nocache[@]}" python3 bench/alloc_loop.py --out "$work/loop-noshim.json"
	if [ -n "$shim" ]; then
		step "allocation-heavy PyTorch loop, shim pass-through" 60 "${shim_env[@]}" \
			"${nocache[@]}" python3 bench/alloc_loop.py --out "$work/loop-passthrough.json"
		step "allocation-heavy PyTorch loop, no shim again" 60 \
			"${nocache[@]}" python3 bench/alloc_loop.py --out "$work/loop-noshim2.json"
		step "allocation-heavy PyTorch loop, shim pass-through again" 60 "${shim_env[@]}" \
			"${nocache[@]}" python3 bench/alloc_loop.py --out "$work/loop-passthrough2.json"
	fi
fi

name="$stamp-$(IFS=-; echo "${parts[*]}")"
[ "$small" = 1 ] && name="$name-small"
python3 bench/collect.py "$work" "$outdir/$name.json" || exit 1
python3 bench/chart.py "$outdir/$name.svg" "$outdir/$name.json" || exit 1
[ "${BENCH_TAR:-0}" = 1 ] && tar -C "$work" -czf "$outdir/$name-parts.tar.gz" .
say "wrote $outdir/$name.json and $outdir/$name.svg"
