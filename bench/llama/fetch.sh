#!/bin/sh
# Fetch llama.cpp's source as node-llama-cpp@3.21.1 bundles it (llama/gitRelease.bundle,
# tag v0.4.0 of its llama.cpp), on a machine with npm and git, and pack it as one tarball
# for a machine without internet (bench/llama/build.sh unpacks it there).
#   sh bench/llama/fetch.sh DEST_DIR       -> DEST_DIR/llama-src.tar.xz, DEST_DIR/llama-src.commit
set -eu
dest=${1:?usage: fetch.sh DEST_DIR}
version=3.21.1
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: npm pack node-llama-cpp@$version"
(cd "$tmp" && npm pack --silent "node-llama-cpp@$version" >/dev/null && tar xzf node-llama-cpp-$version.tgz package/llama)
echo "fetch.sh: $(cat "$tmp/package/llama/llama.cpp.info.json" | tr -d '\n ')"
git clone -q "$tmp/package/llama/gitRelease.bundle" "$tmp/src"
commit=$(git -C "$tmp/src" rev-parse HEAD)
echo "fetch.sh: packing commit $commit"
git -C "$tmp/src" archive --format=tar HEAD | xz -T0 -3 >"$dest/llama-src.tar.xz"
echo "$commit node-llama-cpp@$version llama/gitRelease.bundle" >"$dest/llama-src.commit"
ls -l "$dest/llama-src.tar.xz"
