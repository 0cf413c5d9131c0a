#!/bin/sh
# Builds the Debian package spillway_VERSION_amd64.deb from a built checkout (scripts/build.sh):
# the CLI in /usr/lib/spillway with its production node_modules and native binding, `spillway` in
# /usr/bin, the shim, the module's sources for DKMS in /usr/src/spillway-VERSION, the udev rule, the
# systemd unit, man pages and bash completion generated from the command definitions.
# Layout and maintainer scripts: packaging/deb/. Lintian: docs/admin-guide.md, "The Debian package".
#   sh scripts/package.sh [OUTDIR]        (default build/deb; prints the .deb's path last)
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${1:-build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
die() { echo "package: $*" >&2; exit 1; }

upstream=$(node -p "require('./package.json').version")
debversion=$(sed -n '1s/^spillway (\([^)]*\)).*/\1/p' packaging/deb/changelog)
[ "${debversion%-*}" = "$upstream" ] || die "packaging/deb/changelog is at $debversion, package.json at $upstream: add a changelog entry"
grep -q "^PACKAGE_VERSION=\"$upstream\"" dkms.conf || die "dkms.conf's PACKAGE_VERSION is not $upstream"
for f in cli/dist/main.js cli/native/build/Release/spillway.node shim/build/libspillway-cuda.so; do
	[ -f "$f" ] || die "$f is missing: run npm run build first"
done
# Reproducible: file dates and the man pages' date from the last commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

stage=$(mktemp -d "$out/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
lib="$root/usr/lib/spillway"
src="$root/usr/src/spillway-$upstream"
doc="$root/usr/share/doc/spillway"
mkdir -p "$lib/cli/bin" "$lib/cli/native/build/Release" "$root/usr/bin" "$src" "$doc" \
	"$root/usr/lib/udev/rules.d" "$root/usr/lib/systemd/system" "$root/usr/share/man/man8" \
	"$root/usr/share/man/man5" "$root/usr/share/bash-completion/completions" "$root/DEBIAN"

# The CLI: package.json (its version, and how the CLI knows it runs from the package), the
# compiled JavaScript, the binding, and the production dependencies as npm resolved them.
cp package.json "$lib/"
cp cli/bin/spillway.js "$lib/cli/bin/"
(cd cli && find dist -name '*.js' | while read -r f; do mkdir -p "$lib/cli/$(dirname "$f")" && cp "$f" "$lib/cli/$f"; done)
install -m 0644 cli/native/build/Release/spillway.node "$lib/cli/native/build/Release/"
install -m 0644 shim/build/libspillway-cuda.so "$lib/"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib/cli/native/build/Release/spillway.node" "$lib/libspillway-cuda.so"
# node-addon-api is C++ headers for building the binding: not needed at run time.
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | grep -v '/node_modules/node-addon-api$' | while read -r dir; do
	rel=${dir#"$repo"/}
	mkdir -p "$lib/$rel"
	# Only each module's own files (nested node_modules come as their own lines), no READMEs.
	(cd "$dir" && find . -path ./node_modules -prune -o -type f ! -iname 'readme*' -print) | while read -r f; do
		mkdir -p "$lib/$rel/$(dirname "$f")"
		cp "$dir/$f" "$lib/$rel/$f"
	done
done
# Scripts in node_modules (systeminformation's cli.js) keep their #! line: make them executable.
scripts=$(grep -rl --include='*.js' '^#!' "$lib/node_modules" || true)
[ -f "$lib/node_modules/commander/package.json" ] || die "npm ls found no production node_modules: run npm ci first"
printf '#!/bin/sh\nexec /usr/bin/node /usr/lib/spillway/cli/bin/spillway.js "$@"\n' > "$root/usr/bin/spillway"
chmod 0755 "$root/usr/bin/spillway"

# The module's sources, as DKMS builds them (dkms.conf: MAKE in kmod/).
cp dkms.conf "$src/"
git ls-files -- kmod | while read -r f; do mkdir -p "$src/$(dirname "$f")" && cp "$f" "$src/$f"; done
[ -f "$src/kmod/Makefile" ] || die "git ls-files found no kmod/ sources (build from a git checkout)"

install -m 0644 udev/60-spillway.rules "$root/usr/lib/udev/rules.d/"
# Slurm's Prolog, Epilog and TaskProlog (paths without arguments): docs/cluster.md.
mkdir -p "$lib/slurm"
for hook in prolog epilog task-prolog; do
	sed 's|@SPILLWAY@|/usr/bin/spillway|' "packaging/slurm/$hook" > "$lib/slurm/$hook"
done
mkdir -p "$root/usr/lib/systemd/system/slurmd.service.d"
install -m 0644 packaging/slurm/slurmd-spillway.conf "$root/usr/lib/systemd/system/slurmd.service.d/spillway.conf"
sed -e 's|@SPILLWAY@|/usr/bin/spillway|' -e 's|^Documentation=.*|Documentation=man:spillway(8)|' \
	-e '/^# Installed by `spillway install`/,/^# "The watch daemon"/c\# Installed by the spillway package; enabled by `spillway install`. See spillway(8).' \
	systemd/spillway-watch.service > "$root/usr/lib/systemd/system/spillway-watch.service"
grep -q '@' "$root/usr/lib/systemd/system/spillway-watch.service" && die "the unit still has a @PLACEHOLDER@"

gen="$stage/gen"
node scripts/gen-docs.mjs "$gen"
gzip -9n < "$gen/spillway.8" > "$root/usr/share/man/man8/spillway.8.gz"
gzip -9n < "$gen/spillway-config.5" > "$root/usr/share/man/man5/spillway-config.5.gz"
install -m 0644 "$gen/spillway.bash-completion" "$root/usr/share/bash-completion/completions/spillway"

install -m 0644 packaging/deb/copyright "$doc/"
mkdir -p "$root/usr/share/lintian/overrides"
install -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/spillway"
gzip -9n < packaging/deb/changelog > "$doc/changelog.Debian.gz"
gzip -9n < CHANGELOG.md > "$doc/changelog.gz"
install -m 0644 README.md "$doc/"
gzip -9n < docs/admin-guide.md > "$doc/admin-guide.md.gz"
gzip -9n < docs/cluster.md > "$doc/cluster.md.gz"

# Modes as dpkg expects them; dates from SOURCE_DATE_EPOCH.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f ! -path '*/DEBIAN/*' -exec chmod 0644 {} +
chmod 0755 "$root/usr/bin/spillway" "$lib/cli/bin/spillway.js" "$lib/slurm/prolog" "$lib/slurm/epilog" "$lib/slurm/task-prolog"
[ -z "$scripts" ] || echo "$scripts" | xargs -d '\n' chmod 0755
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# The libraries the binaries link to, as Debian package names (dpkg-shlibdeps wants a debian/control).
mkdir -p "$stage/shlibs/debian"
printf 'Source: spillway\n\nPackage: spillway\nArchitecture: amd64\n' > "$stage/shlibs/debian/control"
shlibs=$(cd "$stage/shlibs" && dpkg-shlibdeps -O "$lib/cli/native/build/Release/spillway.node" "$lib/libspillway-cuda.so" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no libraries"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$debversion/" -e "s/@SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" packaging/deb/control.in > "$root/DEBIAN/control"
for script in postinst prerm postrm; do
	sed "s/@UPSTREAM_VERSION@/$upstream/" "packaging/deb/$script" > "$root/DEBIAN/$script"
	chmod 0755 "$root/DEBIAN/$script"
done
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' md5sum > DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

deb="$out/spillway_${debversion}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "package: $(du -k "$deb" | cut -f1) KiB, $(find "$root" -type f ! -path '*/DEBIAN/*' | wc -l) files" >&2
echo "$deb"
