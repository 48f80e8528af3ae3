#!/usr/bin/env bash
# Installs exactly what baton's build and tests need, from Debian's archive.
# Idempotent and non-interactive: packages already present are skipped, so re-running is cheap.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libsqlite3-dev sqlite3  # the embedded store (the sqlite3 shell is used by tests to inspect it)
  libpq-dev postgresql    # the PostgreSQL store; its tests start a throw-away server (scripts/pg_server.sh)
  nlohmann-json3-dev      # JSON (JSONL datasets, model files, reports)
  libcli11-dev            # command-line parsing
  libfmt-dev              # formatting
  libeigen3-dev           # linear algebra for the predictors
  libgtest-dev libgmock-dev googletest  # unit tests
  libbenchmark-dev        # micro-benchmarks
  libcurl4-openssl-dev    # HTTP client of the openai expert backend
  libboost1.81-dev libyaml-cpp-dev libssl-dev  # baton serve: Boost.Beast HTTP server, YAML config, SHA-256 keys
  # the Python module (python/) and its tests, for Debian's /usr/bin/python3 (not a pyenv or venv python)
  python3-dev python3-pybind11 python3-numpy python3-pandas python3-pytest
  nodejs npm              # scripts/build_llama.sh fetches llama.cpp's source from the npm registry; tests/node
)

# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
missing=()
for p in $(apt_missing "${PACKAGES[@]}"); do
  [ "$p" = npm ] && command -v npm >/dev/null && continue  # e.g. NodeSource's nodejs bundles npm
  missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

apt_install setup "${missing[@]}"
