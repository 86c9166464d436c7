#!/usr/bin/env bash
# The cost of the economics: one plexus with metering, the ledger and receipts (a priced
# upstream, a key with a budget) against the same plexus with the ledger and receipts off
# (metering itself is always on), both with one event loop, in front of the same mock upstream.
# Interleaved rounds of wrk (whole answers, 32 connections); CPU per request from /proc.
#   ./bench/economics.sh [seconds-per-wrk-run] [rounds]      (default 5, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5}"
ROUNDS="${2:-3}"

source bench/common.sh economics

mock_port=$(free_port)
build/bench/mock_upstream --port "$mock_port" --events 64 --interval-ms 5 >/dev/null & pids+=($!)
wait_port "$mock_port"

declare -A port pid
for mode in on off; do
  port[$mode]=$(free_port)
  enabled=$([ "$mode" = on ] && echo true || echo false)
  mkdir -p "$work/$mode"
  cat >"$work/$mode/plexus.json" <<CONF
{ "listen": "127.0.0.1:${port[$mode]}", "threads": 1,
  "limits": { "max_inflight": 100000 },
  "keys": [{ "id": "bench", "key": "sk-bench-key", "budget": 1000000000 }],
  "upstreams": [{ "name": "mock", "provider": "openai", "url": "http://127.0.0.1:$mock_port/v1", "models": ["mock"],
                  "price": { "input_per_1k": 0.5, "output_per_1k": 1.5 } }],
  "ledger": { "enabled": $enabled }, "receipts": { "enabled": $enabled },
  "log": { "access_log": false } }
CONF
  build/plexus --config "$work/$mode/plexus.json" >/dev/null 2>"$work/$mode/plexus.log" & pid[$mode]=$!; pids+=(${pid[$mode]})
  wait_port "${port[$mode]}"
done

declare -A rps cpu
for mode in on off; do rps[$mode]=""; cpu[$mode]=""; done
hz=$(getconf CLK_TCK)
for round in $(seq "$ROUNDS"); do
  for mode in on off; do
    before=$(cpu_ticks "${pid[$mode]}")
    out=$(wrk -t1 -c32 -d"${DURATION}s" -s "$work/post.lua" "http://127.0.0.1:${port[$mode]}/v1/chat/completions")
    after=$(cpu_ticks "${pid[$mode]}")
    if echo "$out" | grep -q "Non-2xx"; then echo "$mode: non-2xx responses" >&2; echo "$out" >&2; exit 1; fi
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps[$mode]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
    cpu[$mode]+="$(awk -v t=$((after - before)) -v n="$requests" -v hz="$hz" 'BEGIN {printf "%.1f", t / hz / n * 1e6}') "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
on_rps=$(echo "${rps[on]}" | median); off_rps=$(echo "${rps[off]}" | median)
on_cpu=$(echo "${cpu[on]}" | median); off_cpu=$(echo "${cpu[off]}" | median)
echo "| economics | req/s (median of $ROUNDS, 32 conns, whole) | µs of plexus CPU per request |"
echo "|---|---:|---:|"
echo "| off (metering only) | $off_rps | $off_cpu |"
echo "| on (metering, ledger, receipts) | $on_rps | $on_cpu |"
awk -v a="$on_rps" -v b="$off_rps" -v c="$on_cpu" -v d="$off_cpu" 'BEGIN {printf "\nthroughput cost: %.1f %%; CPU per request: +%.1f µs (%.1f %%). Target: <= 10 %%.\n", (1 - a / b) * 100, c - d, (c / d - 1) * 100}'
echo "ledger rows written: $(sqlite3 "$work/on/plexus-ledger.sqlite" 'SELECT COUNT(*) FROM requests' 2>/dev/null || echo '(sqlite3 CLI not installed)')"
