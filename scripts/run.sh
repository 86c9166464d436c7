#!/usr/bin/env bash
# Installs what is missing, builds, and starts the router with one demo node beside it: a
# plexus-node serving the embedded demo model over the node port, as a GPU node would.
# Extra arguments go to the router: ./scripts/run.sh --listen 127.0.0.1:9090
# PLEXUS_DEMO_NODE=0 starts the router alone.
# ./scripts/run.sh --cluster: Redis, PostgreSQL, two routers (:8080, :8081) sharing them, and a
# demo node joined to both (docs/scale-out.md), from Debian's packages, no containers.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--cluster" ]; then
  ./scripts/deps.sh --cluster
  ./scripts/build.sh
  exec ./scripts/cluster.sh
fi
./scripts/deps.sh
./scripts/build.sh

config=examples/plexus.json
listen=127.0.0.1:8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$((i))]}" in
    --config) config="${args[$((i + 1))]}" ;;
    --listen) listen="${args[$((i + 1))]}" ;;
  esac
done
has_config=false
for a in "$@"; do [ "$a" = "--config" ] && has_config=true; done
$has_config || set -- --config "$config" "$@"

build/plexus "$@" &
router=$!
node=""
trap 'kill $router $node 2>/dev/null; wait' EXIT INT TERM
url="http://${listen}"
for _ in $(seq 100); do
  curl -fsS "${url}/healthz" >/dev/null 2>&1 && break
  kill -0 $router 2>/dev/null || exit 1
  sleep 0.1
done

if [ "${PLEXUS_DEMO_NODE:-1}" != 0 ] && [ "$config" = examples/plexus.json ]; then
  build/plexus-node --router 127.0.0.1:7070 --token nt-plexus-demo --backend demo --name demo-node \
    --models demo,demo-embed --embedding-models demo-embed \
    --backend-options '{"first_token_ms": 150, "tokens_per_second": 40}' &
  node=$!
  for _ in $(seq 100); do
    curl -fsS "${url}/v1/models" -H 'Authorization: Bearer sk-plexus-demo' 2>/dev/null | grep -q '"demo"' && break
    sleep 0.1
  done
fi

cat <<MSG
Plexus is running on ${url} with ${config}; the demo node serves model "demo" over the node port.
  demo key: sk-plexus-demo      admin key: sk-plexus-admin
  try:  curl ${url}/v1/chat/completions -H 'Authorization: Bearer sk-plexus-demo' \\
          -H 'Content-Type: application/json' \\
          -d '{"model":"demo","messages":[{"role":"user","content":"Hello"}],"stream":true}'
        curl ${url}/v1/nodes -H 'Authorization: Bearer sk-plexus-admin'
MSG
wait -n $router ${node}
