# Helpers for the scripts that run `baton serve` as a real server (source this file; it needs curl).

# stop_process PID: TERM, up to 10 s to exit, then KILL. Nothing happens when PID is empty or already gone.
stop_process() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# start_baton_serve TAG DIR COMMAND...: runs COMMAND (a `baton serve ... --listen 127.0.0.1:0`, possibly behind a
# prefix such as taskset) in the background with its output in DIR/serve.{out,err}; waits at most 120 s (the router
# may be fitted at start-up) for the port it prints and for /healthz. Sets SERVE_PID and SERVE_PORT; exits the
# script with the server's stderr when it dies or never becomes healthy.
start_baton_serve() {
  local tag="$1" dir="$2"
  shift 2
  : >"$dir/serve.out"; : >"$dir/serve.err"  # exist before the child opens them (read below)
  "$@" >"$dir/serve.out" 2>"$dir/serve.err" &
  SERVE_PID=$!
  SERVE_PORT=""
  for _ in $(seq 1 1200); do
    kill -0 "$SERVE_PID" 2>/dev/null || { echo "$tag: baton serve exited early:" >&2; cat "$dir/serve.err" >&2; exit 1; }
    SERVE_PORT="$(sed -n 's|.*listening on http://[^:]*:\([0-9][0-9]*\).*|\1|p' "$dir/serve.out" | head -n 1 || true)"
    if [ -n "$SERVE_PORT" ] && curl -fsS -m 2 "http://127.0.0.1:$SERVE_PORT/healthz" >/dev/null 2>&1; then
      echo "$tag: baton serve on 127.0.0.1:$SERVE_PORT (pid $SERVE_PID)"
      return 0
    fi
    sleep 0.1
  done
  echo "$tag: baton serve did not become healthy in 120 s" >&2; cat "$dir/serve.err" >&2; exit 1
}
