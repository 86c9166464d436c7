#!/usr/bin/env bash
# What ./scripts/run.sh --cluster starts (after installing and building): Redis on :6390 and
# Debian's PostgreSQL cluster (a database and role plexus_cluster), two routers sharing them
# (examples/cluster/router-a.json on :8080, router-b.json on :8081), and one demo node joined
# to both. Ctrl-C stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

pg=$(pg_lsclusters -h | awk 'NR==1 {print $1 " " $2}')
[ -n "$pg" ] || { echo "cluster: no PostgreSQL cluster (pg_lsclusters)" >&2; exit 1; }
pg_ctlcluster $pg start 2>/dev/null || pg_ctlcluster $pg status >/dev/null
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'plexus_cluster'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE plexus_cluster LOGIN PASSWORD 'plexus_cluster'\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = 'plexus_cluster'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE DATABASE plexus_cluster OWNER plexus_cluster\""

redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/tmp/plexus-cluster-redis.log 2>&1 &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done

for r in router-a router-b; do
  build/plexus --config examples/cluster/$r.json &
  pids+=($!)
done
for port in 8080 8081; do
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
build/plexus-node --router 127.0.0.1:7070,127.0.0.1:7071 --token nt-plexus-demo --backend demo --name demo-node \
  --backend-options '{"first_token_ms": 150, "tokens_per_second": 40}' &
pids+=($!)
for port in 8080 8081; do
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/v1/models" -H 'Authorization: Bearer sk-plexus-demo' 2>/dev/null | grep -q '"demo"' && break
    sleep 0.1
  done
done

cat <<MSG
Two Plexus routers share Redis (:6390) and PostgreSQL (database plexus_cluster):
  http://127.0.0.1:8080  and  http://127.0.0.1:8081, one demo node joined to both.
  demo key: sk-plexus-demo (600 requests a minute, across both)   admin key: sk-plexus-admin
  try:  curl http://127.0.0.1:8081/v1/chat/completions -H 'Authorization: Bearer sk-plexus-demo' \\
          -H 'Content-Type: application/json' -d '{"model":"demo","messages":[{"role":"user","content":"Hello"}]}'
        curl http://127.0.0.1:8080/v1/usage -H 'Authorization: Bearer sk-plexus-admin'   # both routers' requests
MSG
wait -n "${pids[@]}"
