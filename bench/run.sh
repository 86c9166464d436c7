#!/usr/bin/env bash
# Measures plexus against the upstream direct and against nginx as a plain reverse proxy, in one
# run, on loopback, all three in front of the same fast mock upstream (bench/mock_upstream.cc).
#   ./bench/run.sh [seconds-per-wrk-run]      (default 5)
# Prints a markdown table; docs/performance.md keeps the latest one with the method.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5}"

source bench/common.sh bench



# 1. The mock upstream: canned whole answers; streams of 64 events, 5 ms apart.
mock_port=$(free_port)
build/bench/mock_upstream --port "$mock_port" --events 64 --interval-ms 5 >/dev/null & pids+=($!)
wait_port "$mock_port"

# 2. nginx, one worker, as a plain streaming reverse proxy with upstream keep-alive.
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 65536;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream mock { server 127.0.0.1:$mock_port; keepalive 1024; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & nginx_master=$!; pids+=($nginx_master)
wait_port "$nginx_port"
nginx_worker=$(pgrep -P "$nginx_master" | head -1)

# 3. plexus: one event loop (threads: 1), auth and access log on; and the same with two loops.
#    The ledger and receipts are off: nginx does nothing like them, and bench/economics.sh
#    measures what they add to a request.
plexus_port=$(free_port)
cat >"$work/plexus.json" <<CONF
{ "listen": "127.0.0.1:$plexus_port", "threads": 1,
  "limits": { "max_inflight": 100000 },
  "ledger": { "enabled": false }, "receipts": { "enabled": false },
  "keys": [{ "id": "bench", "key": "sk-bench-key" }],
  "upstreams": [{ "name": "mock", "provider": "openai", "url": "http://127.0.0.1:$mock_port/v1", "models": ["mock"] }] }
CONF
build/plexus --config "$work/plexus.json" >/dev/null 2>"$work/plexus.log" & plexus_pid=$!; pids+=($plexus_pid)
wait_port "$plexus_port"
plexus2_port=$(free_port)
sed -e "s/:$plexus_port/:$plexus2_port/" -e 's/"threads": 1/"threads": 2/' "$work/plexus.json" >"$work/plexus2.json"
build/plexus --config "$work/plexus2.json" >/dev/null 2>"$work/plexus2.log" & pids+=($!)
wait_port "$plexus2_port"

# 4. plexus again, with three plugins: sticky routing (on_request + on_route), hot-then-least-
#    loaded (on_route) and the redaction filter (on_chunk, on every chunk).
plexus3_port=$(free_port)
root=$(pwd)
cat >"$work/plexus3.json" <<CONF
{ "listen": "127.0.0.1:$plexus3_port", "threads": 1,
  "limits": { "max_inflight": 100000 },
  "ledger": { "enabled": false }, "receipts": { "enabled": false },
  "keys": [{ "id": "bench", "key": "sk-bench-key" }],
  "upstreams": [{ "name": "mock", "provider": "openai", "url": "http://127.0.0.1:$mock_port/v1", "models": ["mock"] }],
  "plugins": [
    { "name": "sticky", "type": "lua", "path": "$root/examples/policies/sticky_user.lua" },
    { "name": "hot", "type": "lua", "path": "$root/examples/policies/hot_then_least_loaded.lua" },
    { "name": "redact", "type": "lua", "path": "$root/examples/plugins/redact.lua" } ] }
CONF
build/plexus --config "$work/plexus3.json" >/dev/null 2>"$work/plexus3.log" & pids+=($!)
wait_port "$plexus3_port"

declare -A url=([direct]="http://127.0.0.1:$mock_port" [nginx]="http://127.0.0.1:$nginx_port" [plexus]="http://127.0.0.1:$plexus_port" [plexus2]="http://127.0.0.1:$plexus2_port" [plexus3]="http://127.0.0.1:$plexus3_port")
declare -A cpu_pid=([nginx]="$nginx_worker" [plexus]="$plexus_pid")
declare -A R

to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.3f", v}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
wrk_once() {  # target conns -> "rps p50_ms p99_ms cpu_us_per_request"
  local pid="${cpu_pid[$1]:-}" before after out requests
  before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency -s "$work/post.lua" "${url[$1]}/v1/chat/completions")
  after=$(cpu_ticks "$pid")
  if echo "$out" | grep -q "Non-2xx"; then echo "$1: non-2xx responses" >&2; echo "$out" >&2; exit 1; fi
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}') $(echo "$out" | awk '$1=="50%" {print $2}' | to_ms) $(echo "$out" | awk '$1=="99%" {print $2}' | to_ms)" \
       "$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print 0 }')"
}
stream_run() {  # target concurrency rounds: sets R[target.sCONCURRENCY.field]
  local out; out=$(build/bench/stream_client --url "${url[$1]}/v1/chat/completions" --concurrency "$2" --rounds "$3" --key sk-bench-key)
  for f in ttfb_p50_ms ttfb_p99_ms total_p50_ms total_p99_ms; do
    R[$1.s$2.$f]=$(echo "$out" | tr ' ' '\n' | awk -F= -v k=$f '$1==k {print $2}')
  done
}
rss_kb() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }

# Whole completions: the three targets interleaved, ROUNDS times, medians reported (this kind of
# VM drifts by 2x between runs; interleaving keeps the comparison fair).
ROUNDS="${ROUNDS:-3}"
rss_idle=$(rss_kb "$plexus_pid")
for c in 1 32 128; do
  declare -A rps=() p50=() p99=() cpu=()
  for _ in $(seq "$ROUNDS"); do
    for t in direct nginx plexus plexus2; do
      [ "$t" = plexus2 ] && [ "$c" = 1 ] && continue
      read -r a b d e <<<"$(wrk_once "$t" "$c")"
      rps[$t]+=" $a"; p50[$t]+=" $b"; p99[$t]+=" $d"; cpu[$t]+=" $e"
    done
  done
  for t in direct nginx plexus plexus2; do
    [ -z "${rps[$t]:-}" ] && continue
    R[$t.$c.rps]=$(echo "${rps[$t]}" | median); R[$t.$c.p50]=$(echo "${p50[$t]}" | median); R[$t.$c.p99]=$(echo "${p99[$t]}" | median)
    R[$t.$c.cpu]=$(echo "${cpu[$t]}" | median)
  done
  unset rps p50 p99 cpu
done

# Paced streams: the three targets interleaved at each concurrency, STREAM_ROUNDS times, medians
# reported (run one target's whole series after another's and the VM's drift between them
# decides the comparison). Each size starts with one burst per target that is not measured: the
# first burst of a size grows the proxies' upstream pools (measured by hand: 30 ms TTFB p50 at 200
# streams against 10-12 in the bursts after it, for nginx and plexus alike).
declare -A stream_rounds=([1]=10 [50]=2 [200]=1 [500]=1)
STREAM_ROUNDS="${STREAM_ROUNDS:-5}"
for c in 1 50 200 500; do
  declare -A samples=()
  for t in direct nginx plexus; do stream_run "$t" "$c" 1; done
  for _ in $(seq "$STREAM_ROUNDS"); do
    for t in direct nginx plexus; do
      stream_run "$t" "$c" "${stream_rounds[$c]}"
      for f in ttfb_p50_ms ttfb_p99_ms total_p50_ms total_p99_ms; do samples[$t.$f]+=" ${R[$t.s$c.$f]}"; done
    done
  done
  for t in direct nginx plexus; do
    for f in ttfb_p50_ms ttfb_p99_ms total_p50_ms total_p99_ms; do R[$t.s$c.$f]=$(echo "${samples[$t.$f]}" | median); done
  done
  unset samples
done

# Memory per open stream, on a fresh plexus (one that served the runs above keeps their heap,
# and 500 streams fit in it unseen): its peak RSS during 500 streams, less its RSS before.
fresh_port=$(free_port)
sed -e "s/:$plexus_port/:$fresh_port/" "$work/plexus.json" >"$work/fresh.json"
build/plexus --config "$work/fresh.json" >/dev/null 2>"$work/fresh.log" & fresh_pid=$!; pids+=($fresh_pid)
wait_port "$fresh_port"
url[fresh]="http://127.0.0.1:$fresh_port"
stream_run fresh 1 2  # one stream first: what any request allocates once is not per stream
rss_before=$(rss_kb "$fresh_pid")
echo "$rss_before" >"$work/peak"
( peak=0; while kill -0 "$fresh_pid" 2>/dev/null; do r=$(rss_kb "$fresh_pid"); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$work/peak"; sleep 0.02; done ) & sampler=$!
stream_run fresh 500 1
kill "$sampler" 2>/dev/null || true
rss_peak=$(cat "$work/peak")
kill "$fresh_pid" 2>/dev/null || true

# Plugins: 0 vs 3, interleaved, whole completions at 32 connections and 50 paced streams.
declare -A p_rps=()
for _ in $(seq "$ROUNDS"); do
  for t in plexus plexus3; do read -r a _ _ <<<"$(wrk_once "$t" 32)"; p_rps[$t]+=" $a"; done
done
stream_run plexus3 50 2  # the plugin-less figures are the plexus row measured above
for t in plexus plexus3; do R[$t.p.rps]=$(echo "${p_rps[$t]}" | median); R[$t.p.ttfb]=${R[$t.s50.ttfb_p50_ms]}; R[$t.p.total]=${R[$t.s50.total_p50_ms]}; done
plugin_table=$(build/bench/plugin_bench "$root")
provider_table=$(build/bench/provider_bench "$root/build/providers")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.0f", (a - b) * 1000 }'; }

echo "## Whole completions (wrk, 1 thread, ${DURATION}s per run, median of ${ROUNDS} interleaved rounds)"
echo
echo "| conns | direct req/s | nginx req/s | plexus req/s | plexus/direct | plexus/nginx | CPU µs/req nginx / plexus (ratio) | p50 direct / nginx / plexus (ms) | p99 direct / nginx / plexus (ms) | plexus threads:2 req/s |"
echo "|---:|---:|---:|---:|---:|---:|---|---|---|---:|"
for c in 1 32 128; do
  echo "| $c | ${R[direct.$c.rps]} | ${R[nginx.$c.rps]} | ${R[plexus.$c.rps]} | $(ratio ${R[plexus.$c.rps]} ${R[direct.$c.rps]}) | $(ratio ${R[plexus.$c.rps]} ${R[nginx.$c.rps]}) | ${R[nginx.$c.cpu]} / ${R[plexus.$c.cpu]} ($(ratio ${R[plexus.$c.cpu]} ${R[nginx.$c.cpu]})) | ${R[direct.$c.p50]} / ${R[nginx.$c.p50]} / ${R[plexus.$c.p50]} | ${R[direct.$c.p99]} / ${R[nginx.$c.p99]} / ${R[plexus.$c.p99]} | ${R[plexus2.$c.rps]:--} |"
done
echo
echo "Sequential client (1 connection) added latency, p50: nginx $(diff_us ${R[nginx.1.p50]} ${R[direct.1.p50]}) µs, plexus $(diff_us ${R[plexus.1.p50]} ${R[direct.1.p50]}) µs."
echo
echo "## Paced streams (64 events, 5 ms apart; stream_client, libcurl multi; median of ${STREAM_ROUNDS} interleaved rounds after one unmeasured burst per target)"
echo
echo "| streams | TTFB p50 direct / nginx / plexus (ms) | TTFB p99 direct / nginx / plexus (ms) | added TTFB p50 nginx / plexus (µs) | added TTFB p99 nginx / plexus (µs) | total p50 direct / nginx / plexus (ms) | total plexus/nginx |"
echo "|---:|---|---|---|---|---|---:|"
for c in 1 50 200 500; do
  echo "| $c | ${R[direct.s$c.ttfb_p50_ms]} / ${R[nginx.s$c.ttfb_p50_ms]} / ${R[plexus.s$c.ttfb_p50_ms]} | ${R[direct.s$c.ttfb_p99_ms]} / ${R[nginx.s$c.ttfb_p99_ms]} / ${R[plexus.s$c.ttfb_p99_ms]} | $(diff_us ${R[nginx.s$c.ttfb_p50_ms]} ${R[direct.s$c.ttfb_p50_ms]}) / $(diff_us ${R[plexus.s$c.ttfb_p50_ms]} ${R[direct.s$c.ttfb_p50_ms]}) | $(diff_us ${R[nginx.s$c.ttfb_p99_ms]} ${R[direct.s$c.ttfb_p99_ms]}) / $(diff_us ${R[plexus.s$c.ttfb_p99_ms]} ${R[direct.s$c.ttfb_p99_ms]}) | ${R[direct.s$c.total_p50_ms]} / ${R[nginx.s$c.total_p50_ms]} / ${R[plexus.s$c.total_p50_ms]} | $(ratio ${R[plexus.s$c.total_p50_ms]} ${R[nginx.s$c.total_p50_ms]}) |"
done
echo
echo "plexus RSS: ${rss_idle} KiB at start; a fresh plexus: ${rss_before} KiB before 500 streams, ${rss_peak} KiB at their peak:" \
     "$(awk -v a="$rss_peak" -v b="$rss_before" 'BEGIN { printf "%.1f", (a - b) / 500 }') KiB per open stream."
echo
echo "## Plugins"
echo
echo "$plugin_table"
echo
echo "| plugins | req/s (32 conns, whole) | 50 streams: TTFB p50 (ms) | 50 streams: total p50 (ms) |"
echo "|---|---:|---:|---:|"
echo "| none | ${R[plexus.p.rps]} | ${R[plexus.p.ttfb]} | ${R[plexus.p.total]} |"
echo "| sticky_user + hot_then_least_loaded + redact (Lua) | ${R[plexus3.p.rps]} ($(ratio ${R[plexus3.p.rps]} ${R[plexus.p.rps]})×) | ${R[plexus3.p.ttfb]} | ${R[plexus3.p.total]} |"
echo
echo "## Provider translation (per chunk, in-process)"
echo
echo "$provider_table"
