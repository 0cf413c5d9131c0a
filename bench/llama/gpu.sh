#!/bin/sh
# The GPU machine's side of the llama.cpp benchmark and its companions, in stages, so that one
# device call can do a build and the runs that belong with it (a fresh machine is bare).
#   OUT=/path sh bench/llama/gpu.sh STAGE...     (from a folder holding bench/, shim/, kmod/include,
#                                                 llama-src.tar.xz and, for "alloc", shim-before/)
# Stages:
#   build        llama.cpp (bench/llama/build.sh) into $LLAMA_WORK (default /tmp/llama), in the
#                background; "wait-build" waits for it
#   shim         make the shim (and shim-before/, the tree to compare with, if present)
#   models       write the dense and MoE models into $MODELS (default /dev/shm/models), weights of
#                type $WTYPE (q8_0, the default, or bf16): <model>-$WTYPE.gguf
#   dense, moe   bench/llama/run.py for that model (type $WTYPE, budget $BUDGET_GIB GiB when set,
#                else run.py's 40 % of the model) -> $OUT/<date>-llama-<model>.json (q8_0) or
#                $OUT/<date>-llama-<model>-$WTYPE.json
#   alloc        bench/alloc_latency.cu without the shim, with shim-before/ and with shim/
#   jax          bench/jax_prealloc.py without the shim and under an 8 GiB budget, each report mode
#   numa         the driver's CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID for device 0
#   bw           the GPU's read rate of pinned host memory (bench/bandwidth.cu), used for the
#                bound of the dense and moe stages after it
# Logs of every command end up in $OUT/logs.tar.gz (gathered in $BENCH_LOGS, default /tmp/bench-logs).
set -u
here=$(pwd)
out=${OUT:?set OUT}
work=${LLAMA_WORK:-/tmp/llama}
models=${MODELS:-/dev/shm/models}
wtype=${WTYPE:-q8_0}
case $wtype in
q8_0) suffix= ;;
bf16) suffix=-$wtype ;;
*)
	echo "gpu.sh: WTYPE=$wtype: expected q8_0 or bf16" >&2
	exit 2
	;;
esac
stamp=$(date -u +%Y%m%dT%H%M%SZ)
logs=${BENCH_LOGS:-/tmp/bench-logs}
mkdir -p "$logs" "$work"
shim=$here/shim/build/libspillway-cuda.so
before=$here/shim-before/build/libspillway-cuda.so
say() { echo "[$(date -u +%H:%M:%S)] gpu.sh: $*"; }
pack_logs() { tar czf "$out/logs.tar.gz" -C "$logs" . 2>/dev/null; }
trap pack_logs EXIT

for stage in "$@"; do
	case $stage in
	build)
		say "llama.cpp build started in the background"
		rm -f "$work/build.rc"
		build_started=1
		(sh bench/llama/build.sh llama-src.tar.xz "$work" >"$logs/build.txt" 2>&1; echo $? >"$work/build.rc") &
		;;
	wait-build)
		while [ ! -f "$work/build.rc" ] && [ ! -x "$work/build/bin/llama-fit-params" ]; do sleep 2; done
		while [ ! -f "$work/build.rc" ]; do sleep 2; done
		say "llama.cpp build: rc $(cat "$work/build.rc"); $(tail -1 "$logs/build.txt")"
		;;
	shim)
		make -s -C shim build/libspillway-cuda.so >"$logs/shim-make.txt" 2>&1 || { cat "$logs/shim-make.txt"; exit 1; }
		if [ -d shim-before ]; then
			make -s -C shim-before build/libspillway-cuda.so >"$logs/shim-before-make.txt" 2>&1 ||
				{ cat "$logs/shim-before-make.txt"; exit 1; }
		fi
		say "shim built"
		;;
	models)
		# gguf-py comes from the source that the build stage unpacks in the background
		if [ -n "${build_started:-}" ]; then
			while [ ! -f "$work/src.unpacked" ] && [ ! -f "$work/build.rc" ]; do sleep 1; done
		fi
		mkdir -p "$models"
		for m in dense moe; do
			[ -f "$models/$m-$wtype.gguf" ] && continue
			python3 bench/llama/make_gguf.py --gguf-py "$work/src/gguf-py" --shape $m \
				--type "$wtype" "$models/$m-$wtype.gguf" || exit 1
		done
		;;
	dense | moe)
		say "llama.cpp $stage"
		python3 bench/llama/run.py --bin "$work/build/bin" --gguf-py "$work/src/gguf-py" \
			--shim "$shim" --models-dir "$models" --shapes $stage --type "$wtype" \
			${BUDGET_GIB:+--budget-gib "$BUDGET_GIB"} \
			--out "$out/$stamp-llama-$stage$suffix.json" --work "$logs/llama-$stage$suffix" \
			--label "${LABEL:-}" ${PCIE_GBPS:+--pcie-gbps "$PCIE_GBPS"} ${RUN_ARGS:-}
		;;
	alloc)
		nvcc -O2 -arch=sm_90 -I bench -o /tmp/alloc_latency bench/alloc_latency.cu || exit 1
		{
			echo "{\"noshim\": $(/tmp/alloc_latency --iters 100 2>>"$logs/alloc.txt"),"
			if [ -f "$before" ]; then
				echo "\"before\": $(LD_PRELOAD=$before /tmp/alloc_latency --iters 100 2>>"$logs/alloc.txt"),"
			fi
			echo "\"after\": $(LD_PRELOAD=$shim /tmp/alloc_latency --iters 100 2>>"$logs/alloc.txt"),"
			echo "\"noshim2\": $(/tmp/alloc_latency --iters 100 2>>"$logs/alloc.txt")}"
		} >"$out/$stamp-alloc-latency.json"
		cat "$logs/alloc.txt"
		;;
	jax)
		for mode in none default virtual; do
			if [ $mode = none ]; then
				python3 bench/jax_prealloc.py
			else
				LD_PRELOAD=$shim SPILLWAY_VRAM_LIMIT=8G SPILLWAY_REPORT=${mode#default} \
					SPILLWAY_LOG=info:"$logs/jax-$mode.log" python3 bench/jax_prealloc.py
			fi 2>>"$logs/jax.txt" | sed "s/^/{\"mode\": \"$mode\", \"run\": /; s/\$/}/"
		done >"$out/$stamp-jax.jsonl"
		cat "$out/$stamp-jax.jsonl"
		;;
	bw)
		# The GPU's read rate of pinned host memory now, for the bound of the runs that follow
		# (it differed between machines of this kind: 51 and 32-34 GB/s).
		nvcc -O2 -arch=sm_90 -o /tmp/host_read bench/bandwidth.cu >"$logs/bw-build.txt" 2>&1 ||
			{ cat "$logs/bw-build.txt"; exit 1; }
		/tmp/host_read --modes mapped --size-gib 4 --reps 5 >"$out/$stamp-host-read.json" \
			2>"$logs/bw.txt"
		cat "$logs/bw.txt"
		pcie=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["mapped"]["read"]["median_gbps"])' \
			<"$out/$stamp-host-read.json") && export PCIE_GBPS=$pcie
		say "host read rate for the bound: ${PCIE_GBPS:-unmeasured, run.py's default}"
		;;
	numa)
		python3 -c 'import ctypes
c = ctypes.CDLL("libcuda.so.1"); c.cuInit(0); v = ctypes.c_int(-9)
rc = c.cuDeviceGetAttribute(ctypes.byref(v), 134, 0)
print("HOST_NUMA_ID rc", rc, "value", v.value)'
		;;
	*)
		echo "gpu.sh: unknown stage $stage" >&2
		exit 2
		;;
	esac
done
