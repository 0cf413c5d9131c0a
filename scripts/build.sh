#!/bin/sh
# Builds every part that npm test needs. Each part keeps its own build (a Makefile, binding.gyp,
# tsconfig.json); this only calls them, in dependency order. Kernel modules are built per kernel by
# the VM harness (test/vm/), not here.
set -e
cd "$(dirname "$0")/.."
start=$(date +%s)
# One line per part, so that a slow build on a busy machine still shows where it is.
say() { echo "build: [$(($(date +%s) - start)) s] $*" >&2; }
say "C test programs, the shim"
[ -f test/kmod/Makefile ] && make -s -C test/kmod
[ -f test/reliability/Makefile ] && make -s -C test/reliability
[ -f shim/Makefile ] && make -s -C shim
# Node's own headers ship with Debian's and NodeSource's nodejs in /usr/include/node: point
# node-gyp there so that it never tries to download them (CI has no internet).
nodedir=""
[ -f /usr/include/node/node_version.h ] && nodedir="--nodedir=/usr"
say "the native binding (node-gyp)"
[ -f cli/native/binding.gyp ] && (cd cli/native && npx --no-install node-gyp rebuild $nodedir --silent >/dev/null)
say "TypeScript: the CLI, then a type check of the tests"
[ -f cli/src/main.ts ] && npx --no-install tsc -p tsconfig.json
# The tests are TypeScript too; tap runs them without type checking, so check them here.
npx --no-install tsc -p tsconfig.tests.json
say "done"
exit 0
