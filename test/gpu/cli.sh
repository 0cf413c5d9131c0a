#!/bin/sh
# The spillway command on a GPU machine (issue 5): status, doctor and pool sizing see the real GPU,
# and `spillway run --vram-limit` runs PyTorch under the shim with the same results as without it.
# Run from the repository root:  OUT=/some/dir NODE=/path/to/node sh test/gpu/cli.sh
# Needs the built CLI (cli/dist, cli/native/build) and node_modules; writes cli-log.txt and
# cli-results.txt to $OUT; exits non-zero when a check fails.
set -u
OUT=${OUT:-/tmp/spillway-gpu}
NODE=${NODE:-node}
mkdir -p "$OUT"
LOG="$OUT/cli-log.txt"
RES="$OUT/cli-results.txt"
: >"$LOG"
: >"$RES"
S="$NODE cli/bin/spillway.js"
T=$(mktemp -d)
fail=0
say() { echo "$*" | tee -a "$RES"; }
check() { # check NAME TEST...: records PASS or FAIL for a test command
	name=$1
	shift
	if "$@" >>"$LOG" 2>&1; then say "PASS $name"; else say "FAIL $name"; fail=1; fi
}
# step NAME ARGS...: runs spillway ARGS; output to $T/NAME.txt and the log, exit status to $T/NAME.rc
step() {
	name=$1
	shift
	echo "+ spillway $*" >>"$LOG"
	$S "$@" >"$T/$name.txt" 2>&1
	echo $? >"$T/$name.rc"
	cat "$T/$name.txt" >>"$LOG"
}
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }

say "date: $(date -u +%Y-%m-%dT%H:%MZ)"
say "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version,pcie.link.gen.max,pcie.link.width.max --format=csv,noheader)"
say "node: $($NODE --version), spillway $($S --version)"
CUDA_INC=$(dirname "$(command -v nvcc)")/../include
[ -f shim/build/libspillway-cuda.so ] || make -s -C shim CUDA_INC="$CUDA_INC" >>"$LOG" 2>&1

step status-text status
step status status --json
step doctor-text doctor
step doctor doctor --json
step pool-auto pool auto --dry-run --json
vram_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
say "nvidia-smi: $vram_mib MiB VRAM"
check "status exits 0 without the module" test "$(cat "$T/status.rc")" = 0
check "status: the module is not loaded (no module on this machine)" \
	test "$(json_get "$T/status.txt" 'd["module"]["loaded"]')" = False
check "status: the GPU with the VRAM nvidia-smi reports" \
	test "$(json_get "$T/status.txt" 'd["gpus"][0]["vramBytes"] >> 20')" = "$vram_mib"
check "doctor: the NVIDIA driver check passes" \
	test "$(json_get "$T/doctor.txt" '[c["verdict"] for c in d["checks"] if c["id"] == "nvidia-driver"][0]')" = pass
check "doctor: the PCIe link check passes" \
	test "$(json_get "$T/doctor.txt" '[c["verdict"] for c in d["checks"] if c["id"] == "pcie-link"][0]')" = pass
check "pool auto: sized from the GPU's VRAM" \
	sh -c "grep -q 'twice the VRAM' '$T/pool-auto.txt'"
# PyTorch, 8 GiB of tensors: plain, then through `spillway run --vram-limit 4G`.
PYTHONUNBUFFERED=1 python3 test/gpu/torch_spill.py plain 8 >"$T/torch-plain.txt" 2>&1
echo "+ spillway run --vram-limit 4G -- python3 test/gpu/torch_spill.py shim 8" >>"$LOG"
PYTHONUNBUFFERED=1 $S run --vram-limit 4G -- python3 test/gpu/torch_spill.py shim 8 >"$T/torch-run.txt" 2>&1
echo $? >"$T/torch-run.rc"
cat "$T/torch-plain.txt" "$T/torch-run.txt" >>"$LOG"
last_json() { sed -n 's/^TORCH //p' "$1" | tail -1 >"$1.json"; }
last_json "$T/torch-plain.txt"
last_json "$T/torch-run.txt"
check "run: the job exits 0" test "$(cat "$T/torch-run.rc")" = 0
check "run: the shim was preloaded and spilled" test "$(json_get "$T/torch-run.txt.json" 'd.get("shim_spill_mib", 0) > 0')" = True
sha_plain=$(json_get "$T/torch-plain.txt.json" 'd["sha256"]')
check "run: SHA-256 equal to the run without the shim" \
	test -n "$sha_plain" -a "$(json_get "$T/torch-run.txt.json" 'd["sha256"]')" = "$sha_plain"
say "run: $(json_get "$T/torch-run.txt.json" '"spilled %d MiB, torch reserved %d MiB, mem_get_info %s" % (d["shim_spill_mib"], d["torch_reserved_mib"], d["mem_get_info_mib"])')"

# --oom-safe needs a writable cgroup v2 tree; where there is none the message must say so.
step run-oom-safe run --oom-safe -- true
say "run --oom-safe: exit $(cat "$T/run-oom-safe.rc"): $(head -3 "$T/run-oom-safe.txt" | tr '\n' ' ')"
rm -rf "$T"
exit $fail
