#!/usr/bin/env bash
# The pull path against a direct upstream, in one run, on loopback: the same mock upstream reached
# by the router directly (an "upstreams" entry) and through plexus-node processes that dialled in.
#   ./bench/nodes.sh [seconds-per-wrk-run]      (default 5)
# Then 1,000 simulated nodes heartbeating: the router's CPU and memory for its registry.
# Prints markdown; docs/performance.md keeps the latest figures with the method.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5}"
NODES="${NODES:-20}"
SWARM="${SWARM:-1000}"

source bench/common.sh bench-nodes
(cd tests/integration && npm ci --silent >/dev/null 2>&1 || npm install --silent >/dev/null)


mock_port=$(free_port)
build/bench/mock_upstream --port "$mock_port" --events 64 --interval-ms 5 >/dev/null & pids+=($!)
wait_port "$mock_port"

# One router, one event loop: the mock as a direct upstream ("direct"), and a node port where
# plexus-node processes serve the same mock as model "pulled". The ledger and receipts are off:
# both paths would pay the same for them (bench/economics.sh measures them).
api_port=$(free_port)
node_port=$(free_port)
cat >"$work/router.json" <<CONF
{ "listen": "127.0.0.1:$api_port", "threads": 1,
  "limits": { "max_inflight": 100000 },
  "ledger": { "enabled": false }, "receipts": { "enabled": false },
  "keys": [{ "id": "bench", "key": "sk-bench-key" }],
  "upstreams": [{ "name": "mock", "provider": "openai", "url": "http://127.0.0.1:$mock_port/v1", "models": ["direct"],
                  "status_interval_s": 0 }],
  "nodes": { "listen": "127.0.0.1:$node_port", "queue_limit": 100000 },
  "node_tokens": [{ "id": "bench", "token": "nt-bench-token" }],
  "log": { "level": "warn", "access_log": false } }
CONF
build/plexus --config "$work/router.json" >/dev/null 2>"$work/router.log" & router=$!; pids+=($router)
wait_port "$api_port"
start_nodes() {  # count
  for i in $(seq "$1"); do
    build/plexus-node --router 127.0.0.1:$node_port --token nt-bench-token --name "bench-$i" \
      --backend "http://127.0.0.1:$mock_port/v1" --provider openai --models pulled --max-concurrency 64 \
      --log-level warn 2>>"$work/nodes.log" & pids+=($!)
  done
  for _ in $(seq 200); do
    n=$(curl -s "http://127.0.0.1:$api_port/v1/models" -H 'Authorization: Bearer sk-bench-key' | grep -c '"pulled"' || true)
    [ "$n" -ge 1 ] && [ "$(grep -c 'joined' "$work/nodes.log" 2>/dev/null || true)" -ge 0 ] && break
    sleep 0.05
  done
}

# The mock answers whatever model it is asked for; the two paths differ only in how they get there.
post() { cat >"$work/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-key"
wrk.body = '{"model":"$1","messages":[{"role":"user","content":"Benchmark me, please."}],"max_tokens":64}'
LUA
}
post direct; post pulled
wrk_rps() { wrk -t1 -c"$2" -d"${DURATION}s" -s "$work/$1.lua" "http://127.0.0.1:$api_port/v1/chat/completions" | awk '/Requests\/sec/ {printf "%.0f", $2}'; }
streams() {  # model concurrency rounds -> "ttfb_p50 ttfb_p99 total_p50 chunk_offset_mean"
  build/bench/stream_client --url "http://127.0.0.1:$api_port/v1/chat/completions" --concurrency "$2" --rounds "$3" \
    --key sk-bench-key --model "$1" | tr ' ' '\n' |
    awk -F= '$1=="ttfb_p50_ms"{a=$2} $1=="ttfb_p99_ms"{b=$2} $1=="total_p50_ms"{c=$2} $1=="chunk_offset_mean_ms"{d=$2} END {print a, b, c, d}'
}

start_nodes 1
echo "## Pull path vs direct upstream (one router loop; the same mock behind both)"
echo
echo "| streams | TTFB p50 direct / pull (ms) | added TTFB p50 (µs) | TTFB p99 direct / pull (ms) | last byte p50 direct / pull (ms) | added per-chunk latency (µs) |"
echo "|---:|---|---:|---|---|---:|"
for c in 1 50; do
  rounds=$([ "$c" = 1 ] && echo "${ROUNDS1:-100}" || echo 3)
  read -r d50 d99 dt doff <<<"$(streams direct $c $rounds)"
  read -r p50 p99 pt poff <<<"$(streams pulled $c $rounds)"
  echo "| $c | $d50 / $p50 | $(awk -v a=$p50 -v b=$d50 'BEGIN{printf "%+.0f", (a-b)*1000}') | $d99 / $p99 | $dt / $pt | $(awk -v a=$poff -v b=$doff 'BEGIN{printf "%+.0f", (a-b)*1000}') |"
done
echo
echo "Added per-chunk latency: how much later than the first event each later event arrives (mean over"
echo "every later event of every stream), pull path minus direct: what relaying a chunk costs beyond"
echo "what the added TTFB already counts."
echo

start_nodes $((NODES - 1))
sleep 1
node_pids=$(pgrep -f "plexus-node --router 127.0.0.1:$node_port" | tr '\n' ' ')
nodes_ticks() { local t=0; for p in $node_pids; do t=$((t + $(cpu_ticks "$p"))); done; echo $t; }
measure() {  # model -> "rps router_us_per_request nodes_us_per_request"
  local r0 n0 out r1 n1 requests
  r0=$(cpu_ticks $router); n0=$(nodes_ticks)
  out=$(wrk -t1 -c64 -d"${DURATION}s" -s "$work/$1.lua" "http://127.0.0.1:$api_port/v1/chat/completions")
  r1=$(cpu_ticks $router); n1=$(nodes_ticks)
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" \
       "$(awk -v t=$((r1 - r0)) -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t * 1e6 / hz / n}')" \
       "$(awk -v t=$((n1 - n0)) -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t * 1e6 / hz / n}')"
}
read -r direct_rps direct_cpu _ <<<"$(measure direct)"
read -r pulled_rps pulled_cpu nodes_cpu <<<"$(measure pulled)"
echo "## Whole completions through $NODES pull nodes (wrk -c64, ${DURATION}s)"
echo
echo "| direct req/s | pull req/s | pull/direct | router CPU µs/request direct / pull | nodes' CPU µs/request |"
echo "|---:|---:|---:|---|---:|"
echo "| $direct_rps | $pulled_rps | $(awk -v a=$pulled_rps -v b=$direct_rps 'BEGIN{printf "%.2f", a/b}') | $direct_cpu / $pulled_cpu | $nodes_cpu |"
echo

# A fresh router for the registry: nothing but $SWARM simulated nodes heartbeating.
swarm_api=$(free_port); swarm_nodes=$(free_port)
sed -e "s/:$api_port/:$swarm_api/" -e "s/:$node_port/:$swarm_nodes/" "$work/router.json" >"$work/swarm.json"
build/plexus --config "$work/swarm.json" >/dev/null 2>"$work/swarm.log" & swarm_router=$!; pids+=($swarm_router)
wait_port "$swarm_api"
swarm_measure $swarm_router $swarm_nodes "$SWARM" 20
echo "## $SWARM registered nodes heartbeating every 2 s (simulated, loopback)"
echo
echo "| router CPU (% of one core) | RSS idle / with $SWARM nodes (MiB) | RSS per node (KiB) |"
echo "|---:|---|---:|"
echo "| $swarm_cpu | $(awk -v a=$swarm_rss0 -v b=$swarm_rss1 'BEGIN{printf "%.1f / %.1f", a/1024, b/1024}') | $(awk -v a=$swarm_rss0 -v b=$swarm_rss1 -v n=$SWARM 'BEGIN{printf "%.1f", (b-a)/n}') |"
