#!/usr/bin/env bash
# The measurement behind the gateway's HTTP library choice (src/gateway/http_server.cc): a hello-world server of each
# candidate under the same wrk load on 127.0.0.1. Installs wrk and libcpp-httplib-dev if missing.
#   scripts/http_library_bench.sh [BUILD_DIR]     (default: build)
set -euo pipefail
BUILD=${1:-build}
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
mapfile -t missing < <(apt_missing wrk libcpp-httplib-dev)
apt_install http_library_bench "${missing[@]}"
cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target http_hello_beast http_hello_httplib >/dev/null
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
port=18481
for server in http_hello_httplib http_hello_beast; do
  port=$((port + 1))
  "$BUILD/bench/$server" "$port" &
  pids+=($!)
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  echo "== $server: wrk -t2 -c100 -d5s --latency http://127.0.0.1:$port/"
  wrk -t2 -c100 -d5s --latency "http://127.0.0.1:$port/" | grep -E 'Requests/sec|50%|99%'
  kill "${pids[-1]}" 2>/dev/null || true
done
