#!/usr/bin/env bash
# Installs the Debian 12 packages Plexus needs to build, run and test. Idempotent: quiet and fast
# when everything is already there. Used by run.sh and test.sh; safe to run by hand.
set -euo pipefail

build_pkgs=(build-essential cmake ninja-build ccache pkg-config
  libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libspdlog-dev
  libboost-dev liblua5.4-dev libsimdjson-dev libjemalloc-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libpoppler-cpp-dev libsqlite3-dev libpq-dev libhiredis-dev nettle-dev nodejs npm)
test_pkgs=(libgtest-dev libgmock-dev curl nginx-light wrk python3 clang libclang-rt-14-dev
  iproute2 iptables openssl qpdf fonts-dejavu-core postgresql chromium prometheus redis-server)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}")
[ "${1:-}" = "--cluster" ] && want+=(postgresql redis-server)

missing=()
for p in "${want[@]}"; do
  # nodejs/npm may come from elsewhere (e.g. NodeSource): a working binary is enough.
  case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    python3) command -v python3 >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
