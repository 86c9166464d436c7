#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests (GoogleTest) and the
# end-to-end suites (real binary, real sockets, the official openai npm package), all via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh --test
./scripts/build.sh

# The integration suites' one dependency, the official openai SDK, pinned by package-lock.json.
if [ ! -d tests/integration/node_modules/openai ]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
fi

cd build
ctest -j "$(nproc)" --output-on-failure "$@"
