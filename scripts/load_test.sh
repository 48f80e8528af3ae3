#!/usr/bin/env bash
# Gateway overhead (issue 4): nginx as an instant OpenAI-compatible upstream, wrk against nginx directly and against
# `baton serve` in front of it, at the same fixed-ish request rate, in one run; then baton's resident memory while
# 1,000 connections are open. Prints a Markdown table (for bench/RESULTS.md); raw wrk output goes to OUT_DIR.
#
#   scripts/load_test.sh [BATON_BINARY]          default: build/baton
#   env: DURATION=30 (s per scenario)  RATE=5000 (req/s target)  CONNS=50  THREADS=2
#        MEM_CONNS=1000  MEM_DURATION=10  OUT_DIR=build-loadtest  IO_THREADS=2 (baton's event loops)
#        HTTP_CLIENT=auto (the expert's http_client: auto = Boost.Beast's pooled client for http://; curl = libcurl)
#        STORE=sqlite|postgresql (postgresql: a throw-away server of scripts/pg_server.sh; budgets then shared)
#        REPLICAS=1 (more: that many `baton serve` over the one store, behind an nginx round-robin load balancer that
#        the baton rows go through; CPU per request is then summed over the replicas)
#        WRK_CPUS=  SERVER_CPUS=  (taskset CPU lists, e.g. WRK_CPUS=1 SERVER_CPUS=0 keeps the load generator off the
#        servers' core; empty = no pinning)
#
# Debian has no wrk2 (no fixed-rate mode), so the rate is approximated with wrk's Lua delay(): every connection waits
# CONNS*1000/RATE ms after each response before sending the next request, so the offered rate is
# CONNS / (delay + latency), just under RATE. wrk starts each latency clock when the request is written, so the delay
# is not counted in the latency. Everything listens on 127.0.0.1 only; every wait and load loop is bounded; nginx and
# baton are stopped by the EXIT trap whatever happens.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BATON="$(realpath "${1:-$ROOT/build/baton}")"
DURATION="${DURATION:-30}"
RATE="${RATE:-5000}"
CONNS="${CONNS:-50}"
THREADS="${THREADS:-2}"
MEM_CONNS="${MEM_CONNS:-1000}"
MEM_DURATION="${MEM_DURATION:-10}"
OUT_DIR="${OUT_DIR:-$ROOT/build-loadtest}"
IO_THREADS="${IO_THREADS:-2}"
HTTP_CLIENT="${HTTP_CLIENT:-auto}"
STORE="${STORE:-sqlite}"
REPLICAS="${REPLICAS:-1}"
case "$STORE" in sqlite|postgresql) ;; *) echo "load_test: STORE must be sqlite or postgresql" >&2; exit 2 ;; esac
[ "$REPLICAS" -ge 1 ] 2>/dev/null || { echo "load_test: REPLICAS must be a number >= 1" >&2; exit 2; }
WRK_CPUS="${WRK_CPUS:-}"
SERVER_CPUS="${SERVER_CPUS:-}"
WRK=(wrk); SERVER_PIN=()
[ -n "$WRK_CPUS" ] && WRK=(taskset -c "$WRK_CPUS" wrk)
[ -n "$SERVER_CPUS" ] && SERVER_PIN=(taskset -c "$SERVER_CPUS")
MODEL="gpt-3.5-turbo-1106"   # a RouterBench model, so that the router (fitted on routerbench-train) can route to it
KEY="sk-baton-demo"
[ -x "$BATON" ] || { echo "load_test: no baton binary at $BATON" >&2; exit 1; }

# --- tools ------------------------------------------------------------------------------------------------------------
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
# shellcheck source=lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"
apt_install load_test "${need[@]}"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 1,000+ sockets for wrk and baton
[ "$(ulimit -n)" -ge $((MEM_CONNS + 100)) ] || { echo "load_test: ulimit -n too low for $MEM_CONNS connections" >&2; exit 1; }

free_port() {  # a port nobody listens on right now (the kernel's choice)
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# shellcheck source=lib/serve.sh
source "$ROOT/scripts/lib/serve.sh"
WORK="$(mktemp -d)"
mkdir -p "$OUT_DIR"
NGINX_PID=""
PROXY_PID=""
SERVE_PID=""
LB_PID=""
BATON_PIDS=()
PORTS=()
cleanup() {
  for p in "${BATON_PIDS[@]}"; do stop_process "$p"; done
  stop_process "$LB_PID"; stop_process "$PROXY_PID"; stop_process "$NGINX_PID"
  [ -d "$WORK/pg" ] && bash "$ROOT/scripts/pg_server.sh" stop "$WORK/pg" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- nginx: the instant upstream, and a reference proxy in front of it ------------------------------------------------
UPSTREAM_JSON='{"id":"chatcmpl-nginx","object":"chat.completion","created":1700000000,"model":"gpt-3.5-turbo-1106","choices":[{"index":0,"message":{"role":"assistant","content":"4"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}'
start_nginx() {  # start_nginx DIR PORT HTTP_BODY: one worker serving HTTP_BODY (the http{} block's inside) on PORT,
                 # started once PORT answers; sets STARTED_PID
  local dir="$1" port="$2"
  mkdir -p "$dir/tmp"
  cat > "$dir/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
$3
}
NGINX
  "${SERVER_PIN[@]}" "$NGINX" -p "$dir" -c "$dir/nginx.conf" &
  STARTED_PID=$!
  for _ in $(seq 1 100); do
    # Any HTTP answer means it is up (the load balancer passes on baton's 401 to this keyless probe).
    if curl -sS -m 2 -o /dev/null -X POST -d '{}' "http://127.0.0.1:$port/v1/chat/completions" 2>/dev/null; then return 0; fi
    kill -0 "$STARTED_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "load_test: nginx ($dir) did not start" >&2; cat "$dir/error.log" >&2 || true; exit 1
}
NGINX_PORT="$(free_port)"
start_nginx "$WORK/nginx" "$NGINX_PORT" "  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /v1/chat/completions { default_type application/json; return 200 '$UPSTREAM_JSON'; }
  }"
NGINX_PID=$STARTED_PID
echo "load_test: nginx on 127.0.0.1:$NGINX_PORT (pid $NGINX_PID)"

# The reference proxy: a second nginx process as a keep-alive reverse proxy in front of the first. The same extra hop
# baton makes (another process, another loopback round trip), with the least work a proxy can do: what it adds is the
# floor for any gateway on this machine.
PROXY_PORT="$(free_port)"
start_nginx "$WORK/proxy" "$PROXY_PORT" "  upstream llm { server 127.0.0.1:$NGINX_PORT; keepalive 128; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$PROXY_PORT;
    location / { proxy_pass http://llm; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }"
PROXY_PID=$STARTED_PID
echo "load_test: reference proxy (nginx) on 127.0.0.1:$PROXY_PORT (pid $PROXY_PID)"

# --- baton: one openai expert pointing at nginx; REPLICAS of them over one store ------------------------------------
STORE_PATH="$WORK/gateway.db"
if [ "$STORE" = postgresql ]; then
  chmod 755 "$WORK"  # the server runs as the postgres user when this runs as root
  STORE_PATH="$(bash "$ROOT/scripts/pg_server.sh" start "$WORK/pg" | tail -n 1)"
  echo "load_test: PostgreSQL store at $STORE_PATH"
fi
for i in $(seq 1 "$REPLICAS"); do
  mkdir -p "$WORK/r$i"
  cat > "$WORK/r$i/baton.yaml" <<YAML
listen: 127.0.0.1:0
store: "$STORE_PATH"
replica_id: load-test-$i
record_prompts: false
metrics_public: true
io_threads: $IO_THREADS
router:
  train_dir: $ROOT/data/routerbench-train
  lambda: 10
keys:
  - {name: load, key: $KEY, budget_usd: 1000000000}
experts:
  - {name: $MODEL, kind: openai, base_url: "http://127.0.0.1:$NGINX_PORT/v1", http_client: $HTTP_CLIENT}
YAML
  start_baton_serve load_test "$WORK/r$i" "${SERVER_PIN[@]}" "$BATON" serve --config "$WORK/r$i/baton.yaml" --listen 127.0.0.1:0
  BATON_PIDS+=("$SERVE_PID")
  PORTS+=("$SERVE_PORT")
done
BATON_PID=${BATON_PIDS[0]}
BATON_PORT=${PORTS[0]}
TARGET_PORT=$BATON_PORT
if [ "$REPLICAS" -gt 1 ]; then  # the load balancer: the baton rows go through it
  LB_PORT="$(free_port)"
  servers=""; for p in "${PORTS[@]}"; do servers+="server 127.0.0.1:$p; "; done
  start_nginx "$WORK/lb" "$LB_PORT" "  upstream replicas { $servers keepalive 128; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / { proxy_pass http://replicas; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }"
  LB_PID=$STARTED_PID
  TARGET_PORT=$LB_PORT
  echo "load_test: $REPLICAS replicas behind an nginx load balancer on 127.0.0.1:$LB_PORT"
fi

body() { printf '{"model":"%s","messages":[{"role":"user","content":"What is 2+2? Answer with one number."}],"max_tokens":8}' "$1"; }
for m in "$MODEL" baton; do  # one real request each way before loading, to fail fast
  out="$(curl -sS -m 10 -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
         -d "$(body "$m")" "http://127.0.0.1:$TARGET_PORT/v1/chat/completions")"
  echo "$out" | grep -q '"chat.completion"' || { echo "load_test: baton did not answer model $m: $out" >&2; exit 1; }
done

# wrk script: POST body, headers, and the per-connection delay that sets the rate.
write_lua() {  # write_lua FILE MODEL DELAY_MS
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.body = '$(body "$2")'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
function delay() return $3 end
LUA
}
DELAY_MS=$(( CONNS * 1000 / RATE ))
to_ms() {  # wrk's "245.00us" / "1.20ms" / "1.01s" -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000;
                         printf "%.3f", n }'
}
declare -A P50 P90 P99 RPS ERRS CPU_US
cpu_ticks() {  # user + system time of processes (PIDs separated by spaces), in clock ticks
  local t=0 p; for p in $1; do t=$(( t + $(awk '{ print $14 + $15 }' "/proc/$p/stat") )); done; echo "$t"
}
run_wrk() {  # run_wrk NAME URL MODEL [PID whose CPU time per request to report]
  local name="$1" url="$2" model="$3" pid="${4:-}" lua="$WORK/$1.lua" log="$OUT_DIR/wrk-$1.txt" t0=0
  write_lua "$lua" "$model" "$DELAY_MS"
  echo "load_test: $name: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency -s $lua $url   (delay ${DELAY_MS} ms)"
  timeout $((DURATION + 10)) "${WRK[@]}" -t1 -c"$CONNS" -d2s -s "$lua" "$url" >/dev/null  # warm-up
  [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  timeout $((DURATION + 30)) "${WRK[@]}" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency -s "$lua" "$url" | tee "$log"
  P50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$log")")
  P90[$name]=$(to_ms "$(awk '$1 == "90%" { print $2 }' "$log")")
  P99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$log")")
  RPS[$name]=$(awk '/^Requests\/sec:/ { print $2 }' "$log")
  if [ -n "$pid" ]; then
    local n; n=$(awk '/requests in/ { print $1 }' "$log")
    CPU_US[$name]=$(awk -v d="$(( $(cpu_ticks "$pid") - t0 ))" -v hz="$(getconf CLK_TCK)" -v n="$n" \
                      'BEGIN { printf "%.0f", d / hz * 1e6 / n }')
  fi
  local non2xx sockerr
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$log"); sockerr=$(grep -o 'Socket errors:.*' "$log" || true)
  ERRS[$name]="${non2xx:-0} non-2xx${sockerr:+; $sockerr}"
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
run_wrk direct "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$MODEL"
run_wrk proxy "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" "$MODEL" "$(pgrep -P "$PROXY_PID" | head -n 1)"
run_wrk passthrough "http://127.0.0.1:$TARGET_PORT/v1/chat/completions" "$MODEL" "${BATON_PIDS[*]}"
run_wrk routed "http://127.0.0.1:$TARGET_PORT/v1/chat/completions" baton "${BATON_PIDS[*]}"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- memory at MEM_CONNS open connections ----------------------------------------------------------------------------
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$BATON_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$BATON_PID/status"; }
RSS_IDLE=$(rss_kb)
MEM_DELAY=$(( MEM_CONNS * 1000 / RATE ))   # the same offered rate, spread over MEM_CONNS connections
write_lua "$WORK/mem.lua" baton "$MEM_DELAY"
echo "load_test: memory: wrk -t$THREADS -c$MEM_CONNS -d${MEM_DURATION}s --latency (delay ${MEM_DELAY} ms), sampling VmRSS"
timeout $((MEM_DURATION + 30)) "${WRK[@]}" -t"$THREADS" -c"$MEM_CONNS" -d"${MEM_DURATION}s" --timeout 10s --latency \
  -s "$WORK/mem.lua" "http://127.0.0.1:$BATON_PORT/v1/chat/completions" > "$OUT_DIR/wrk-mem.txt" &
WRK_PID=$!
RSS_MAX=0; SOCKS_MAX=0
for _ in $(seq 1 $(( (MEM_DURATION + 20) * 10 ))); do
  kill -0 "$WRK_PID" 2>/dev/null || break
  r=$(rss_kb || true); [ "${r:-0}" -gt "$RSS_MAX" ] && RSS_MAX=$r
  # find fails when an fd closes while it lists them: a count from a racing listing is still fine.
  s=$(find "/proc/$BATON_PID/fd" -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l || true)
  [ "${s:-0}" -gt "$SOCKS_MAX" ] && SOCKS_MAX=$s
  sleep 0.1
done
wait "$WRK_PID" || true
kill -0 "$BATON_PID" 2>/dev/null || { echo "load_test: baton serve died under $MEM_CONNS connections" >&2; exit 1; }
cat "$OUT_DIR/wrk-mem.txt"
RSS_AFTER=$(rss_kb); HWM=$(hwm_kb)
MEM_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$OUT_DIR/wrk-mem.txt")
MEM_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$OUT_DIR/wrk-mem.txt")")
METRICS="$(curl -fsS -m 5 "http://127.0.0.1:$BATON_PORT/metrics" | grep -E '^baton_(recorder_dropped_total|budget_overruns_total)' || true)"

add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
  echo
  echo "Load test $(date -u +%Y-%m-%dT%H:%MZ): target $RATE req/s (wrk -t$THREADS -c$CONNS, delay ${DELAY_MS} ms per connection), ${DURATION} s per row, baton io_threads $IO_THREADS, http_client $HTTP_CLIENT, store $STORE, $REPLICAS replica(s)$([ "$REPLICAS" -gt 1 ] && echo " behind an nginx load balancer")${WRK_CPUS:+, wrk on CPU $WRK_CPUS}${SERVER_CPUS:+, nginx and baton on CPU $SERVER_CPUS}; load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
  echo
  echo "| target | achieved req/s | p50 ms | p90 ms | p99 ms | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | --- |"
  echo "| nginx directly | ${RPS[direct]} | ${P50[direct]} | ${P90[direct]} | ${P99[direct]} | ${ERRS[direct]} |"
  echo "| nginx through an nginx reverse proxy (reference) | ${RPS[proxy]} | ${P50[proxy]} | ${P90[proxy]} | ${P99[proxy]} | ${ERRS[proxy]} |"
  echo "| baton, model \`$MODEL\` (pass-through) | ${RPS[passthrough]} | ${P50[passthrough]} | ${P90[passthrough]} | ${P99[passthrough]} | ${ERRS[passthrough]} |"
  echo "| baton, model \`baton\` (routed) | ${RPS[routed]} | ${P50[routed]} | ${P90[routed]} | ${P99[routed]} | ${ERRS[routed]} |"
  echo "| added by the reference proxy | | $(add "${P50[proxy]}" "${P50[direct]}") | $(add "${P90[proxy]}" "${P90[direct]}") | $(add "${P99[proxy]}" "${P99[direct]}") | |"
  echo "| **added by baton, pass-through** | | $(add "${P50[passthrough]}" "${P50[direct]}") | $(add "${P90[passthrough]}" "${P90[direct]}") | $(add "${P99[passthrough]}" "${P99[direct]}") | |"
  echo "| **added by baton, routed** | | $(add "${P50[routed]}" "${P50[direct]}") | $(add "${P90[routed]}" "${P90[direct]}") | $(add "${P99[routed]}" "${P99[direct]}") | |"
  echo
  echo "CPU time per request (user + system, from /proc): baton ${CPU_US[passthrough]} µs pass-through, ${CPU_US[routed]} µs routed (all its threads, recorder included); the reference proxy's nginx worker ${CPU_US[proxy]} µs."
  echo
  echo "Resident memory of baton (VmRSS): $(mb "$RSS_IDLE") MB idle after start-up (router fitted); max $(mb "$RSS_MAX") MB sampled every 0.1 s while wrk held $MEM_CONNS connections for ${MEM_DURATION} s (up to $SOCKS_MAX sockets open in baton; $MEM_RPS req/s, p99 $MEM_P99 ms); $(mb "$RSS_AFTER") MB after; peak VmHWM $(mb "$HWM") MB."
  [ -n "$METRICS" ] && echo "Gateway counters after the run: $(echo "$METRICS" | tr '\n' ';' | sed 's/;$//; s/;/; /g')."
} | tee "$OUT_DIR/summary.md"
