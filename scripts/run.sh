#!/usr/bin/env bash
# Installs what is missing, builds, and starts the router with the embedded demo node.
# Extra arguments go to the binary: ./scripts/run.sh --listen 127.0.0.1:9090
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
./scripts/build.sh

config=examples/plexus.json
listen=127.0.0.1:8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --config) config="${args[$((i + 1))]}" ;;
    --listen) listen="${args[$((i + 1))]}" ;;
  esac
done
has_config=false
for a in "$@"; do [ "$a" = "--config" ] && has_config=true; done
$has_config || set -- --config "$config" "$@"

url="http://${listen}"
cat <<MSG
Plexus is starting on ${url} with ${config}.
  demo key: sk-plexus-demo      model: demo
  try:  curl ${url}/v1/chat/completions -H 'Authorization: Bearer sk-plexus-demo' \\
          -H 'Content-Type: application/json' \\
          -d '{"model":"demo","messages":[{"role":"user","content":"Hello"}],"stream":true}'
MSG
exec build/plexus "$@"
