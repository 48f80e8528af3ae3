#!/usr/bin/env bash
# The search comparison of bench/RESULTS.md: for each objective and algorithm, SEEDS seeds (default
# 20), the number of evaluations needed to first reach the optimum (test functions: within --tolerance of the
# published minimum; recorded objectives: the global best found by enumerating the 60-point replay space). Runs that
# never reach it within the budget count as budget + 1 in the mean and median (printed as misses).
#   scripts/archon_search_study.sh [BATON] [OUTDIR] [OBJECTIVES...]   (objectives: branin hartmann6 mmlu-pro routerbench)
set -euo pipefail
BATON=${1:-build/baton}
OUT=${2:-out/archon-search}
shift 2 || true
OBJECTIVES=${*:-branin hartmann6 mmlu-pro routerbench}
SEEDS=${SEEDS:-20}
ALGOS=${ALGOS:-random greedy bayes}
mkdir -p "$OUT"
for obj in $OBJECTIVES; do
  for algo in $ALGOS; do
    case $obj in
      branin) args=(--objective branin --tolerance 0.01 --budget-evals 200) ;;
      hartmann6) args=(--objective hartmann6 --tolerance 0.05 --budget-evals 200) ;;
      mmlu-pro) args=(--space examples/archon/replay-space.json --data data/mmlu-pro --split-seed 0 --budget-evals 60) ;;
      routerbench) args=(--space examples/archon/replay-space.json --data data/routerbench-train
                         --test data/routerbench-test --budget-evals 60) ;;
    esac
    "$BATON" archon search "${args[@]}" --algo "$algo" --seeds "$SEEDS" --json "$OUT/$obj-$algo.json" 2>"$OUT/$obj-$algo.log"
  done
done
