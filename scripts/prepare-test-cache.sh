#!/bin/sh
# Fills the cache the tests read ($SPILLWAY_CACHE, default ~/.cache/spillway) before tap starts, so
# that downloads and image builds show their progress (tap holds a test file's output until the
# file ends): Debian's kernels with their download sizes, the sid chroot that 7.2's module is built
# in, and the Debian 13 image of test/package/boot.test.ts. Cached parts take no time.
set -e
cd "$(dirname "$0")/.."
start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
say() { echo "prepare: [$(($(date +%s) - start)) s] $*" >&2; }
# apt-get's "Get:N ... [SIZE]" lines name each download and its size.
for series in $(echo "${SPILLWAY_KERNELS:-6.1,6.12,7.2}" | tr ',' ' '); do
	say "kernel $series"
	{ sh test/vm/kernels.sh fetch "$series" >"$out"; } 2>&1 | grep -E '^(Get:|kernels.sh:)' >&2 || true
	dir=$(tail -1 "$out")
	[ -f "$dir/release" ] || { echo "prepare: fetching kernel $series failed: run sh test/vm/kernels.sh fetch $series" >&2; exit 1; }
	if [ "$series" = 7.2 ]; then
		say "the sid chroot 7.2's module is built in"
		sh test/vm/sid-chroot.sh prepare "$dir/headers" >/dev/null
	fi
done
say "Debian's Slurm and munge for test/slurm (the packages this machine lacks)"
{ sh test/slurm/fetch-debs.sh >"$out"; } 2>&1 | grep -E '^(Get:|slurm-debs:)' >&2 || true
[ -f "$(tail -1 "$out")/.complete" ] || { echo "prepare: fetching Slurm failed: run sh test/slurm/fetch-debs.sh" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
	say "the Debian 13 image of the package boot test"
	sh test/package/trixie-image.sh >/dev/null
fi
say "cache ready: $(du -sh "${SPILLWAY_CACHE:-$HOME/.cache/spillway}" 2>/dev/null | cut -f1)"
