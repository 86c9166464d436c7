#!/usr/bin/env bash
# The way to internet scale, simulated: one router (one event loop) with 1,000 to 10,000 simulated
# nodes joined over the node protocol (bench/node_swarm.mjs), heartbeating every 2 s with a GPU
# reading. For each size: the router's CPU for its registry, and its memory per node. (What a
# routing decision costs among that many candidates: build/bench/routing_bench.) The liveness
# timeout is a minute: the swarm, one Node.js process, falls behind on heartbeats while 10,000
# streams join on this 2-core machine, and the router would rightly cut those nodes off.
# Writes docs/scale-out-nodes.png (gnuplot) and prints the table docs/scale-out.md keeps.
#   ./bench/scale_sim.sh            (SIZES="1000 2500 5000 10000")
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-1000 2500 5000 10000}"
source bench/common.sh bench-scale
(cd tests/integration && npm ci --silent >/dev/null 2>&1 || npm install --silent >/dev/null)
echo "| nodes | router CPU, heartbeats only (% of one core) | RSS per node (KiB) |"
echo "|---:|---:|---:|"
: >"$work/points"
for n in $SIZES; do
  api=$(free_port); nodes=$(free_port)
  cat >"$work/router.json" <<CONF
{ "listen": "127.0.0.1:$api", "threads": 1,
  "keys": [{ "id": "bench", "key": "sk-bench-key" }],
  "nodes": { "listen": "127.0.0.1:$nodes", "liveness_timeout_ms": 60000 },
  "node_tokens": [{ "id": "bench", "token": "nt-bench-token" }],
  "ledger": { "enabled": false }, "receipts": { "enabled": false },
  "log": { "level": "warn", "access_log": false } }
CONF
  build/plexus --config "$work/router.json" >/dev/null 2>"$work/router.log" & router=$!
  wait_port "$api"
  swarm_measure $router $nodes "$n" 10 100
  per=$(awk -v a=$swarm_rss0 -v b=$swarm_rss1 -v n=$n 'BEGIN{printf "%.1f", (b-a)/n}')
  echo "| $n | $swarm_cpu | $per |"
  echo "$n $swarm_cpu $per" >>"$work/points"
  kill $swarm_pid $router 2>/dev/null; wait $swarm_pid $router 2>/dev/null || true
done
gnuplot <<PLOT
set terminal pngcairo size 900,400 font "sans,10"
set output "docs/scale-out-nodes.png"
set title "One router (one event loop), simulated nodes heartbeating every 2 s"
set xlabel "nodes joined"
set ylabel "router CPU, % of one core"
set y2label "RSS per node (KiB)"
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
set key left top
set grid
plot "$work/points" using 1:2 with linespoints lw 2 title "CPU (heartbeats, registry)", \
     "$work/points" using 1:3 axes x1y2 with linespoints lw 2 title "memory per node"
PLOT
echo
echo "plot: docs/scale-out-nodes.png"
