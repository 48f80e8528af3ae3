#!/usr/bin/env bash
# The official `openai` npm client (tests/node/) against `baton serve --config examples/replay.yaml`, and (tool
# calling) against a second `baton serve` whose one `kind: openai` expert is tests/node/fake_upstream.mjs.
#
#   scripts/test_openai_client.sh [BATON_BINARY]     default: build/baton. Registered with ctest as OpenAiNodeClient.
#
# Installs the client (`npm ci` from tests/node/package-lock.json) when tests/node/node_modules is missing, starts the
# gateway on 127.0.0.1 at a port the kernel picks (--listen 127.0.0.1:0; the port is read from its first stdout line),
# waits for /healthz, runs `node --test` in tests/node/ and always stops the servers on exit. The tests get the ports
# as BATON_PORT (replay), BATON_TOOLS_PORT (tool calling) and BATON_FAKE_UPSTREAM_PORT.
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

# shellcheck source=lib/serve.sh
source "$ROOT/scripts/lib/serve.sh"
WORK="$(mktemp -d)"
SERVE_PID=""
REPLAY_PID=""
TOOLS_PID=""
UPSTREAM_PID=""
cleanup() {
  stop_process "$REPLAY_PID"
  stop_process "$TOOLS_PID"
  stop_process "$SERVE_PID"
  stop_process "$UPSTREAM_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The example config in the scratch folder: its store there, its data folders (relative to the example) absolute.
sed -e "s|^store: .*|store: $WORK/gateway.db|" -e "s|\.\./data/|$ROOT/data/|g" -e "s|file: archon/|file: $ROOT/examples/archon/|" "$ROOT/examples/replay.yaml" > "$WORK/replay.yaml"

cd "$ROOT"
start_baton_serve test_openai_client "$WORK" "$BATON" serve --config "$WORK/replay.yaml" --listen 127.0.0.1:0
REPLAY_PID="$SERVE_PID"
REPLAY_PORT="$SERVE_PORT"

# The fake upstream prints the port it got on its first stdout line.
mkdir -p "$WORK/tools"
node "$ROOT/tests/node/fake_upstream.mjs" >"$WORK/tools/upstream.out" 2>"$WORK/tools/upstream.err" &
UPSTREAM_PID=$!
UPSTREAM_PORT=""
for _ in $(seq 1 300); do
  kill -0 "$UPSTREAM_PID" 2>/dev/null || {
    echo "test_openai_client: fake upstream exited:" >&2; cat "$WORK/tools/upstream.err" >&2; exit 1; }
  UPSTREAM_PORT="$(sed -n 's|.*listening on http://[^:]*:\([0-9][0-9]*\).*|\1|p' "$WORK/tools/upstream.out" | head -n 1 || true)"
  [ -n "$UPSTREAM_PORT" ] && break
  sleep 0.1
done
[ -n "$UPSTREAM_PORT" ] || { echo "test_openai_client: the fake upstream printed no port" >&2; exit 1; }
echo "test_openai_client: fake upstream on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"

# The tool-calling gateway: no router (clients name the expert), one openai expert in front of the fake upstream.
cat >"$WORK/tools/tools.yaml" <<EOF
store: $WORK/tools/gateway.db
keys:
  - {name: demo, key: sk-baton-demo, budget_usd: 10}
experts:
  - {name: tool-upstream, kind: openai, base_url: "http://127.0.0.1:$UPSTREAM_PORT/v1", max_retries: 0,
     usd_per_mtok_in: 1, usd_per_mtok_out: 2}
EOF
SERVE_PID=""
start_baton_serve test_openai_client "$WORK/tools" "$BATON" serve --config "$WORK/tools/tools.yaml" --listen 127.0.0.1:0
TOOLS_PID="$SERVE_PID"
TOOLS_PORT="$SERVE_PORT"

# `node --test` with no argument finds tests/node/*.test.mjs (and skips node_modules) on every node from 18 on;
# a directory argument is read as a glob pattern by node >= 21.
cd "$ROOT/tests/node"
BATON_PORT="$REPLAY_PORT" BATON_TOOLS_PORT="$TOOLS_PORT" BATON_FAKE_UPSTREAM_PORT="$UPSTREAM_PORT" \
  timeout 300 node --test
