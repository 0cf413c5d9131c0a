#!/bin/sh
# A Debian sid build chroot for kernels whose kbuild tools and flags bookworm can not run
# (7.2: glibc >= 2.38, gcc >= 14). Made once with mmdebstrap, kept as a tar.zst in the cache and
# unpacked next to it.
#
#   sid-chroot.sh prepare KDIR              prints the chroot's root directory
#   sid-chroot.sh run KDIR OUTDIR CMD...    runs CMD in the chroot, cwd OUTDIR
#
# KDIR (the cached headers) and OUTDIR are bind-mounted at the same paths inside, with /proc (objtool
# reads it), in a private mount namespace so nothing stays mounted afterwards.
set -eu

CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
DEBIAN_MIRROR=${SPILLWAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "sid-chroot.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The compiler the headers were configured with, e.g. gcc-16, from Debian's .kernelvariables.
compiler_of() {
	cc=$(sed -nE 's/^CC *=.*(gcc-[0-9]+).*/\1/p' "$1/.kernelvariables" | head -n 1)
	[ -n "$cc" ] || die "no gcc-N named in $1/.kernelvariables"
	echo "$cc"
}

prepare() {
	kdir=$1
	cc=$(compiler_of "$kdir")
	name=sid-chroot-$cc
	tarball=$CACHE/$name.tar.zst
	root=$CACHE/$name
	mkdir -p "$CACHE"
	exec 8>"$CACHE/.$name.lock"
	flock 8
	if [ ! -f "$tarball" ]; then
		command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (Debian package mmdebstrap)"
		log "creating the sid build chroot $tarball (about a minute, once)"
		# make, the compiler and what the kbuild tools link against (linux-kbuild's Depends).
		# The archive snapshot this machine sees may be older than its Release files' Valid-Until.
		mmdebstrap --variant=minbase --quiet \
			--aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
			--include=make,"$cc",libc6-dev,pahole,libelf1t64,libssl3t64,zlib1g,kmod \
			sid "$tarball.tmp.tar.zst" "$DEBIAN_MIRROR" >&2 ||
			{ rm -f "$tarball.tmp.tar.zst"; die "mmdebstrap failed"; }
		mv "$tarball.tmp.tar.zst" "$tarball"
		rm -rf "$root"
	fi
	if [ ! -f "$root/.complete" ] || [ "$tarball" -nt "$root/.complete" ]; then
		log "unpacking $tarball"
		rm -rf "$root" "$root.tmp"
		mkdir -p "$root.tmp"
		zstd -dc "$tarball" | tar -x -C "$root.tmp" --numeric-owner
		mv "$root.tmp" "$root"
		touch "$root/.complete"
	fi
	flock -u 8
	echo "$root"
}

run() {
	kdir=$(cd "$1" && pwd -P)
	outdir=$(cd "$2" && pwd -P)
	shift 2
	root=$(prepare "$kdir")
	[ -f "$root/.complete" ] || die "no usable chroot at '$root'"
	# The cached kernel tree: KDIR is CACHE/kernels/SERIES/root/usr/src/linux-headers-X; its
	# symlinks point to ../../lib/linux-kbuild-X, so the whole unpacked package root goes in.
	kroot=$(cd "$kdir/../../.." && pwd -P)
	# shellcheck disable=SC2016
	unshare -m --propagation private sh -eu -c '
		root=$1 kroot=$2 outdir=$3
		shift 3
		mount -t proc proc "$root/proc"
		mount -t tmpfs tmpfs "$root/tmp"
		mkdir -p "$root$kroot" "$root$outdir"
		mount --bind "$kroot" "$root$kroot"
		mount --bind "$outdir" "$root$outdir"
		cd "$outdir"
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			LANG=C.UTF-8 sh -c "cd \"\$0\" && exec \"\$@\"" "$outdir" "$@"
	' sid-chroot "$root" "$kroot" "$outdir" "$@"
}

case ${1:-} in
prepare) [ $# -eq 2 ] || die "usage: sid-chroot.sh prepare KDIR"; prepare "$2" ;;
run) [ $# -ge 4 ] || die "usage: sid-chroot.sh run KDIR OUTDIR CMD..."; shift; run "$@" ;;
*) echo "usage: sid-chroot.sh prepare KDIR | run KDIR OUTDIR CMD..." >&2; exit 2 ;;
esac
