#!/bin/sh
# Fetches Debian bookworm's Slurm (slurmctld, slurmd, slurm-client) and munge, with every dependency
# this machine lacks, into the test cache, for test/slurm/slurm.test.ts: the VM guest sees this
# machine's root (read-only, under a tmpfs overlay) and unpacks them there. The system's apt
# state is not touched: private lists under $SPILLWAY_CACHE/apt/slurm; dependencies are resolved
# against this machine's dpkg status, which is the guest's.
#
#   sh test/slurm/fetch-debs.sh      last stdout line: the directory of .debs; progress on stderr
#
# Env: SPILLWAY_CACHE (default ~/.cache/spillway), SPILLWAY_DEBIAN_MIRROR, SPILLWAY_SECURITY_MIRROR.
set -eu

CACHE=${SPILLWAY_CACHE:-$HOME/.cache/spillway}
DEBIAN_MIRROR=${SPILLWAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SPILLWAY_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PACKAGES="slurmctld slurmd slurm-client munge"

log() { echo "slurm-debs: $*" >&2; }
die() { log "error: $*"; exit 1; }

dir=$CACHE/slurm/debs
if [ -f "$dir/.complete" ]; then
	echo "$dir"
	exit 0
fi
mkdir -p "$CACHE/slurm"
exec 9>"$CACHE/slurm/.lock"
flock 9
if [ -f "$dir/.complete" ]; then
	echo "$dir"
	exit 0
fi

aptdir=$CACHE/apt/slurm
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
printf 'deb [signed-by=%s] %s bookworm main\ndeb [signed-by=%s] %s bookworm-security main\n' \
	"$KEYRING" "$DEBIAN_MIRROR" "$KEYRING" "$SECURITY_MIRROR" >"$aptdir/sources.list"
APT_OPTS="-q -o Dir::Etc::SourceList=$aptdir/sources.list -o Dir::Etc::SourceParts=-
	-o Dir::State::Lists=$aptdir/lists -o Dir::Cache=$aptdir/cache
	-o Dir::State::status=/var/lib/dpkg/status -o Dir::Etc::Preferences=/dev/null
	-o Dir::Etc::PreferencesParts=- -o APT::Architecture=amd64 -o Debug::NoLocking=1
	-o Acquire::Check-Valid-Until=false -o Acquire::Languages=none"
log "updating package lists (bookworm, bookworm-security)"
# shellcheck disable=SC2086
apt-get $APT_OPTS update >&2 || die "apt-get update failed (network? mirror $DEBIAN_MIRROR)"
# What installing them here would add: "Inst NAME (VERSION ...)" lines of a simulated install.
# shellcheck disable=SC2086
wanted=$(apt-get $APT_OPTS -s install --no-install-recommends $PACKAGES |
	sed -n 's/^Inst \([^ ]*\) \(\[[^]]*\] \)\?(\([^ ]*\) .*/\1=\3/p') ||
	die "apt-get could not resolve $PACKAGES against this machine's packages"
[ -n "$wanted" ] || die "apt-get resolved nothing to install for $PACKAGES"
log "fetching $(echo "$wanted" | wc -l) packages: $(echo "$wanted" | sed 's/=.*//' | tr '\n' ' ')"
tmp=$CACHE/slurm/.debs.tmp.$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2046,SC2086
(cd "$tmp" && apt-get $APT_OPTS download $(echo "$wanted")) >&2 || die "apt-get download failed"
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "$(du -sh "$dir" | cut -f1) in $dir"
echo "$dir"
