#!/usr/bin/env bash
# libFuzzer on the gateway's request parser (ParseChatCompletionRequest).
#
#   scripts/fuzz.sh [SECONDS]     default 60; e.g. `scripts/fuzz.sh 600` for the ten-minute run in bench/RESULTS.md
#
# Installs clang-14 + its sanitizer/fuzzer runtime if missing (FUZZ_PACKAGES: deliberately not in scripts/setup.sh,
# the main build does not need them), compiles fuzz/request_parser_fuzzer.cc directly with only the sources it needs
# (request_parser.cc, status.cc, nlohmann json and fmt header-only) into build-fuzz/, seeds a scratch corpus from
# fuzz/corpus/ and runs for SECONDS. Exits non-zero on a finding (crash, ASan/UBSan report, leak, timeout, OOM);
# the input that triggered it is written to build-fuzz/artifacts/.
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BATON_FUZZ_DIR:-$ROOT/build-fuzz}"
CXX="${FUZZ_CXX:-clang++-14}"

FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev libfmt-dev nlohmann-json3-dev)
# shellcheck source=lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"
mapfile -t missing < <(apt_missing "${FUZZ_PACKAGES[@]}")
apt_install fuzz "${missing[@]}"

mkdir -p "$OUT/artifacts"
BIN="$OUT/request_parser_fuzzer"
echo "fuzz: building $BIN"
"$CXX" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DFMT_HEADER_ONLY \
  -I"$ROOT/include" -I"$ROOT/src" \
  "$ROOT/fuzz/request_parser_fuzzer.cc" \
  "$ROOT/src/gateway/request_parser.cc" \
  "$ROOT/src/common/status.cc" \
  "$ROOT/src/common/json_limits.cc" \
  -o "$BIN"

# A scratch corpus (the fuzzer adds inputs to it), seeded from the committed seeds, which stay untouched.
CORPUS="$OUT/corpus"
mkdir -p "$CORPUS"
cp -f "$ROOT"/fuzz/corpus/* "$CORPUS"/

LOG="$OUT/fuzz.log"
echo "fuzz: running for ${SECONDS_TO_RUN}s (log: $LOG)"
set +e
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
  "$BIN" "$CORPUS" \
  -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
  -dict="$ROOT/fuzz/json.dict" -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 \
  >"$LOG" 2>&1
rc=$?
set -e

execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOG" | grep -o '[0-9]*$' || true)
tail -n 25 "$LOG"
if [ "$rc" -ne 0 ]; then
  echo "fuzz: FINDING (exit $rc) after ${execs:-?} executions; artifacts:" >&2
  ls -l "$OUT/artifacts/" >&2
  exit "$rc"
fi
echo "fuzz: ${execs:-?} executions in ${SECONDS_TO_RUN}s, no finding (corpus: $(ls "$CORPUS" | wc -l) inputs)"
