#!/bin/sh
# Assemble what bench/llama/gpu.sh needs into one folder that a device call carries (this
# project's device tool sends /work/main's tree plus the carried paths, 64 MiB in all):
#   sh bench/llama/prepare-dev.sh DEST [BEFORE_REV] [LLAMA_TARBALL]
# DEST gets bench/, shim/ (this tree's), shim-before/ (BEFORE_REV's shim, default main), kmod/include
# and llama-src.tar.xz (fetched with fetch.sh unless given). Then, on the GPU machine:
#   cd DEST && OUT=$OUT sh bench/llama/gpu.sh numa shim build jax models wait-build alloc dense
# or, for llama.cpp on BF16 models under an 8 GiB budget (the hybrid decode's comparison):
#   cd DEST && WTYPE=bf16 BUDGET_GIB=8 OUT=$OUT sh bench/llama/gpu.sh shim build models wait-build dense moe
set -eu
dest=${1:?usage: prepare-dev.sh DEST [BEFORE_REV] [LLAMA_TARBALL]}
before=${2:-main}
tarball=${3:-}
root=$(git rev-parse --show-toplevel)
mkdir -p "$dest"
rm -rf "$dest/bench" "$dest/shim" "$dest/shim-before" "$dest/kmod"
(cd "$root" && git ls-files -z bench shim kmod/include | xargs -0 tar cf -) | tar xf - -C "$dest"
# Untracked files of this worktree that gpu.sh needs are not copied: commit them first.
mkdir -p "$dest/shim-before"
(cd "$root" && git archive "$before" shim) | tar xf - -C "$dest/shim-before" --strip-components=1
if [ -n "$tarball" ]; then
	cp "$tarball" "$dest/llama-src.tar.xz"
elif [ ! -f "$dest/llama-src.tar.xz" ]; then
	sh "$root/bench/llama/fetch.sh" "$dest"
fi
du -sh "$dest"
echo "prepare-dev.sh: carry $dest; the shim to compare with is $before ($(git -C "$root" rev-parse --short "$before"))"
