# Sourced by the benchmark scripts: set-up, a scratch folder, processes stopped on exit, ports.
#   source bench/common.sh NAME     (NAME names the scratch folder: /tmp/plexus-NAME.XXXXXX)
./scripts/deps.sh --test >/dev/null
./scripts/build.sh >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d "/tmp/plexus-${1:-bench}.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
cpu_ticks() { [ -n "${1:-}" ] && awk '{print $14 + $15}' /proc/"$1"/stat || echo 0; }  # utime + stime
rss_kb() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }

# Joins COUNT simulated nodes (bench/node_swarm.mjs, token nt-bench-token, CHANNELS gRPC channels)
# to a router's node port, waits until all have joined, then watches the router for SECONDS.
# Sets swarm_cpu (% of one core), swarm_rss0 and swarm_rss1 (KiB, before and after), swarm_pid.
swarm_measure() {  # router_pid node_port count seconds [channels]
  swarm_rss0=$(rss_kb "$1")
  node bench/node_swarm.mjs "127.0.0.1:$2" nt-bench-token "$3" "${5:-50}" >"$work/swarm.out" 2>&1 & swarm_pid=$!
  pids+=($swarm_pid)
  for _ in $(seq 1200); do grep -q ready "$work/swarm.out" && break; sleep 0.1; done
  grep -q ready "$work/swarm.out" || { echo "the swarm of $3 never joined:"; cat "$work/swarm.out"; exit 1; }
  sleep 2
  local t0 s0 t1 s1
  t0=$(cpu_ticks "$1"); s0=$(date +%s.%N)
  sleep "$4"
  t1=$(cpu_ticks "$1"); s1=$(date +%s.%N)
  swarm_rss1=$(rss_kb "$1")
  swarm_cpu=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s0="$s0" -v s1="$s1" 'BEGIN{printf "%.1f", 100 * t / hz / (s1 - s0)}')
}

# The one request wrk sends (key sk-bench-key, model "mock"): whole answers.
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-key"
wrk.body = '{"model":"mock","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Benchmark me, please."}],"temperature":0.2,"max_tokens":64}'
LUA
