#!/bin/bash
# The hybrid decode benchmark (python/spillway, issue 16): every configuration of one model in
# one run, each in its own process (bench/decode.py), then one JSON file, an SVG chart and the
# Markdown tables (bench/hybrid_collect.py).
#
#   bash bench/hybrid.sh ARCH [CONFIG...]
#
# ARCH: dense, moe (or dense-small, moe-small to check the harness). CONFIGS (default: all):
# vram shim cpusplit cpusplit-bf16 offload hybrid. Environment: OUTDIR (bench/results),
# BUDGET_GIB (8), MAX_DECODE_S (6), PROMPT (512), CHECK_TOKENS (32), DEADLINE_S (0 = none;
# seconds from the start: later steps are shortened or skipped), SHIM (libspillway-cuda.so;
# built when missing; "none" skips it).
set -u -o pipefail
export PYTHONUNBUFFERED=1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
arch=${1:?usage: hybrid.sh ARCH [CONFIG...]}
shift
configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=(vram shim cpusplit cpusplit-bf16 offload hybrid)
outdir=${OUTDIR:-$here/results}
work=$(mktemp -d /tmp/spillway-hybrid.XXXXXX)
mkdir -p "$outdir"
budget=${BUDGET_GIB:-8}
deadline=${DEADLINE_S:-0}
t0=$SECONDS
say() { echo "== $*" >&2; }

shim=${SHIM:-$repo/shim/build/libspillway-cuda.so}
if [ "$shim" != none ] && [ ! -f "$shim" ] && [ -f shim/Makefile ]; then
	say "building the shim"
	make -C shim build/libspillway-cuda.so CUDA_INC=/usr/local/cuda/include \
		>"$work/shim-build.log" 2>&1 || say "shim build failed: $(tail -3 "$work/shim-build.log")"
fi
[ -f "$shim" ] || shim=""

common=(python3 bench/decode.py --arch "$arch" --budget-gib "$budget"
	--max-decode-s "${MAX_DECODE_S:-6}" --prompt "${PROMPT:-512}")
case $arch in *-small) common+=(--reserve-gib 0.25) ;; esac

step() { # NAME MAX_S CMD...
	local name=$1 max=$2 rc
	shift 2
	if [ "$deadline" -gt 0 ]; then
		local left=$((deadline - (SECONDS - t0) - 15))
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
	[ $rc -ne 0 ] && echo "$name: exit $rc (124 = time limit of ${max} s)" >>"$work/steps.txt"
	return $rc
}

for c in "${configs[@]}"; do
	out="$work/dec-$arch-$c.json"
	case $c in
	vram) step "$arch: vram" 120 "${common[@]}" --mode vram --out "$out" ;;
	shim)
		if [ -n "$shim" ]; then
			step "$arch: shim" 150 env LD_PRELOAD="$shim" SPILLWAY_BACKEND=host \
				SPILLWAY_VRAM_LIMIT="${budget}G" "${common[@]}" --mode shim --prefill 0 --out "$out"
		else
			echo "shim: no libspillway-cuda.so" >>"$work/steps.txt"
		fi ;;
	cpusplit) step "$arch: cpusplit fp32" 150 "${common[@]}" --mode cpusplit --prefill 0 --out "$out" ;;
	cpusplit-bf16)
		step "$arch: cpusplit bf16" 150 "${common[@]}" --mode cpusplit --cpu-dtype bfloat16 \
			--label cpusplit-bf16 --prefill 0 --out "$out" ;;
	offload) step "$arch: offload (accelerate)" 150 "${common[@]}" --mode offload --out "$out" ;;
	hybrid)
		step "$arch: hybrid" "${HYBRID_MAX_S:-180}" "${common[@]}" --mode hybrid \
			--check-tokens "${CHECK_TOKENS:-32}" --out "$out" ;;
	*) echo "unknown configuration $c" >&2 ;;
	esac
done

name="$(date -u +%Y%m%dT%H%M%SZ)-hybrid-$arch"
python3 bench/hybrid_collect.py "$work" "$outdir/$name.json" "$outdir/$name.svg"
