#!/usr/bin/env bash
# libFuzzer campaign on every place where outside bytes enter baton (fuzz/targets.h).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#       SECONDS_PER_TARGET  default 60; targets run one after the other
#       TARGET              request_parser config import_csv import_jsonl import_wide model (default: all)
#   e.g. `nice -n 10 scripts/fuzz.sh 120` for the run in bench/RESULTS.md, `scripts/fuzz.sh 30 model` for one target.
#   FUZZ_PARALLEL=N runs N targets at a time (default 1); FUZZ_JOBS=N compile jobs (default 2).
#
# Installs clang-14 and its fuzzer/sanitizer runtime if missing (FUZZ_PACKAGES: deliberately not in scripts/setup.sh,
# the main build does not need them), builds fuzz/CMakeLists.txt into build-fuzz/ (every baton source the targets
# reach compiled with -fsanitize=address,undefined, one binary per target; incremental after the first build), then
# runs each target for SECONDS_PER_TARGET on a scratch copy of its seeds fuzz/corpus/<target>/ plus its past findings
# fuzz/regressions/<target>/ (the committed files stay untouched), with its dictionary.
#
# Prints one line per target: executions, exec/s, coverage (cov = edges, ft = features), corpus size before -> after,
# findings. Exits non-zero when any target found something (crash, ASan/UBSan report, broken promise, leak, timeout,
# out-of-memory) and names the input that triggered it (build-fuzz/artifacts/<target>/). Such an input goes into
# fuzz/regressions/<target>/ with the fix, where the test suite replays it (fuzz/README.md).
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
shift || true
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BATON_FUZZ_DIR:-$ROOT/build-fuzz}"
CXX="${FUZZ_CXX:-clang++-14}"
ALL_TARGETS=(request_parser config import_csv import_jsonl import_wide model)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")

declare -A DICT=([request_parser]=json.dict [config]=yaml.dict [import_csv]=csv.dict [import_jsonl]=json.dict
                 [import_wide]=csv.dict [model]=model.dict)
# Longest input to try: 16 KiB of text; model files run larger (the seeds are up to ~17 KB).
declare -A MAXLEN=([request_parser]=16384 [config]=16384 [import_csv]=16384 [import_jsonl]=16384
                   [import_wide]=16384 [model]=20480)
for t in "${TARGETS[@]}"; do
  if [ -z "${DICT[$t]+x}" ]; then
    echo "fuzz: unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "fuzz: SECONDS_PER_TARGET must be a positive whole number, got '$SECONDS_PER_TARGET'" >&2
  exit 2
fi

# The main build's packages (scripts/setup.sh) plus the compiler and its runtime.
FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev)
# shellcheck source=lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"
mapfile -t missing < <(apt_missing "${FUZZ_PACKAGES[@]}")
apt_install fuzz "${missing[@]}"

echo "fuzz: building ${TARGETS[*]} into $OUT (clang, -fsanitize=fuzzer,address,undefined)"
start=$(date +%s)
mkdir -p "$OUT"
cmake -S "$ROOT/fuzz" -B "$OUT" -G Ninja -DCMAKE_CXX_COMPILER="$CXX" >"$OUT/cmake.log" 2>&1 ||
  { cat "$OUT/cmake.log" >&2; exit 1; }
cmake --build "$OUT" -j "${FUZZ_JOBS:-2}" --target "${TARGETS[@]/%/_fuzzer}"
echo "fuzz: built in $(( $(date +%s) - start ))s"

# Runs one target; writes its line to $OUT/<target>.summary and returns non-zero on a finding.
run_target() {
  local t="$1"
  local corpus="$OUT/corpus/$t" artifacts="$OUT/artifacts/$t" log="$OUT/$t.log"
  rm -rf "$corpus" && mkdir -p "$corpus" "$artifacts"
  cp -f "$ROOT/fuzz/corpus/$t"/* "$corpus"/
  if compgen -G "$ROOT/fuzz/regressions/$t/*" >/dev/null; then cp -f "$ROOT/fuzz/regressions/$t"/* "$corpus"/; fi
  local seeds rc
  seeds=$(find "$corpus" -type f | wc -l)
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s (log: $log)"
  set +e
  # The importer targets write their input files into a scratch folder under TMPDIR, removed at exit.
  TMPDIR="$OUT" UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "$OUT/${t}_fuzzer" "$corpus" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len="${MAXLEN[$t]}" \
    -dict="$ROOT/fuzz/${DICT[$t]}" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    >"$log" 2>&1
  rc=$?
  set -e
  stat() { grep -o "stat::$1: *[0-9]*" "$log" | grep -o '[0-9]*$' | tail -n1 || true; }
  local execs eps last cov ft after found
  execs=$(stat number_of_executed_units)
  eps=$(stat average_exec_per_sec)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  after=$(find "$corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    found="none"
  else
    local artifact
    artifact=$(ls -t "$artifacts"/* 2>/dev/null | head -n1 || true)
    found="FINDING (exit $rc): ${artifact:-no artifact, see $log}"
    grep -m3 -E 'ERROR: |runtime error|broken promise|Test unit written' "$log" >&2 || true
  fi
  printf '%-15s executions %-10s exec/s %-7s cov %-6s ft %-7s corpus %s -> %s  findings: %s\n' \
    "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$seeds" "$after" "$found" >"$OUT/$t.summary"
  echo "fuzz: $(cat "$OUT/$t.summary")"
  return "$rc"
}

# FUZZ_PARALLEL targets at a time (default 1: one after the other).
rc_all=0
for t in "${TARGETS[@]}"; do
  rm -f "$OUT/$t.summary"
  run_target "$t" &
  while [ "$(jobs -rp | wc -l)" -ge "${FUZZ_PARALLEL:-1}" ]; do wait -n || true; done
done
wait || true

echo "fuzz: summary (${SECONDS_PER_TARGET}s per target)"
for t in "${TARGETS[@]}"; do
  if [ -f "$OUT/$t.summary" ]; then echo "  $(cat "$OUT/$t.summary")"; else echo "  $t: no result"; rc_all=1; fi
  if grep -q 'findings: FINDING' "$OUT/$t.summary" 2>/dev/null; then rc_all=1; fi
done
exit "$rc_all"
