#!/usr/bin/env python3
"""Replica campaign (issue 11, item 2): N `baton serve` replicas sharing one PostgreSQL store never together overspend
a key's budget.

    python3 tests/campaigns/replicas.py --baton build/baton [--db URL] [--replicas 3] [--clients 200] [--json out]

Starts a throw-away PostgreSQL (scripts/pg_server.sh) unless --db is given, a fake OpenAI upstream (fixed usage, so
every call costs the same), and N replicas with `budgets: shared` over the same store, each with its own replica_id.
Then `--clients` client threads, each sending to a random replica, spend three keys' budgets down until every key is
refused (429 insufficient_quota) or --seconds pass. Checked at the end, with every replica stopped:

  * overrun = 0: per key, the stored spent_usd <= budget_usd, and the costs the clients were charged (x-baton-cost-usd
    of their 200 answers) add up to no more than the budget either;
  * charged = stored: the clients' charged costs add up to the stored spent_usd (every settled call was answered);
  * reserved_usd back to 0 and no budget_reservations row left (no reservation leaks);
  * every request ended in a 200 or an OpenAI-shaped error; no "bad" outcome;
and reported: the share of each budget actually spent (how much of it the atomic reservations let clients use), the
requests answered and refused, requests/s.

`--budgets local` runs the same load with per-process ledgers over one SQLite file, the set-up a shared store
replaces, to show what goes wrong without it (the overrun it prints is expected there; it is not run by the tests).
Everything on 127.0.0.1 in a temporary folder removed at the end; every child process is killed, failures included.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

KEYS = {"small": ("sk-rep-small", 0.02), "medium": ("sk-rep-medium", 0.1), "large": ("sk-rep-large", 0.3)}
PRICE_IN, PRICE_OUT = 10, 30  # USD per 1M tokens; the fake upstream reports 20 prompt + 8 completion tokens


def start_pg(ws):
    pg_dir = ws.path("pg")
    os.chmod(ws.dir, 0o755)  # mkdtemp's folder is private; the server runs as the postgres user when we are root
    script = os.path.join(lib.ROOT, "scripts", "pg_server.sh")
    out = subprocess.run(["bash", script, "start", pg_dir], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError("pg_server.sh start: " + (out.stdout + out.stderr)[-1500:])
    ws.closers.append(lambda: subprocess.run(["bash", script, "stop", pg_dir], capture_output=True, timeout=120))
    return out.stdout.strip().splitlines()[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baton", required=True)
    ap.add_argument("--db", help="a postgresql:// URL to use (default: a throw-away server of scripts/pg_server.sh)")
    ap.add_argument("--budgets", choices=["shared", "local"], default="shared")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=90, help="stop sending after this long (default 90)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="also write the figures as JSON here")
    args = ap.parse_args()
    baton = os.path.abspath(args.baton)
    started = time.time()
    failures = []

    with lib.Workspace("baton-replicas-") as ws:
        if args.budgets == "local":
            store = ws.path("shared.db")
        else:
            store = args.db or start_pg(ws)
        upstream = lib.start_fake_upstream(ws, lib.Faults())
        replicas = []
        for i in range(args.replicas):
            config = ws.path("replica%d.yaml" % i)
            with open(config, "w") as f:
                f.write('store: "%s"\nbudgets: %s\nreplica_id: replica-%d\nio_threads: 2\nkeys:\n'
                        % (store, args.budgets, i))
                for name, (key, budget) in KEYS.items():
                    f.write("  - {name: %s, key: %s, budget_usd: %g}\n" % (name, key, budget))
                f.write('experts:\n  - {name: fake, kind: openai, base_url: "http://127.0.0.1:%d/v1", model: fake, '
                        "usd_per_mtok_in: %d, usd_per_mtok_out: %d, default_max_tokens: 16, timeout_s: 20}\n"
                        % (upstream.server_address[1], PRICE_IN, PRICE_OUT))
            replicas.append(lib.Baton(ws, baton, config, name="replica%d" % i))
        lib.log("replicas: %d replicas on ports %s over %s (budgets: %s)" % (
            len(replicas), [r.port for r in replicas], "PostgreSQL" if store.startswith("postgres") else "SQLite",
            args.budgets))

        ledger = lib.Ledger()
        exhausted = {name: False for name in KEYS}
        refusals, refusals_lock = {name: 0 for name in KEYS}, threading.Lock()
        last_ok = {name: time.time() for name in KEYS}
        deadline = time.time() + args.seconds
        t_load = time.time()

        def client(t):
            r = random.Random(args.seed * 1000 + t)
            names = list(KEYS)
            while time.time() < deadline and not all(exhausted.values()):
                name = r.choice([n for n in names if not exhausted[n]] or names)
                port = r.choice(replicas).port
                body = lib.chat("fake", "[cid %d] count to three" % ledger.next_id(), max_tokens=16,
                                stream=r.random() < 0.3)
                item = ledger.send(port, KEYS[name][0], body, timeout=60, tag=name)
                with refusals_lock:
                    if item["outcome"] == "ok":
                        last_ok[name] = time.time()
                    elif item["status"] == 429 and item["detail"].endswith("budget_exhausted"):
                        # A refusal can come while other calls' reservations hold what is left, and those may
                        # settle for less: the key counts as spent once refusals go on with no answer for a second.
                        refusals[name] += 1
                        if refusals[name] >= 20 and time.time() - last_ok[name] > 1.0:
                            exhausted[name] = True

        threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(args.seconds + 120)
        load_s = time.time() - t_load
        items = ledger.snapshot()
        for rep in replicas:
            if not rep.alive():
                failures.append("replica on port %d died:\n%s" % (rep.port, rep.output()[-1500:]))
            rep.stop()

        db = lib.Db(store)
        budgets = db.budgets()
        leftover = db.value("SELECT count(*) FROM budget_reservations") if args.budgets == "shared" else 0
        per_key = {}
        for name, (key, budget) in KEYS.items():
            mine = [i for i in items if i["tag"] == name]
            answered = [i for i in mine if i["outcome"] == "ok"]
            charged = sum(i["cost"] for i in answered)
            row = budgets.get(name, {"spent": float("nan"), "reserved": float("nan")})
            overrun = max(0.0, row["spent"] - budget, charged - budget)
            per_key[name] = {
                "budget_usd": budget, "stored_spent_usd": row["spent"], "stored_reserved_usd": row["reserved"],
                "charged_to_clients_usd": charged, "overrun_usd": overrun, "share_used": row["spent"] / budget,
                "requests": len(mine), "answered": len(answered),
                "refused_budget": sum(1 for i in mine if i["status"] == 429),
                "other_errors": sum(1 for i in mine if i["outcome"] == "error" and i["status"] != 429),
                "bad": sum(1 for i in mine if i["outcome"] == "bad"),
            }
            k = per_key[name]
            if overrun > 1e-9:
                failures.append("key %s: overrun $%.6f (budget $%g, stored spent $%.6f, charged $%.6f)"
                                % (name, overrun, budget, row["spent"], charged))
            if abs(charged - row["spent"]) > 1e-9 + 1e-9 * budget:
                failures.append("key %s: clients were charged $%.9f, the store says $%.9f spent"
                                % (name, charged, row["spent"]))
            if abs(row["reserved"]) > 1e-12:
                failures.append("key %s: $%.9f still reserved after every replica stopped" % (name, row["reserved"]))
            if k["bad"]:
                bad = [i["detail"] for i in mine if i["outcome"] == "bad"][:3]
                failures.append("key %s: %d requests without a proper answer or error, e.g. %s" % (name, k["bad"], bad))
            if not exhausted[name]:
                failures.append("key %s was never refused for its budget within %g s: the campaign did not reach the "
                                "limit" % (name, args.seconds))
        if leftover:
            failures.append("%d budget_reservations rows left after every replica stopped" % leftover)

        total = len(items)
        figures = {
            "replicas": args.replicas, "clients": args.clients, "budgets": args.budgets,
            "store": "postgresql" if store.startswith("postgres") else "sqlite",
            "requests": total, "answered": sum(1 for i in items if i["outcome"] == "ok"),
            "load_seconds": round(load_s, 2), "requests_per_s": round(total / load_s, 1) if load_s > 0 else None,
            "keys": per_key, "reservations_left": leftover, "seconds": round(time.time() - started, 1),
        }
        print("| key | budget $ | stored spent $ | charged to clients $ | overrun $ | share used | requests | "
              "answered | refused (429) | other errors | bad |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, k in per_key.items():
            print("| %s | %g | %.6f | %.6f | %.6f | %.1f%% | %d | %d | %d | %d | %d |" % (
                name, k["budget_usd"], k["stored_spent_usd"], k["charged_to_clients_usd"], k["overrun_usd"],
                100 * k["share_used"], k["requests"], k["answered"], k["refused_budget"], k["other_errors"], k["bad"]))
        print("%d replicas (%s budgets, %s), %d clients: %d requests in %.1f s (%.0f req/s), %d reservations left; "
              "campaign %.0f s" % (args.replicas, args.budgets, figures["store"], args.clients, total, load_s,
                                   figures["requests_per_s"] or 0, leftover, figures["seconds"]))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=2)
    if args.budgets == "local":
        return 0  # a demonstration of what goes wrong without a shared store
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("replica campaign: held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
