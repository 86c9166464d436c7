#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests (GoogleTest) and the
# end-to-end suites (real binary, real sockets, the official openai npm package), all via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh --test
./scripts/build.sh

# PostgreSQL, for the ledger's tests on it: Debian's cluster, started here, and a test role.
cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1 " " $2}')
[ -n "$cluster" ] || { echo "test.sh: no PostgreSQL cluster (pg_lsclusters)" >&2; exit 1; }
pg_ctlcluster $cluster start 2>/dev/null || pg_ctlcluster $cluster status >/dev/null
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'plexus_test'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE plexus_test LOGIN SUPERUSER PASSWORD 'plexus_test'\""
export PLEXUS_TEST_POSTGRES="postgresql://plexus_test:plexus_test@127.0.0.1:$(pg_lsclusters -h | awk 'NR==1 {print $3}')/postgres"

# The integration suites' npm packages (the official openai SDK, grpc-js for a node written in
# JavaScript, pdf-lib for the PDFs), pinned by package-lock.json: installed again when it changes.
if [ ! -f tests/integration/node_modules/.package-lock.json ] ||
   [ tests/integration/package-lock.json -nt tests/integration/node_modules/.package-lock.json ]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
fi

cd build
ctest -j "$(nproc)" --output-on-failure "$@"
