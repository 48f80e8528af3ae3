#!/usr/bin/env python3
"""Checks `baton onboard` against the truth on a bundled dataset whose newcomer column is recorded.

usage: scripts/onboard_check.py DATA_DIR NEWCOMER MEMBER[,MEMBER...] [--seeds N] [--queries K]

Prints the exact S(U), S(U + new), the gain and the three best swaps (from outcomes.csv), then replays onboard's draw
rule (include/baton/onboard.h: weights 0.05 + headroom + uniqueness, src/universe/onboard.cc's seeded generator, pool in
queries.jsonl order) for seeds 0..N-1 and prints the importance-weighted gain estimates: their mean shows the
estimator's bias, their spread its noise at K draws. Seed s here gives the same draws as `baton onboard --seed s`.
"""
import argparse, bisect, collections, csv, json

p = argparse.ArgumentParser()
p.add_argument("data"); p.add_argument("new"); p.add_argument("members")
p.add_argument("--seeds", type=int, default=200); p.add_argument("--queries", type=int, default=50)
a = p.parse_args()
members = a.members.split(",")
M = (1 << 64) - 1

def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)

class Rng:
    def __init__(self, seed): self.s = mix(seed ^ 0x6A09E667F3BCC909)
    def uniform(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M
        return (mix(self.s) >> 11) * (1.0 / 9007199254740992.0)

s = collections.defaultdict(dict)
for r in csv.DictReader(open(a.data + "/outcomes.csv")):
    s[r["query_id"]][r["model"]] = float(r["score"])
order = [json.loads(line)["id"] for line in open(a.data + "/queries.jsonl")]
qs = [q for q in order if any(m in s[q] for m in members)]
N = len(qs)
def S(U): return sum(max([s[q].get(m, 0) for m in U] + [0]) for q in qs) / N
su = S(members)
print(f"queries {N}  S(U) {su:.4f}  S(U+new) {S(members + [a.new]):.4f}  exact gain {S(members + [a.new]) - su:+.4f}")
sw = sorted(((S([m for m in members if m != x] + [a.new]) - su, x) for x in members), reverse=True)
print("exact best swaps:", ", ".join(f"{x} {v:+.4f}" for v, x in sw[:3]))
best, w = [], []
for q in qs:
    v = sorted([s[q].get(m, 0) for m in members], reverse=True) + [0]
    best.append(v[0]); w.append(0.05 + (1 - v[0]) + (v[0] - v[1]))
cdf, t = [], 0.0
for x in w: t += x; cdf.append(t)
f = [max(0, s[qs[i]].get(a.new, 0) - best[i]) for i in range(N)]
ests = []
for seed in range(a.seeds):
    r, e = Rng(seed), 0.0
    for _ in range(a.queries):
        i = min(N - 1, bisect.bisect_right(cdf, r.uniform() * t))
        e += f[i] / (N * w[i] / t)
    ests.append(e / a.queries)
ests.sort()
mean = sum(ests) / len(ests)
sd = (sum((e - mean) ** 2 for e in ests) / len(ests)) ** 0.5
print(f"gain estimates over {a.seeds} seeds at K={a.queries}: mean {mean:+.4f}, sd {sd:.4f}, "
      f"5%..95% {ests[len(ests) // 20]:+.4f}..{ests[len(ests) * 19 // 20]:+.4f}")
