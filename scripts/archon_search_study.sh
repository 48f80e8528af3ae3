#!/usr/bin/env bash
# The search comparison of MERGE-NOTES.md / bench/RESULTS.md: for each objective and algorithm, 20 seeds, the number
# of evaluations needed to first reach the optimum (test functions: within --tolerance of the published minimum;
# recorded objectives: the global best found by enumerating the replay space).
#   scripts/archon_search_study.sh [BATON] [OUTDIR]
set -euo pipefail
BATON=${1:-build/baton}
OUT=${2:-out/archon-search}
SEEDS=${SEEDS:-20}
mkdir -p "$OUT"
for algo in random greedy bayes; do
  "$BATON" archon search --objective branin --budget-evals 500 --algo "$algo" --seeds "$SEEDS" --quiet \
    --json "$OUT/branin-$algo.json"
  "$BATON" archon search --objective hartmann6 --tolerance 0.05 --budget-evals 200 --algo "$algo" --seeds "$SEEDS" \
    --quiet --json "$OUT/hartmann6-$algo.json"
  "$BATON" archon search --space examples/archon/replay-space.json --data data/mmlu-pro --split-seed 0 \
    --budget-evals 60 --algo "$algo" --seeds "$SEEDS" --quiet --json "$OUT/mmlu-pro-$algo.json"
  "$BATON" archon search --space examples/archon/replay-space.json --data data/routerbench-train \
    --test data/routerbench-test --budget-evals 60 --algo "$algo" --seeds "$SEEDS" --quiet \
    --json "$OUT/routerbench-$algo.json"
done
