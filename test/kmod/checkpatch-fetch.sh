#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Prints the path of checkpatch.pl from Debian's linux-source-6.1, cached under
# $SPILLWAY_CACHE/checkpatch/VERSION/ (with spelling.txt and
# const_structs.checkpatch beside it), fetching and extracting it once: the
# package is a 139 MB download and the three files come out of its tarball in
# about 20 s.  Uses the private apt state of test/vm/kernels.sh (bookworm and
# bookworm-security), so nothing is installed system-wide.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
log() { echo "checkpatch-fetch.sh: $*" >&2; }

found=$(ls -d "$CACHE"/checkpatch/*/checkpatch.pl 2>/dev/null | tail -n 1 || true)
if [ -n "$found" ]; then
	echo "$found"
	exit 0
fi
# Makes sure the 6.1 package lists exist (and the kernel, which the sparse check needs too).
sh "$here/../vm/kernels.sh" fetch 6.1 >/dev/null
aptdir=$CACHE/apt/6.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "downloading linux-source-6.1 (about 139 MB) for checkpatch.pl"
(cd "$tmp" && apt-get -q -o Dir::Etc::SourceList="$aptdir/sources.list" -o Dir::Etc::SourceParts=- \
	-o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" \
	-o Dir::State::status="$aptdir/status" -o Dir::Etc::Preferences=/dev/null \
	-o Dir::Etc::PreferencesParts=- -o APT::Architecture=amd64 \
	-o Acquire::Check-Valid-Until=false -o Acquire::Languages=none \
	download linux-source-6.1) >&2
deb=$(ls "$tmp"/linux-source-6.1_*.deb)
version=$(dpkg-deb -f "$deb" Version)
log "extracting scripts/checkpatch.pl from linux-source-6.1 $version"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-6.1.tar.xz |
	tar -xJ -C "$tmp" --strip-components=2 'linux-source-6.1/scripts/checkpatch.pl' \
		'linux-source-6.1/scripts/spelling.txt' 'linux-source-6.1/scripts/const_structs.checkpatch'
mkdir -p "$CACHE/checkpatch"
rm -rf "$CACHE/checkpatch/.new"
mkdir "$CACHE/checkpatch/.new"
mv "$tmp/checkpatch.pl" "$tmp/spelling.txt" "$tmp/const_structs.checkpatch" "$CACHE/checkpatch/.new/"
mv "$CACHE/checkpatch/.new" "$CACHE/checkpatch/$version"
echo "$CACHE/checkpatch/$version/checkpatch.pl"
