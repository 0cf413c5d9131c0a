#!/bin/sh
# Build llama.cpp's llama-bench, llama-completion and llama-fit-params with CUDA for sm_90
# (H100/H200) from the tarball fetch.sh made. About 4 minutes with 16 cores.
#   sh bench/llama/build.sh llama-src.tar.xz WORK_DIR     -> WORK_DIR/build/bin/
set -eu
tarball=${1:?usage: build.sh llama-src.tar.xz WORK_DIR}
work=${2:?usage: build.sh llama-src.tar.xz WORK_DIR}
arch=${CUDA_ARCH:-90}
jobs=${JOBS:-$(nproc)}
if [ -x "$work/build/bin/llama-bench" ] && [ -x "$work/build/bin/llama-completion" ] &&
	[ -x "$work/build/bin/llama-fit-params" ]; then
	echo "build.sh: $work/build/bin already built"
	exit 0
fi
mkdir -p "$work/src"
echo "build.sh: unpacking $tarball"
rm -f "$work/src.unpacked"
tar xJf "$tarball" -C "$work/src"
touch "$work/src.unpacked" # gpu.sh's models stage waits for gguf-py
echo "build.sh: configuring (CUDA arch $arch)"
cmake -S "$work/src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
	-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DGGML_CUDA_NCCL=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
	-DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF >"$work/cmake.log" 2>&1 ||
	{ tail -30 "$work/cmake.log"; exit 1; }
echo "build.sh: building with $jobs jobs"
start=$(date +%s)
cmake --build "$work/build" -j "$jobs" --target llama-bench llama-completion llama-fit-params \
	>"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
echo "build.sh: built in $(($(date +%s) - start)) s"
