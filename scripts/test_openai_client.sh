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

# shellcheck source=lib/serve.sh
source "$ROOT/scripts/lib/serve.sh"
WORK="$(mktemp -d)"
SERVE_PID=""
cleanup() { stop_process "$SERVE_PID"; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The example config, with its store moved to the scratch folder (the example's relative paths resolve from ROOT).
sed -e "s|^store: .*|store: $WORK/gateway.db|" "$ROOT/examples/replay.yaml" > "$WORK/replay.yaml"

cd "$ROOT"
start_baton_serve test_openai_client "$WORK" "$BATON" serve --config "$WORK/replay.yaml" --listen 127.0.0.1:0

# `node --test` with no argument finds tests/node/*.test.mjs (and skips node_modules) on every node from 18 on;
# a directory argument is read as a glob pattern by node >= 21.
cd "$ROOT/tests/node"
BATON_PORT="$SERVE_PORT" timeout 300 node --test
