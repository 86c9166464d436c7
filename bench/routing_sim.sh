#!/usr/bin/env bash
# The routing simulation (bench/routing_sim.mjs) and its plot: the traffic share of each node
# second by second while one degrades and heals, written to docs/routing-share.png.
#   ./bench/routing_sim.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh --test >/dev/null
./scripts/build.sh >/dev/null
if ! command -v gnuplot >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
fi
out=build/routing-sim
node bench/routing_sim.mjs "$out"
gnuplot <<PLOT
set terminal pngcairo size 900,420 font "sans,10"
set output "docs/routing-share.png"
set datafile separator ","
set title "Traffic share per node (balanced, 4 nodes, 16 clients): node-0 is 8x slower from 10 s to 25 s"
set xlabel "seconds"
set ylabel "share of requests"
set yrange [0:0.6]
set key outside right
set object 1 rect from 10,0 to 25,0.6 fc rgb "#f4e0e0" fs solid 0.5 noborder behind
plot for [i=2:5] "$out/degrade.csv" using 1:i with lines lw 2 title columnheader(i)
PLOT
echo "plot: docs/routing-share.png"
