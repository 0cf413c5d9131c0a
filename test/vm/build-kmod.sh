#!/bin/sh
# Builds the spillway module against one cached Debian kernel.
#
#   build-kmod.sh SERIES OUTDIR     SERIES = 6.1 | 6.12 | 7.2
#
# Copies kmod/ (or $SPILLWAY_KMOD_SRC) into OUTDIR so several kernels build at once without sharing
# objects, builds there and leaves OUTDIR/spillway.ko (or the module the sources name). Fails when
# the compiler prints a warning, or when the build read anything from the system's /usr/src.
# 7.2 needs glibc >= 2.38 and gcc >= 14: it is built inside a cached sid chroot (sid-chroot.sh).
# Env: SPILLWAY_CACHE, SPILLWAY_KMOD_SRC, SPILLWAY_MAKE_JOBS (default 1).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

log() { echo "build-kmod.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -eq 2 ] || { echo "usage: build-kmod.sh SERIES OUTDIR   (SERIES: 6.1, 6.12 or 7.2)" >&2; exit 2; }
series=$1
outdir=$2
case $series in 6.1 | 6.12 | 7.2) ;; *) die "unknown series '$series' (6.1, 6.12 or 7.2)" ;; esac

src=${SPILLWAY_KMOD_SRC:-$repo/kmod}
[ -f "$src/Kbuild" ] || [ -f "$src/Makefile" ] || die "no Kbuild or Makefile in $src"

kcache=$(sh "$here/kernels.sh" fetch "$series" | tail -n 1)
kdir=$(cd "$kcache/headers" && pwd -P)

# OUTDIR is emptied first, so it must be new, empty or one this script made.
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd -P)
if [ -n "$(ls -A "$outdir")" ] && [ ! -f "$outdir/.spillway-kmod-build" ]; then
	die "$outdir is not empty and was not made by build-kmod.sh; give a new or empty directory"
fi
find "$outdir" -mindepth 1 -delete
cp -a "$src/." "$outdir/"
touch "$outdir/.spillway-kmod-build"

jobs=${SPILLWAY_MAKE_JOBS:-1}
make_args="-C $kdir M=$outdir -j$jobs modules"
case $series in
6.12 | 7.2)
	# Debian's headers ship no vmlinux, so the BTF step is skipped, but kbuild still wants pahole.
	make_args="$make_args PAHOLE=$(command -v pahole || echo pahole)" ;;
esac

log "building $src for $series ($(cat "$kcache/release")) in $outdir"
status=0
if [ "$series" = 7.2 ]; then
	# shellcheck disable=SC2086
	sh "$here/sid-chroot.sh" run "$kdir" "$outdir" make $make_args >"$outdir/build.log" 2>&1 || status=$?
else
	# shellcheck disable=SC2086
	make $make_args >"$outdir/build.log" 2>&1 || status=$?
fi
cat "$outdir/build.log" >&2
[ "$status" -eq 0 ] || die "make failed for $series (exit $status); log in $outdir/build.log"
if grep -q 'warning:' "$outdir/build.log"; then
	grep 'warning:' "$outdir/build.log" >&2
	die "the build printed warnings for $series (see above); the module must build clean"
fi
# Kbuild's dependency files list every header a compile read: none may come from the system tree.
kroot=$(cd "$kcache/root" && pwd -P)
if cat "$outdir"/.*.cmd | sed "s#$kroot/usr/src/##g" | grep -m 3 '/usr/src/' >&2; then
	die "the build read files from the system's /usr/src (above); kernels.sh did not isolate the headers"
fi
set -- "$outdir"/*.ko
[ -f "$1" ] || die "make succeeded but left no .ko in $outdir"
log "built $*"
