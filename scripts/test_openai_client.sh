#!/usr/bin/env bash
# The official `openai` npm client (tests/node/) against `baton serve --config examples/replay.yaml`.
#
#   scripts/test_openai_client.sh [BATON_BINARY]     default: build/baton. Registered with ctest as OpenAiNodeClient.
#
# Installs the client (`npm ci` from tests/node/package-lock.json) when tests/node/node_modules is missing, starts the
# gateway on 127.0.0.1 at a port the kernel picks (--listen 127.0.0.1:0; the port is read from its first stdout line),
# waits for /healthz, runs `node --test` in tests/node/ and always stops the server on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BATON="$(realpath "${1:-$ROOT/build/baton}")"
[ -x "$BATON" ] || { echo "test_openai_client: no baton binary at $BATON" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "test_openai_client: node and npm are required (scripts/setup.sh installs them)" >&2; exit 1; }

if [ ! -d "$ROOT/tests/node/node_modules/openai" ]; then
  echo "test_openai_client: npm ci --prefix tests/node"
  timeout 300 npm ci --prefix "$ROOT/tests/node" --no-audit --no-fund
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The example config, with its store moved to the scratch folder (the example's relative paths resolve from ROOT).
sed -e "s|^store: .*|store: $WORK/gateway.db|" "$ROOT/examples/replay.yaml" > "$WORK/replay.yaml"

cd "$ROOT"
: >"$WORK/stdout"; : >"$WORK/stderr"  # exist before the child opens them (read below)
"$BATON" serve --config "$WORK/replay.yaml" --listen 127.0.0.1:0 >"$WORK/stdout" 2>"$WORK/stderr" &
SERVER_PID=$!

# Wait (at most 120 s: the router is fitted at start-up) for the port line and then for /healthz.
PORT=""
for _ in $(seq 1 1200); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "test_openai_client: baton serve exited early:" >&2; cat "$WORK/stderr" "$WORK/stdout" >&2; exit 1
  fi
  PORT="$(sed -n 's|.*listening on http://[^:]*:\([0-9][0-9]*\).*|\1|p' "$WORK/stdout" | head -n 1 || true)"
  if [ -n "$PORT" ] && curl -fsS -m 2 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
  PORT=""
  sleep 0.1
done
[ -n "$PORT" ] || { echo "test_openai_client: baton serve did not become healthy in 120 s" >&2; cat "$WORK/stderr" >&2; exit 1; }
echo "test_openai_client: baton serve on 127.0.0.1:$PORT (pid $SERVER_PID)"

# `node --test` with no argument finds tests/node/*.test.mjs (and skips node_modules) on every node from 18 on;
# a directory argument is read as a glob pattern by node >= 21.
cd "$ROOT/tests/node"
BATON_PORT="$PORT" timeout 300 node --test
