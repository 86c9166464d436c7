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

# The one request wrk sends (key sk-bench-key, model "mock"): whole answers.
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-key"
wrk.body = '{"model":"mock","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Benchmark me, please."}],"temperature":0.2,"max_tokens":64}'
LUA
