#!/usr/bin/env bash
# The main job on the bundled data: import every dataset into one database and print its statistics.
set -euo pipefail
BUILD=${1:-build}
OUT=${BATON_OUT:-out}
mkdir -p "$OUT"
DB="$OUT/baton.db"
rm -f "$DB" "$DB-wal" "$DB-shm"
for d in data/*/; do
  [ -f "$d/outcomes.csv" ] || continue
  "$BUILD/baton" import "$d" --db "$DB"
done
"$BUILD/baton" stats --db "$DB" --dataset mmlu-pro
echo
echo "database: $DB  (try: $BUILD/baton stats --db $DB --dataset routerbench-test)"

# Benchmarks (`baton bench`): every router is trained on the train split only and swept over lambda on the test split;
# realised accuracy and cost are compared with single experts, random, the oracle and a cascade.
BENCH="$OUT/bench"
bench() {  # NAME ARGS...
  local name=$1
  shift
  mkdir -p "$BENCH/$name"
  echo
  echo "== baton bench: $name"
  "$BUILD/baton" bench "$@" --json "$BENCH/$name/bench.json" --report "$BENCH/$name"
}
bench routellm-mmlu-gsm8k data/routellm-mmlu-gsm8k --test-fraction 0.5 --seed 0
bench routerbench --train data/routerbench-train --test data/routerbench-test
# mmlu-pro restricted to the 24 open models (no API-only or very large proprietary ones).
OPEN=$(tail -n +2 data/mmlu-pro/models.csv | cut -d, -f1 | grep -v -E 'gemini|gpt-4o|jamba|c4ai|DeepSeek' | paste -sd, -)
bench mmlu-pro-open data/mmlu-pro --experts "$OPEN" --test-fraction 0.5 --seed 0
{
  echo '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>baton bench</title></head>'
  echo '<body style="font-family: Helvetica, Arial, sans-serif; margin: 24px 40px"><h1>baton bench reports</h1><ul>'
  for n in routellm-mmlu-gsm8k routerbench mmlu-pro-open; do
    echo "<li><a href=\"bench/$n/index.html\">$n</a> (<a href=\"bench/$n/bench.json\">JSON</a>)</li>"
  done
  echo '</ul></body></html>'
} > "$OUT/index.html.tmp" && mv "$OUT/index.html.tmp" "$OUT/index.html"
echo
echo "benchmark reports: $OUT/index.html  (one per dataset under $BENCH/<name>/{index.html,bench.json})"
