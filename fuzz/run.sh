#!/usr/bin/env bash
# Builds the fuzzers (clang, ASan + UBSan) and runs each for a bounded time from its seed corpus.
#   fuzz/run.sh [seconds-per-target]     (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
if [ ! -f build-fuzz/build.ninja ]; then
  cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build-fuzz | grep -vE '^\[[0-9]+/[0-9]+\] ' || true
for target in sse_parser line_splitter chat_request dialects lua_json request_framing response_framing node_message citations searxng file_parts; do
  work=$(mktemp -d)
  cp fuzz/corpus/$target/* "$work"/ 2>/dev/null || true
  echo "fuzz: $target for ${seconds}s"
  # New inputs go to a scratch copy: the committed seed corpus stays small and reviewed.
  status=0
  build-fuzz/${target}_fuzz -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work" >"$work.log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|==|SUMMARY|Done)|ERROR|#[0-9]+ 0x' "$work.log" | head -40 || true
  if [ "$status" -ne 0 ]; then
    for crash in "$work"/crash-* "$work"/timeout-* "$work"/oom-*; do
      [ -f "$crash" ] && { echo "input (base64):"; base64 -w0 "$crash"; echo; }
    done
  fi
  rm -f "$work.log"
  rm -rf "$work"
  [ "$status" -eq 0 ] || { echo "fuzz: $target FAILED"; exit 1; }
done
echo "fuzz: all targets ran clean"
