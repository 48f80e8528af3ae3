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
