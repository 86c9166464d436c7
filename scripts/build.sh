#!/usr/bin/env bash
# Configures and builds Plexus (Release, ccache, Ninja) into build/. Used by run.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
jobs="${PLEXUS_JOBS:-$(nproc)}"
# The web pages' scripts from npm (jose for the receipt page), pinned by web/package-lock.json.
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
fi
cmake --build build -j "$jobs" | grep -vE '^\[[0-9]+/[0-9]+\] ' || true
test -x build/plexus && test -x build/plexus-node
