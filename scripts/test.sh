#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests (GoogleTest) and the
# end-to-end suites (real binary, real sockets, the official openai npm package), all via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh --test
./scripts/build.sh

# The integration suites' npm packages (the official openai SDK, grpc-js for a node written in
# JavaScript, pdf-lib for the PDFs), pinned by package-lock.json: installed again when it changes.
if [ ! -f tests/integration/node_modules/.package-lock.json ] ||
   [ tests/integration/package-lock.json -nt tests/integration/node_modules/.package-lock.json ]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
fi

cd build
ctest -j "$(nproc)" --output-on-failure "$@"
