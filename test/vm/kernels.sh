#!/bin/sh
# Fetches a Debian kernel (image, modules, headers, kbuild) into the spillway cache without touching
# the system's apt state or /usr/src, so modules can be built and booted for several kernels.
#
#   kernels.sh fetch SERIES     SERIES = 6.1 | 6.12 | 7.2
#
# Last stdout line: the cache dir, holding vmlinuz, lib/modules/RELEASE (also linked as modules),
# headers/ (the KDIR for make -C) and release (the uname -r string). Progress goes to stderr.
# Env: SPILLWAY_CACHE (default ~/.cache/spillway); SPILLWAY_KERNEL_REFRESH=1 re-resolves the newest
# ABI from fresh package lists even when a kernel is cached.
set -eu

CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
DEBIAN_MIRROR=${SPILLWAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SPILLWAY_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "kernels.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	echo "usage: kernels.sh fetch SERIES   (SERIES: 6.1, 6.12 or 7.2)" >&2
	exit 2
}

# Writes a private apt config for one series and refreshes its package lists when older than a day
# (or on SPILLWAY_KERNEL_REFRESH=1). Sets APT_OPTS.
apt_setup() {
	series=$1
	aptdir=$CACHE/apt/$series
	mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
	: >"$aptdir/status"
	case $series in
	6.1)
		printf 'deb [signed-by=%s] %s bookworm main\ndeb [signed-by=%s] %s bookworm-security main\n' \
			"$KEYRING" "$DEBIAN_MIRROR" "$KEYRING" "$SECURITY_MIRROR" ;;
	6.12)
		printf 'deb [signed-by=%s] %s bookworm-backports main\n' "$KEYRING" "$DEBIAN_MIRROR" ;;
	7.2)
		printf 'deb [signed-by=%s] %s sid main\n' "$KEYRING" "$DEBIAN_MIRROR" ;;
	esac >"$aptdir/sources.list.new"
	if ! cmp -s "$aptdir/sources.list.new" "$aptdir/sources.list" 2>/dev/null; then
		mv "$aptdir/sources.list.new" "$aptdir/sources.list"
		rm -f "$aptdir/updated"
	else
		rm -f "$aptdir/sources.list.new"
	fi
	APT_OPTS="-q -o Dir::Etc::SourceList=$aptdir/sources.list -o Dir::Etc::SourceParts=-
		-o Dir::State::Lists=$aptdir/lists -o Dir::Cache=$aptdir/cache
		-o Dir::State::status=$aptdir/status -o Dir::Etc::Preferences=/dev/null
		-o Dir::Etc::PreferencesParts=- -o APT::Architecture=amd64
		-o Acquire::Check-Valid-Until=false -o Acquire::Languages=none"
	if [ "${SPILLWAY_KERNEL_REFRESH:-0}" = 1 ] || [ ! -e "$aptdir/updated" ] ||
		[ -n "$(find "$aptdir/updated" -mmin +1440)" ]; then
		log "updating package lists for $series"
		# shellcheck disable=SC2086
		apt-get $APT_OPTS update >&2 || die "apt-get update failed for $series (network? mirror $DEBIAN_MIRROR)"
		touch "$aptdir/updated"
	fi
}

# Prints the newest ABI name of a series from the package lists, e.g. 6.1.0-56 or 6.12.95+deb12.
resolve_abi() {
	series=$1
	case $series in
	6.1) pattern='^linux-image-(6\.1\.0-[0-9]+)-amd64-unsigned$' ;;
	6.12) pattern='^linux-image-(6\.12\.[0-9]+\+deb[0-9]+)-amd64-unsigned$' ;;
	7.2) pattern='^linux-binary-unsigned-(7\.2\.[0-9]+\+deb[0-9]+)-amd64$' ;;
	esac
	# shellcheck disable=SC2086
	apt-cache $APT_OPTS pkgnames linux- | sed -nE "s/$pattern/\\1/p" | sort -V | tail -n 1
}

packages_for() {
	series=$1 abi=$2
	case $series in
	6.1) echo "linux-image-$abi-amd64-unsigned linux-headers-$abi-amd64 linux-headers-$abi-common linux-kbuild-6.1" ;;
	6.12) echo "linux-image-$abi-amd64-unsigned linux-headers-$abi-amd64 linux-headers-$abi-common linux-kbuild-$abi" ;;
	7.2) echo "linux-binary-unsigned-$abi-amd64 linux-modules-$abi-amd64 linux-base-$abi-amd64 linux-headers-$abi-amd64 linux-headers-$abi-common linux-kbuild-$abi" ;;
	esac
}

# Makes an unpacked tree self-contained: the headers Makefile includes the common tree by an
# absolute /usr/src path, which would silently use the system's headers if installed.
fix_paths() {
	root=$1 release=$2
	hdr=$root/usr/src/linux-headers-$release
	[ -f "$hdr/Makefile" ] || die "no headers Makefile in $hdr"
	for f in $(grep -rlE '/usr/(src|lib/linux-kbuild)' "$root/usr/src" --include=Makefile \
		--include='*.mk' --include='Kbuild*' 2>/dev/null || true); do
		sed -i -E "s#([^A-Za-z0-9_./-]|^)/usr/(src|lib/linux-kbuild)#\\1$root/usr/\\2#g" "$f"
	done
	if grep -rqE '(^|[^A-Za-z0-9_./-])/usr/src/' "$hdr/Makefile"; then
		die "absolute /usr/src path left in $hdr/Makefile"
	fi
}

fetch() {
	series=$1
	dir=$CACHE/kernels/$series
	if [ -f "$dir/.complete" ] && [ "${SPILLWAY_KERNEL_REFRESH:-0}" != 1 ]; then
		echo "$dir"
		return
	fi
	mkdir -p "$CACHE/kernels"
	# One fetch per series at a time; a second caller waits and then finds the cache complete.
	exec 9>"$CACHE/kernels/.$series.lock"
	flock 9
	if [ -f "$dir/.complete" ] && [ "${SPILLWAY_KERNEL_REFRESH:-0}" != 1 ]; then
		echo "$dir"
		return
	fi
	apt_setup "$series"
	abi=$(resolve_abi "$series")
	[ -n "$abi" ] || die "no $series kernel found in the package lists"
	release=$abi-amd64
	if [ -f "$dir/.complete" ] && [ "$(cat "$dir/release")" = "$release" ]; then
		log "$series: $release is already the newest"
		echo "$dir"
		return
	fi
	log "$series: fetching $release"
	tmp=$CACHE/kernels/.$series.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp/debs" "$tmp/root"
	trap 'rm -rf "$tmp"' EXIT
	# shellcheck disable=SC2046
	(cd "$tmp/debs" && apt-get $APT_OPTS download $(packages_for "$series" "$abi")) >&2 ||
		die "apt-get download failed for $series $abi"
	for deb in "$tmp"/debs/*.deb; do
		log "unpacking $(basename "$deb")"
		dpkg -x "$deb" "$tmp/root"
	done
	root=$dir/root
	# Paths are rewritten to the final location, then the tree is moved there.
	rm -rf "$dir.old"
	[ -e "$dir" ] && mv "$dir" "$dir.old"
	mkdir -p "$dir"
	mv "$tmp/root" "$root"
	fix_paths "$root" "$release"
	if [ -d "$root/lib/modules/$release" ]; then
		moddir=root/lib/modules/$release
	elif [ -d "$root/usr/lib/modules/$release" ]; then
		moddir=root/usr/lib/modules/$release
	else
		die "no modules for $release in the packages"
	fi
	mkdir -p "$dir/lib/modules"
	ln -s "../../$moddir" "$dir/lib/modules/$release"
	ln -s "$moddir" "$dir/modules"
	if [ -f "$root/boot/vmlinuz-$release" ]; then
		ln -s "root/boot/vmlinuz-$release" "$dir/vmlinuz"
	elif [ -f "$dir/$moddir/vmlinuz.unsigned" ]; then
		ln -s "$moddir/vmlinuz.unsigned" "$dir/vmlinuz"
	elif [ -f "$dir/$moddir/vmlinuz" ]; then
		ln -s "$moddir/vmlinuz" "$dir/vmlinuz"
	else
		die "no kernel image for $release in the packages"
	fi
	ln -s "root/usr/src/linux-headers-$release" "$dir/headers"
	# The packages ship no modules.dep (dpkg's postinst runs depmod); the initramfs needs it.
	command -v depmod >/dev/null || die "depmod is missing (Debian package kmod)"
	depmod -b "$dir" "$release" || die "depmod failed for $release"
	echo "$release" >"$dir/release"
	ls "$tmp"/debs >"$dir/packages"
	rm -rf "$dir.old" "$tmp"
	touch "$dir/.complete"
	log "$series: $release ready in $dir"
	echo "$dir"
}

[ $# -eq 2 ] || usage
[ "$1" = fetch ] || usage
case $2 in
6.1 | 6.12 | 7.2) fetch "$2" ;;
*) usage ;;
esac
