#!/usr/bin/env bash
# The evidence for the self-play loop (issue 9): `baton selfplay-sim` on mmlu-pro (the 24 open experts, the same
# random half for test as scripts/run_main.sh's bench) and on routerbench-train -> routerbench-test, 5 seeds each.
# Writes $BATON_OUT/selfplay-sim/<name>.json and .svg (the plot of AIQ vs paid evaluations, all seeds).
set -euo pipefail
BUILD=${1:-build}
OUT=${BATON_OUT:-out}/selfplay-sim
SEEDS=${SEEDS:-0,1,2,3,4}
mkdir -p "$OUT"
OPEN=$(tail -n +2 data/mmlu-pro/models.csv | cut -d, -f1 | grep -v -E 'gemini|gpt-4o|jamba|c4ai|DeepSeek' | paste -sd, -)
"$BUILD/baton" selfplay-sim data/mmlu-pro --experts "$OPEN" --test-fraction 0.5 --split-seed 0 --seed "$SEEDS" \
  --json "$OUT/mmlu-pro-open.json"
"$BUILD/baton" selfplay-sim --train data/routerbench-train --test data/routerbench-test --seed "$SEEDS" \
  --json "$OUT/routerbench.json"
