#!/bin/sh
# Builds every part that npm test needs; each part's own build is its Makefile or tsc.
set -e
cd "$(dirname "$0")/.."
if [ -f cli/src/main.ts ]; then npx tsc -p tsconfig.json; fi
