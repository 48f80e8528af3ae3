#!/usr/bin/python3
"""Times routing N prompts from Python (Model.route, returning a DataFrame); build/python/baton_route_bench times
the same call from C++. Prints the best and median wall and CPU time of R runs.

  PYTHONPATH=build/python /usr/bin/python3 python/bench_route.py --model build/bench-route.baton
  build/python/baton_route_bench build/bench-route.baton data/routerbench-test 10000 0.001 10

When --model does not exist it is fitted first (--predictor on --train) and saved there.
"""
import argparse
import os
import statistics
import sys
import time

# This folder holds baton's sources without the compiled extension: import the built package from PYTHONPATH.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import baton  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--predictor", default=None, help="default: the first of baton.predictors()")
    ap.add_argument("--train", default="data/routerbench-train")
    ap.add_argument("--data", default="data/routerbench-test", help="prompts (texts and domains, cycled)")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--budget-per-query", type=float, default=0.001)
    ap.add_argument("-r", "--runs", type=int, default=10)
    a = ap.parse_args()
    if not os.path.exists(a.model):
        baton.fit(baton.load_dir(a.train), a.predictor).save(a.model)
    model = baton.load_model(a.model)
    ds = baton.load_dir(a.data)
    texts = [ds.texts[i % ds.num_queries] for i in range(a.n)]
    domains = [ds.query_domains[i % ds.num_queries] for i in range(a.n)]
    secs, cpu = [], []
    for _ in range(a.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        routes = model.route(texts, a.budget_per_query * a.n, domains)
        secs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"python: routed {len(routes)} prompts over {len(model.experts)} experts ({model.predictor}): "
          f"best {min(secs):.4f} s, median {statistics.median(secs):.4f} s wall; "
          f"cpu best {min(cpu):.4f} s, median {statistics.median(cpu):.4f} s ({a.runs} runs)")


if __name__ == "__main__":
    main()
