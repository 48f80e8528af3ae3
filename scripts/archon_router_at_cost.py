#!/usr/bin/env python3
"""The default router's test accuracy at a given cost per query, read off `baton bench --json`'s curve (the best
accuracy among the curve's points whose cost per query is at most COST; linear interpolation between neighbours).
    scripts/archon_router_at_cost.py BENCH_JSON COST"""
import json, sys
j = json.load(open(sys.argv[1]))
cost = float(sys.argv[2])
r = next(x for x in j["routers"] if x["name"] == j["default_router"])
pts = sorted((p["cost_per_query"], p["accuracy"]) for p in r["curve"])
best = None
for (c0, a0), (c1, a1) in zip(pts, pts[1:] + [pts[-1]]):
    if c0 <= cost:
        a = a0 if c1 <= c0 or c1 <= cost else a0 + (a1 - a0) * (cost - c0) / (c1 - c0)
        if c1 <= cost:
            a = max(a, a1)
        best = a if best is None else max(best, a)
print(json.dumps({"router": r["name"], "cost": cost, "accuracy": best,
                  "max_curve_cost": pts[-1][0], "max_curve_accuracy": max(a for _, a in pts)}))
