#!/usr/bin/env python3
"""Crash campaign (issue 11, item 4): `kill -9` of `baton serve` under load, round after round over the same store.

    python3 tests/campaigns/crash.py --baton build/baton [--db URL] [--rounds 20] [--json out.json]

Each round starts `baton serve` (a fake OpenAI upstream behind it: fast, fixed usage), lets 8 client threads send
requests (plain and streamed, two keys: a large budget and a tight one that runs out during the campaign), and
SIGKILLs the gateway after a random 0.3-1.2 s of load. Then, with no gateway running, it reads the store and checks:

  * the store opens cleanly: SQLite `PRAGMA integrity_check` = ok (PostgreSQL: a consistency query, see lib.Db);
  * answered - recorded = 0: every request a client got a complete 200 for (a JSON answer, or a stream that reached
    [DONE]) has its row, with status 200, found by its x-request-id;
  * spend survives: the stored spent_usd grew by at least the sum of the costs the 200 answers charged
    (x-baton-cost-usd, or x_baton_cost_usd in a stream's last chunk), and by at most that plus one call's cost per
    request in flight at the kill (calls settled and made durable whose answer never reached the client);
  * no reservation leaks: reserved_usd (which can be left non-zero by the kill) is 0 once the next gateway opened
    the store; and over the whole campaign the tight key's answered spend never exceeds its budget.

Everything on 127.0.0.1 in a temporary folder removed at the end; every child process is killed, failures included.
"""
import argparse
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

KEYS = {"bulk": ("sk-crash-bulk", 1000.0), "tight": ("sk-crash-tight", 0.05)}
PRICE_IN, PRICE_OUT, TOKENS_IN, TOKENS_OUT = 10, 30, 20, 8  # the fake upstream reports this usage for every call
CALL_COST = (TOKENS_IN * PRICE_IN + TOKENS_OUT * PRICE_OUT) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baton", required=True)
    ap.add_argument("--db", help="store URL: a SQLite file (default: one in the temporary folder) or postgresql://...")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", help="also write the per-round figures as JSON here")
    args = ap.parse_args()
    baton = os.path.abspath(args.baton)
    rng = random.Random(args.seed)
    started = time.time()
    per_round, failures = [], []

    with lib.Workspace("baton-crash-") as ws:
        upstream = lib.start_fake_upstream(ws, lib.Faults())  # no fault set: every call answers
        store = args.db or ws.path("gateway.db")
        config = ws.path("gateway.yaml")
        with open(config, "w") as f:
            # One replica id across the restarts: a restarted gateway releases what its killed predecessor reserved.
            f.write("store: \"%s\"\nreplica_id: crash-campaign\nkeys:\n" % store)
            for name, (key, budget) in KEYS.items():
                f.write("  - {name: %s, key: %s, budget_usd: %g}\n" % (name, key, budget))
            f.write("experts:\n  - {name: fake, kind: openai, base_url: \"http://127.0.0.1:%d/v1\", model: fake, "
                    "usd_per_mtok_in: %d, usd_per_mtok_out: %d, default_max_tokens: %d, timeout_s: 10, "
                    "max_retries: 0}\n" % (upstream.server_address[1], PRICE_IN, PRICE_OUT, TOKENS_OUT))
        db = lib.Db(store)
        tight_answered_cost = 0.0
        for rnd in range(args.rounds + 1):
            gw = lib.Baton(ws, baton, config, name="baton-%d" % rnd)
            # The store as this gateway opened it.
            integrity = db.integrity()
            budgets = db.budgets()
            reserved_after_open = sum(b["reserved"] for b in budgets.values())
            if rnd == args.rounds:  # the last start only checks what the last kill left
                per_round[-1].update(integrity_next=integrity, reserved_after_restart=reserved_after_open)
                gw.stop()
                break
            if per_round:
                per_round[-1].update(integrity_next=integrity, reserved_after_restart=reserved_after_open)
            spent_before = {n: b["spent"] for n, b in budgets.items()}
            max_id = db.value("SELECT coalesce(max(id), 0) FROM requests")
            ledger, stop = lib.Ledger(), threading.Event()

            def client(t):
                i = t
                while not stop.is_set():
                    key = KEYS["tight" if i % 5 == 0 else "bulk"][0]
                    cid = ledger.next_id()
                    body = lib.chat("fake", "[cid %d] hello" % cid, stream=(i % 3 == 0))
                    ledger.send(gw.port, key, body, timeout=30, tag=cid)
                    i += 1

            threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(args.threads)]
            for th in threads:
                th.start()
            time.sleep(rng.uniform(0.3, 1.2))
            kill_t = time.time()
            gw.kill9()
            stop.set()
            for th in threads:
                th.join(60)
            items = ledger.snapshot()
            answered = [i for i in items if i["outcome"] == "ok"]
            refused = [i for i in items if i["outcome"] == "error"]
            # No answer, or a stream cut by the kill: in flight at the kill when sent before it; sent after it (the
            # clients run on until they notice) they found no gateway and reached nothing.
            in_flight = [i for i in items if i["outcome"] == "bad" and i["t0"] < kill_t]
            after_kill = [i for i in items if i["outcome"] == "bad" and i["t0"] >= kill_t]
            rows200 = {r[0] for r in db.rows("SELECT request_id FROM requests WHERE id > %d AND http_status = 200"
                                             % max_id)}
            n_rows = db.value("SELECT count(*) FROM requests WHERE id > %d" % max_id)
            assert not [i for i in after_kill if i["outcome"] == "ok"]
            lost = [i for i in answered if i["request_id"] not in rows200]
            after = db.budgets()
            reserved_at_kill = sum(b["reserved"] for b in after.values())
            delta = sum(after[n]["spent"] - spent_before.get(n, 0) for n in after)
            answered_cost = sum(i["cost"] for i in answered)
            tight_answered_cost += sum(i["cost"] for i in answered if i["key"] == KEYS["tight"][0])
            slack = delta - answered_cost
            r = {"round": rnd + 1, "sent": len(items) - len(after_kill), "answered": len(answered), "refused": len(refused),
                 "in_flight_at_kill": len(in_flight), "sent_after_kill": len(after_kill), "rows": n_rows, "lost": len(lost),
                 "answered_cost": answered_cost, "spent_delta": delta, "spend_slack": slack,
                 "slack_bound": len(in_flight) * CALL_COST, "reserved_at_kill": reserved_at_kill,
                 "integrity": db.integrity(), "tight_spent": after["tight"]["spent"]}
            per_round.append(r)
            print("round %2d: %4d sent before the kill, %4d answered 200, %3d refused, %2d in flight at the kill; "
                  "%4d rows, %d lost; "
                  "spend +$%.6f stored vs $%.6f answered (slack $%.6f <= $%.6f); reserved at the kill $%.6f; "
                  "integrity %s" % (r["round"], r["sent"], r["answered"], r["refused"], r["in_flight_at_kill"],
                                    r["rows"], r["lost"], delta, answered_cost, slack, r["slack_bound"],
                                    reserved_at_kill, r["integrity"]), flush=True)
            for i in lost[:3]:
                print("    answered but not recorded: %s (%s)" % (i["request_id"], "stream" if i["stream"] else "plain"))

        # ---- checks
        eps = 1e-9
        rows = []

        def check(name, figure, held):
            rows.append((name, "held" if held else "FAILED", figure))
            if not held:
                failures.append(name)

        tot = lambda k: sum(r[k] for r in per_round)  # noqa: E731
        bad_integrity = [r["round"] for r in per_round if r["integrity"] != "ok" or r.get("integrity_next") != "ok"]
        check("store opens cleanly after every kill", "%d rounds, integrity not ok after rounds %s" %
              (len(per_round), bad_integrity or "none"), not bad_integrity and len(per_round) == args.rounds)
        check("answered - recorded = 0", "%d sent, %d answered 200, %d lost (per round: %s)" %
              (tot("sent"), tot("answered"), tot("lost"), " ".join(str(r["lost"]) for r in per_round)),
              tot("lost") == 0 and tot("answered") > 0)
        under = [r["round"] for r in per_round if r["spend_slack"] < -eps]
        over = [r["round"] for r in per_round if r["spend_slack"] > r["slack_bound"] + eps]
        check("spend survives the kills", "stored +$%.6f vs answered $%.6f; slack $%.6f over %d calls in flight "
              "(<= $%.6f); rounds short: %s, rounds over: %s" %
              (tot("spent_delta"), tot("answered_cost"), tot("spend_slack"), tot("in_flight_at_kill"),
               tot("slack_bound"), under or "none", over or "none"), not under and not over)
        leaks = [r["round"] for r in per_round if abs(r.get("reserved_after_restart", 1)) > 1e-12]
        check("no reservation leaks (reserved_usd 0 once the store is reopened)",
              "reserved at the kills: %d rounds > 0 (max $%.6f); after restart: rounds not 0: %s" %
              (sum(1 for r in per_round if r["reserved_at_kill"] > 0), max(r["reserved_at_kill"] for r in per_round),
               leaks or "none"), not leaks)
        tight = KEYS["tight"][1]
        check("the tight key's budget holds across restarts", "answered $%.6f, stored $%.6f of $%g" %
              (tight_answered_cost, per_round[-1]["tight_spent"], tight),
              tight_answered_cost <= tight + eps and per_round[-1]["tight_spent"] <= tight * (1 + 1e-9))
        duration = time.time() - started
        lib.print_table(rows, "Crash campaign (%s store, %d rounds of kill -9 under %d client threads, %.0f s)" %
                        ("PostgreSQL" if db.pg else "SQLite", len(per_round), args.threads, duration))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"rounds": per_round, "checks": rows, "duration_s": duration,
                           "store": "postgresql" if db.pg else "sqlite"}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
