#!/usr/bin/env python3
"""Fault campaign (issue 11, item 3): `baton serve` in front of real llama-server experts (tiny random GGUFs) and a
scripted fake OpenAI upstream, while concurrent clients (streaming and not, several keys with small budgets) send
requests and faults are injected:

  llama-a  stalled: a TCP proxy between baton and it stops forwarding mid-request; its timeout_s must fire and the
           routed request fall back (to llama-b), a request for it by name gets an OpenAI-shaped 504
  llama-b  SIGKILLed, then restarted on the same port
  fake     429 (with and without Retry-After), 500, 502, 503, malformed JSON, connection closed mid-answer (after
           some SSE chunks when streaming)
  store    (with --db postgresql://... --pg-dir DIR) the database restarted under load: scripts/pg_server.sh restart

    python3 tests/campaigns/faults.py --baton build/baton [--db URL --pg-dir DIR] [--seconds 60] [--json out.json]

Checks, printed as a table (exit 1 when one fails): every request ends in a response or a correct OpenAI-shaped error
(HTTP status + {"error":{message,type,code}}, or a well-formed SSE error event then [DONE]); requests sent = answered
+ errored = the gateway's /metrics request counter (per status code) = rows in the store's `requests` table, and
answered 200 = rows with 200; no budget overrun (spent <= budget per key in the store, baton_budget_overruns_total 0,
no reservation left); each fault injected and survived. Everything on 127.0.0.1 in a temporary folder removed at the
end; every child process is killed, failures included. Exits 77 (skipped) without llama-server.
"""
import argparse
import json
import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

KEYS = {"big": ("sk-camp-big", 1000.0), "s1": ("sk-camp-s1", 0.01), "s2": ("sk-camp-s2", 0.01),
        "s3": ("sk-camp-s3", 0.02)}
PRICES = {"fake": (10, 30), "llama-a": (2, 8), "llama-b": (1, 4)}


def write_router_train(d):
    """The router's training set: fake scores best, then llama-a, then llama-b (lambda 0), so a routed request tries
    them in that order within its baton.experts pool."""
    os.makedirs(d)
    with open(os.path.join(d, "models.csv"), "w") as f:
        f.write("model,params_b,usd_per_mtok_in,usd_per_mtok_out,price_source\n")
        for name, (pin, pout) in PRICES.items():
            f.write("%s,,%g,%g,test\n" % (name, pin, pout))
    with open(os.path.join(d, "queries.jsonl"), "w") as q, open(os.path.join(d, "outcomes.csv"), "w") as o:
        o.write("query_id,model,score,cost_usd,tokens_in,tokens_out\n")
        for i in range(8):
            q.write(json.dumps({"id": "q%d" % i, "domain": "sea", "text": "Say something about the sea, number %d." % i})
                    + "\n")
            for name, score in (("fake", 0.9), ("llama-a", 0.6), ("llama-b", 0.3)):
                pin, pout = PRICES[name]
                o.write("q%d,%s,%g,%.9f,20,8\n" % (i, name, score, (20 * pin + 8 * pout) / 1e6))


def config_text(store, train, fake_port, proxy_port, llama_b_port):
    keys = "".join("  - {name: %s, key: %s, budget_usd: %g}\n" % (n, k, b) for n, (k, b) in KEYS.items())
    ex = [("fake", fake_port, "fake", 5, 1), ("llama-a", proxy_port, "tiny", 3, 0), ("llama-b", llama_b_port, "tiny", 30, 0)]
    experts = "".join(
        "  - {name: %s, kind: openai, base_url: \"http://127.0.0.1:%d/v1\", model: %s, usd_per_mtok_in: %g, "
        "usd_per_mtok_out: %g, timeout_s: %d, max_retries: %d}\n" % (n, p, m, PRICES[n][0], PRICES[n][1], t, r)
        for n, p, m, t, r in ex)
    return ("store: \"%s\"\nreplica_id: fault-campaign\nmetrics_public: true\nrouter: {train_dir: %s, predictor: domain-prior, lambda: 0}\n"
            "keys:\n%sexperts:\n%s" % (store, train, keys, experts))


# What the clients send, in turn: (model, baton.experts pool or None).
MIX = [("baton", ["fake", "llama-a", "llama-b"]), ("baton", ["llama-a", "llama-b"]), ("fake", None),
       ("baton", ["fake", "llama-b"]), ("llama-b", None), ("llama-a", None), ("baton", ["fake", "llama-a", "llama-b"])]
KEY_MIX = ["big", "big", "s1", "big", "big", "s2", "big", "s3"]


def body_for(cid, model, pool, stream):
    b = lib.chat(model, "[cid %d] Say something about the sea." % cid, max_tokens=8, temperature=0, stream=stream)
    if pool:
        b["baton"] = {"experts": pool}
    return b


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baton", required=True)
    ap.add_argument("--db", help="store URL: a SQLite file (default: one in the temporary folder) or postgresql://...")
    ap.add_argument("--pg-dir", help="with a postgresql:// --db: the data directory of scripts/pg_server.sh; the "
                                     "database is restarted under load (scripts/pg_server.sh restart DIR)")
    ap.add_argument("--seconds", type=float, default=60, help="length of the load phase (default 60)")
    ap.add_argument("--threads", type=int, default=12)
    ap.add_argument("--llama-prefix", default=os.environ.get("BATON_LLAMA_PREFIX",
                                                             "/root/.cache/baton/llama.cpp-3.22.1"))
    ap.add_argument("--make-gguf", help="the baton-make-tiny-gguf tool (default: beside --baton's build)")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args()
    baton = os.path.abspath(args.baton)
    tool = args.make_gguf or os.path.join(os.path.dirname(baton), "src", "experts", "baton-make-tiny-gguf")
    llama_bin = os.path.join(args.llama_prefix, "bin", "llama-server")
    if not (os.path.exists(llama_bin) and os.path.exists(tool)):
        print("faults: skipped: no llama-server at %s or no %s" % (llama_bin, tool))
        return 77
    if args.pg_dir and not (args.db or "").startswith(("postgresql://", "postgres://")):
        ap.error("--pg-dir needs a postgresql:// --db")
    started = time.time()
    rows, failures = [], []

    def check(name, figure, held):
        rows.append({"check": name, "figure": figure, "held": bool(held)})
        if not held:
            failures.append(name)

    with lib.Workspace("baton-faults-") as ws:
        faults = lib.Faults()
        upstream = lib.start_fake_upstream(ws, faults)
        gguf = lib.make_tiny_gguf(tool, args.llama_prefix, ws.path("tiny.gguf"))
        llama_a = lib.LlamaServer(ws, args.llama_prefix, gguf, "llama-a")
        llama_b = lib.LlamaServer(ws, args.llama_prefix, gguf, "llama-b")
        proxy = lib.StallingProxy(ws, llama_a.port)
        write_router_train(ws.path("train"))
        store = args.db or ws.path("gateway.db")
        config = ws.path("gateway.yaml")
        with open(config, "w") as f:
            f.write(config_text(store, ws.path("train"), upstream.server_address[1], proxy.port, llama_b.port))
        gw = lib.Baton(ws, baton, config)
        db = lib.Db(store)
        first_id = db.value("SELECT coalesce(max(id), 0) FROM requests")  # a --db store may hold earlier runs' rows
        ledger = lib.Ledger()
        stop = threading.Event()
        events = []  # (kind, t_start, t_end, recovered)
        expected_events = 5 if args.pg_dir or not db.pg else 4
        lock = threading.Lock()

        def client(t):
            rng = random.Random(t)
            i = t
            while not stop.is_set():
                model, pool = MIX[i % len(MIX)]
                key = KEYS[KEY_MIX[(i // len(MIX) + t) % len(KEY_MIX)]][0]
                cid = ledger.next_id()
                ledger.send(gw.port, key, body_for(cid, model, pool, rng.random() < 0.5), tag=cid)
                i += 1

        def recover(model, within=30):
            """A request for `model` by name until one answers 200: the expert is back."""
            deadline = time.time() + within
            while time.time() < deadline:
                cid = ledger.next_id()
                if ledger.send(gw.port, KEYS["big"][0], body_for(cid, model, None, False), tag=cid)["status"] == 200:
                    return True
                time.sleep(0.5)
            return False

        def event(kind, start, end, model, hold):
            t0 = time.time()
            start()
            time.sleep(hold)
            end()
            t1 = time.time()
            ok = recover(model) if model else True
            with lock:
                events.append((kind, t0, t1, ok))

        def injector():
            S = args.seconds
            plan = [(0.20, "llama stalled (proxy stops forwarding)"), (0.40, "llama-server SIGKILLed + restarted"),
                    (0.60, "llama stalled (proxy stops forwarding)"), (0.80, "llama-server SIGKILLed + restarted")]
            if args.pg_dir:
                plan.append((0.50, "database restarted under load"))
            elif not db.pg:
                plan.append((0.50, "SQLite store locked by another process for 8 s"))
            plan.sort()
            t_start = time.time()
            fake_i = 0
            next_fake = t_start + 1
            while time.time() - t_start < S - 3 and not stop.is_set():
                now = time.time() - t_start
                if plan and now >= plan[0][0] * S:
                    _, kind = plan.pop(0)
                    if kind.startswith("llama stalled"):
                        target = (proxy.stall, proxy.resume, "llama-a", 6)
                    elif kind.startswith("llama-server"):
                        target = (llama_b.kill9, llama_b.start, "llama-b", 2)
                    elif kind.startswith("SQLite"):  # beyond the store's 5 s busy timeout
                        locker = lib.SqliteLocker(store)
                        target = (locker.lock, locker.unlock, "fake", 8)
                    else:
                        target = (lambda: lib.pg_restart(args.pg_dir), lambda: None, "fake", 0)
                    threading.Thread(target=event, args=(kind,) + target, daemon=True).start()
                if time.time() >= next_fake:  # a fake upstream fault phase: 1.5 s on (more until 4 were injected,
                    kind = lib.FAKE_FAULTS[fake_i % len(lib.FAKE_FAULTS)]  # up to 6 s), then 0.5 s off
                    fake_i += 1
                    before, t_phase = len(faults.hit[kind]), time.time()
                    faults.current = kind
                    while time.time() - t_phase < 1.5 or (len(faults.hit[kind]) < before + 4 and
                                                          time.time() - t_phase < 6):
                        time.sleep(0.05)
                    faults.current = None
                    next_fake = time.time() + 0.5
                time.sleep(0.05)

        threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(args.threads)]
        for th in threads:
            th.start()
        inj = threading.Thread(target=injector, daemon=True)
        inj.start()
        time.sleep(args.seconds)
        stop.set()
        inj.join(120)
        for th in threads:
            th.join(180)
        deadline = time.time() + 120
        while time.time() < deadline and len(events) < expected_events:
            time.sleep(0.2)
        time.sleep(0.5)
        alive = gw.alive()
        servers_up = [s.name for s in (llama_a, llama_b) if s.p.poll() is None]
        st, _, mbody = lib.request(gw.port, "GET", "/metrics", key=None, timeout=30)
        metrics = lib.parse_metrics(mbody.decode(errors="replace")) if st == 200 else {}
        items = ledger.snapshot()
        gw.stop()  # graceful: the last budget state is written
        exit_code = gw.p.returncode

        # ---- checks
        sent = len(items)
        ok = sum(1 for i in items if i["outcome"] == "ok")
        err = sum(1 for i in items if i["outcome"] == "error")
        bad = [i for i in items if i["outcome"] == "bad"]
        streams = sum(1 for i in items if i["stream"])
        sse_err = sum(1 for i in items if i["outcome"] == "error" and i["status"] == 200)
        check("every request ended in an answer or an OpenAI-shaped error",
              "%d sent (%d streamed): %d answered, %d errors (%d in-band SSE), %d violations%s"
              % (sent, streams, ok, err, sse_err, len(bad),
                 "; e.g. " + "; ".join("%s %s: %s" % (b["model"], "stream" if b["stream"] else "plain", b["detail"])
                                       for b in bad[:3]) if bad else ""),
              not bad and sent == ok + err and sent > 0)
        check("gateway alive through the campaign, clean exit", "alive %s, exit %s" % (alive, exit_code),
              alive and exit_code == 0)
        check("the campaign's llama-servers up at the end (restarted ones included)", "up: %s" % servers_up,
              len(servers_up) == 2)
        by_code = {}
        for i in items:
            by_code[str(i["status"])] = by_code.get(str(i["status"]), 0) + 1
        m_codes = {k: int(v) for k, v in lib.metric_by(metrics, "baton_http_requests_total", "code",
                                                       path="/v1/chat/completions").items()}
        check("sent = /metrics baton_http_requests_total, per status code",
              "client %s, metrics %s" % (dict(sorted(by_code.items())), dict(sorted(m_codes.items()))),
              by_code == m_codes)
        unrecorded = sum(1 for i in items if i["recorded_header"] == "false")
        n_rows = db.value("SELECT count(*) FROM requests WHERE id > %d" % first_id)
        rows200 = {r[0] for r in db.rows("SELECT request_id FROM requests WHERE id > %d AND http_status = 200"
                                         % first_id)}
        ok_ids = {i["request_id"] for i in items if i["outcome"] == "ok"}
        check("sent = rows in the store's requests table (less answers marked x-baton-recorded: false)",
              "%d sent, %d rows, %d marked unrecorded" % (sent, n_rows, unrecorded), n_rows == sent - unrecorded)
        check("answered 200 = recorded with 200 (by request id)",
              "%d answered, %d rows with 200, %d answered but not recorded" % (ok, len(rows200), len(ok_ids - rows200)),
              ok_ids == rows200 and len(ok_ids) == ok)
        budgets = db.budgets()
        over = {n: b for n, b in budgets.items() if b["spent"] > b["budget"] * (1 + 1e-9)}
        overruns = lib.metric_sum(metrics, "baton_budget_overruns_total")
        exhausted = sum(1 for i in items if "budget_exhausted" in i["detail"])
        check("no budget overrun", "spent/budget %s; baton_budget_overruns_total %d; %d requests refused "
              "budget_exhausted" % (", ".join("%s $%.5f/$%g" % (n, b["spent"], b["budget"])
                                              for n, b in sorted(budgets.items())), overruns, exhausted),
              not over and overruns == 0 and "baton_budget_overruns_total" in {k[0] for k in metrics})
        leaked = sum(b["reserved"] for b in budgets.values())
        check("no reservation left after the campaign", "reserved_usd total $%.3g (float residue < $1e-12 allowed)" % leaked,
              abs(leaked) < 1e-12)

        # ---- faults injected / survived
        by_id = {i["tag"]: i for i in items}
        fault_rows = []
        for kind in lib.FAKE_FAULTS:
            ids = faults.hit[kind]
            hit = [by_id[c] for c in set(ids) if c in by_id]
            survived = sum(1 for i in hit if i["outcome"] != "bad")
            fell_back = sum(1 for i in hit if i["outcome"] == "ok")
            fault_rows.append(("fake upstream " + kind, len(ids), survived, "upstream calls faulted; %d client "
                               "requests hit: %d answered by retry or fallback, %d OpenAI errors"
                               % (len(hit), fell_back, len(hit) - fell_back)))
            check("fault: fake upstream " + kind, "%d injected, %d client requests survived of %d" %
                  (len(ids), survived, len(hit)), len(ids) > 0 and survived == len(hit))
        for kind in sorted({e[0] for e in events}):
            evs = [e for e in events if e[0] == kind]
            during = [i for i in items for e in evs if i["t0"] < e[2] and i["t1"] > e[1]]
            bad_during = sum(1 for i in during if i["outcome"] == "bad")
            recovered = sum(1 for e in evs if e[3])
            fault_rows.append((kind, len(evs), recovered if not bad_during else 0,
                               "%d requests in flight during it: %d answered, %d OpenAI errors, %d violations; "
                               "recovered after: %d/%d" % (len(during), sum(1 for i in during if i["outcome"] == "ok"),
                                                         sum(1 for i in during if i["outcome"] == "error"), bad_during,
                                                         recovered, len(evs))))
            check("fault: " + kind, "%d injected, %d recovered, %d violations during" % (len(evs), recovered, bad_during),
                  recovered == len(evs) and bad_during == 0)
        check("every scheduled expert/database fault ran", "%d of %d" % (len(events), expected_events),
              len(events) == expected_events)
        fb = lib.metric_sum(metrics, "baton_fallbacks_total")
        timeouts = lib.metric_sum(metrics, "baton_upstream_failures_total", expert="llama-a", reason="DeadlineExceeded")
        stalls = [e for e in events if e[0].startswith("llama stalled")]
        rescued = sum(1 for i in items for e in stalls if i["t0"] < e[2] and i["t1"] > e[1] and i["model"] == "baton"
                      and i["outcome"] == "ok" and i["expert"] == "llama-b" and i["t1"] - i["t0"] >= 2.5)
        check("the stalled expert's timeout fired and routed requests fell back",
              "llama-a timeouts %d, fallbacks %d (all causes), %d routed requests answered by llama-b after waiting out "
              "llama-a's 3 s timeout during a stall" % (timeouts, fb, rescued), timeouts > 0 and fb > 0 and rescued > 0)
        duration = time.time() - started
        lib.print_table([(r["check"], "held" if r["held"] else "FAILED", r["figure"]) for r in rows],
                        "Fault campaign (%s store, %.0f s load, %d client threads, %.0f s in all)"
                        % ("PostgreSQL" if db.pg else "SQLite", args.seconds, args.threads, duration))
        lib.print_table([(r[0], "injected %d" % r[1], "survived %d" % r[2], r[3]) for r in fault_rows],
                        "Faults injected and survived")
        if failures:
            print("\nbaton serve's log (tail):\n" + gw.output()[-4000:])
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"checks": rows, "faults": fault_rows, "sent": sent, "answered": ok, "errored": err,
                           "rows": n_rows, "duration_s": duration, "store": "postgresql" if db.pg else "sqlite"},
                          f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
