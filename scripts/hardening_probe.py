#!/usr/bin/env python3
"""Probes a `baton serve` binary as an attacker and a demanding client would (the gateway hardening issue) and prints
one table row per case: the figure measured and whether it held. Runs against any baton binary, old or new, so the
same command gives the "before" and "after" columns of bench/RESULTS.md ("Gateway hardening").

    python3 scripts/hardening_probe.py --baton build/baton [--json out.json]

Everything runs on 127.0.0.1 in a temporary folder that is removed at the end: a fake OpenAI-compatible upstream
(this file, standard library only) with one scripted behaviour per upstream model name, and `baton serve` with one
expert per behaviour plus a replay expert of data/routerbench-test. Bounded in time (about a minute).
"""
import argparse
import concurrent.futures as futures
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY, SMALL_KEY, RICH_KEY, METRICS_KEY = "sk-probe", "sk-small", "sk-rich", "sk-probe-metrics"
LIMITED_KEY = "sk-limited"
UPSTREAM_SECRET = "sk-UPSTREAM-SECRET-42"
SECRET_PROMPT_MARK = "probe-secret-7391"


# ---------------------------------------------------------------------------------------------------------------------
# The fake upstream: behaviour chosen by the "model" field baton sends.

def usage(prompt, completion):
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:  # baton hung up (e.g. on a body over its limit): expected
            self.close_connection = True

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        mode, max_tokens = req.get("model"), req.get("max_tokens")
        message = {"role": "assistant", "content": "ok"}
        if mode == "long":  # writes 4,000 tokens unless told otherwise
            return self.reply(200, {"choices": [{"message": message, "finish_reason": "stop"}],
                                    "usage": usage(20, max_tokens or 4000)})
        if mode == "absurd":
            return self.reply(200, {"choices": [{"message": message, "finish_reason": "stop"}],
                                    "usage": usage(10**9, 10**9)})
        if mode == "negative":
            return self.reply(200, {"choices": [{"message": message, "finish_reason": "stop"}],
                                    "usage": usage(-500, -7)})
        if mode == "leaky":  # a 401 that echoes the Authorization header it got
            return self.reply(401, {"error": {"message": "invalid key: " + self.headers.get("Authorization", "")}})
        if mode == "huge":  # a 50 MB error message
            return self.reply(500, b'{"error": {"message": "' + b"x" * (50 << 20) + b'"}}')
        if mode == "tools":
            call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            if req.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for delta in ({"role": "assistant", "content": None, "tool_calls": [dict(call, index=0)]},):
                    self.wfile.write(b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}).encode() + b"\n\n")
                self.wfile.write(b"data: " + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}], "usage": usage(30, 10)}).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True
                return
            return self.reply(200, {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]},
                                                 "finish_reason": "tool_calls"}], "usage": usage(30, 10)})
        if mode == "slowstream":  # 2,000 one-token deltas, 2 ms apart
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(2000):
                    self.wfile.write(b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "tok "}}]}).encode() + b"\n\n")
                    self.wfile.flush()
                    time.sleep(0.002)
                self.wfile.write(b"data: [DONE]\n\n")
            except OSError:
                pass
            self.close_connection = True
            return
        return self.reply(400, {"error": {"message": "unknown probe mode %r" % mode}})


# ---------------------------------------------------------------------------------------------------------------------
# Talking to baton.

def request(port, method, path, body=None, key=KEY, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except (OSError, http.client.HTTPException) as e:
        return 0, {}, str(e).encode()
    finally:
        c.close()


def raw(port, data, timeout=10):
    """Sends raw bytes, returns the status code of the answer (0 = none)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        m = re.match(rb"HTTP/1\.[01] (\d+)", got)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0
    finally:
        s.close()


def chat(model, prompt="hello", **extra):
    return dict({"model": model, "messages": [{"role": "user", "content": prompt}]}, **extra)


class Serve:
    def __init__(self, baton, config, cwd):
        self.out = open(os.path.join(cwd, "serve.out"), "w+")
        self.err = open(os.path.join(cwd, "serve.err"), "w+")
        self.p = subprocess.Popen([baton, "serve", "--config", config, "--listen", "127.0.0.1:0"], cwd=cwd,
                                  stdout=self.out, stderr=self.err)
        self.port = 0
        deadline = time.time() + 120
        while time.time() < deadline and self.p.poll() is None:
            self.out.seek(0)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.out.read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.1)

    def alive(self):
        return self.p.poll() is None

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def first_prompts(n):
    out = []
    with open(os.path.join(ROOT, "data", "routerbench-test", "queries.jsonl")) as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) == n:
                break
    return out


def config_text(upstream_port, store, data_dir, with_new_fields):
    experts = "\n".join(
        "  - {name: %s, kind: openai, base_url: \"http://127.0.0.1:%d/v1\", model: %s, usd_per_mtok_in: 10, "
        "usd_per_mtok_out: 30, default_max_tokens: 256, max_retries: 0, api_key_env: PROBE_UPSTREAM_KEY}"
        % (m, upstream_port, m) for m in ("long", "absurd", "negative", "leaky", "huge", "tools", "slowstream"))
    return (
        "store: %s\nrecord_prompts: false\nmax_body_bytes: 1048576\n%s"
        "keys:\n  - {name: probe, key: %s, budget_usd: 1000}\n  - {name: small, key: %s, budget_usd: 0.1}\n"
        "  - {name: rich, key: %s, budget_usd: 1000}\n  - {name: limited, key: %s, budget_usd: 1000, rate_limit_rps: 1}\n"
        "experts:\n%s\n  - {name: claude-v2, kind: replay, replay_dir: %s}\n"
        % (store, ("metrics_key: %s\n" % METRICS_KEY) if with_new_fields else "", KEY, SMALL_KEY, RICH_KEY,
           LIMITED_KEY, experts, data_dir))


def metrics(port):
    return request(port, "GET", "/metrics", key=METRICS_KEY)


def db_rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baton", default=os.path.join(ROOT, "build", "baton"))
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    args = ap.parse_args()
    baton = os.path.abspath(args.baton)
    work = tempfile.mkdtemp(prefix="baton-probe-")
    os.environ["PROBE_UPSTREAM_KEY"] = UPSTREAM_SECRET
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    rows = []

    def row(case, figure, held):
        rows.append({"case": case, "figure": figure, "held": bool(held)})
        print("%-58s %-52s %s" % (case, figure, "held" if held else "FAILED"), flush=True)

    try:
        cfg_dir, run_dir = os.path.join(work, "cfg"), os.path.join(work, "run")
        os.makedirs(cfg_dir)
        os.makedirs(run_dir)
        config = os.path.join(cfg_dir, "serve.yaml")
        with_new = True
        for attempt in range(2):
            with open(config, "w") as f:
                f.write(config_text(upstream.server_address[1], "gw.db", os.path.join(ROOT, "data", "routerbench-test"),
                                    with_new))
            serve = Serve(baton, config, run_dir)
            if serve.port:
                break
            serve.stop()
            if "unknown field" in serve.stderr() and with_new:
                with_new = False  # an older baton: no metrics_key
                continue
            sys.exit("probe: baton serve did not start:\n" + serve.stderr())
        port = serve.port
        db = os.path.join(cfg_dir, "gw.db") if os.path.exists(os.path.join(cfg_dir, "gw.db")) else os.path.join(run_dir, "gw.db")

        # 9. Paths relative to the config file.
        row("store path relative to the config file", "store in " + ("config folder" if db.startswith(cfg_dir) else "working folder"),
            db.startswith(cfg_dir))

        # 1. Deep nesting.
        deep = json.dumps(chat("long"))[:-1] + ', "tools": ' + "[" * 150000 + "]" * 150000 + "}"
        st, _, _ = request(port, "POST", "/v1/chat/completions", deep.encode())
        time.sleep(0.2)
        row("1. body nested 150,000 deep (300 KB)", "HTTP %d, process %s" % (st, "alive" if serve.alive() else "DEAD"),
            st == 400 and serve.alive())
        if not serve.alive():
            serve = Serve(baton, config, run_dir)
            port = serve.port

        # 2. Overspend: 200 concurrent requests without max_tokens on a $0.01 key.
        with futures.ThreadPoolExecutor(200) as pool:
            list(pool.map(lambda _: request(port, "POST", "/v1/chat/completions", chat("long"), key=SMALL_KEY), range(200)))
        time.sleep(0.3)
        spent = db_rows(db, "SELECT spent_usd FROM client_budgets WHERE name = 'small'")[0][0]
        row("2. $0.10 key, 200 concurrent requests, no max_tokens", "charged %.0f%% of the budget" % (100 * spent / 0.1),
            spent <= 0.1 + 1e-12)
        st, h, _ = request(port, "POST", "/v1/chat/completions", chat("absurd"), key=RICH_KEY)
        time.sleep(0.3)
        spent = db_rows(db, "SELECT spent_usd FROM client_budgets WHERE name = 'rich'")[0][0]
        row("2. upstream reports 10^9 tokens ($1,000 budget)", "charged $%.4f" % spent, spent < 1)
        st, h, _ = request(port, "POST", "/v1/chat/completions", chat("negative"))
        cost = float(h.get("x-baton-cost-usd", "0"))
        row("2. upstream reports negative usage", "cost header $%g" % cost, cost >= 0)

        # 3. A client that leaves mid-stream.
        s = socket.create_connection(("127.0.0.1", port))
        body = json.dumps(chat("slowstream", stream=True)).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                  b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        got = b""
        while got.count(b"data:") < 5:
            got += s.recv(4096)
        s.close()
        time.sleep(2.5)
        r = db_rows(db, "SELECT http_status, cost_usd FROM requests WHERE expert = 'slowstream'")
        status, cost = (r[-1][0], r[-1][1] or 0) if r else (0, 0)
        row("3. client disconnects mid-stream", "logged %d, charged $%.6f" % (status, cost), status == 499 and cost > 0)

        # 4. Tool calls.
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
        st, _, b = request(port, "POST", "/v1/chat/completions", chat("tools", tools=tools))
        msg = json.loads(b or b"{}").get("choices", [{}])[0].get("message", {}) if st == 200 else {}
        row("4. upstream tool_calls (plain)", "%d tool call(s) returned" % len(msg.get("tool_calls") or []),
            len(msg.get("tool_calls") or []) == 1)
        st, _, b = request(port, "POST", "/v1/chat/completions", chat("tools", tools=tools, stream=True))
        row("4. upstream tool_calls (streamed)", "delta.tool_calls %s" % ("present" if b"tool_calls\":[" in b else "absent"),
            b"\"tool_calls\":[" in b)

        # 5. Unique paths and connections.
        before = len(metrics(port)[2])
        with futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: request(port, "GET", "/u/%d" % i, key=None), range(5000)))
        after = len(metrics(port)[2])
        row("5. 5,000 requests for unique paths", "/metrics grew %d -> %d bytes" % (before, after), after < before + 2000)

        # 6. Upstream error text.
        st, _, b = request(port, "POST", "/v1/chat/completions", chat("leaky"))
        row("6. upstream 401 echoing its Authorization header", "key %s the client" % ("REACHED" if UPSTREAM_SECRET.encode() in b else "kept from"),
            UPSTREAM_SECRET.encode() not in b)
        st, _, b = request(port, "POST", "/v1/chat/completions", chat("huge"))
        row("6. upstream error with a 50 MB message", "client got %d bytes" % len(b), len(b) < 2000)

        # 7. /metrics without a key.
        st, _, b = request(port, "GET", "/metrics", key=None)
        row("7. GET /metrics without a key", "HTTP %d%s" % (st, ", shows key names" if b"key=\"" in b else ""), st in (401, 403))

        # 8. record_prompts: false.
        prompt = first_prompts(1)[0]
        request(port, "POST", "/v1/chat/completions", chat("claude-v2", prompt))
        time.sleep(0.3)
        stored = db_rows(db, "SELECT count(*) FROM queries WHERE text <> ''")[0][0]
        row("8. record_prompts: false, a replay answer", "%d prompt(s) stored" % stored, stored == 0)

        # 11. Smaller ones.
        gz = raw(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
        row("11. Transfer-Encoding: gzip, chunked", "HTTP %d" % gz, gz == 400)
        nohost = raw(port, b"GET /healthz HTTP/1.1\r\n\r\n")
        row("11. HTTP/1.1 without Host", "HTTP %d" % nohost, nohost == 400)
        retry, st = None, 0
        for _ in range(3):
            st, h, _ = request(port, "POST", "/v1/chat/completions", chat("long"), key=LIMITED_KEY)
            if st == 429:
                retry = h.get("retry-after")
                break
        row("11. 429 rate_limit_exceeded", "HTTP %d, Retry-After: %s" % (st, retry), st == 429 and retry is not None)
        serve.stop()

        # 10. kill -9 under load, 5 times over one store.
        prompts = first_prompts(40)
        lost_rows, lost_spend, answered_total = 0, 0.0, 0
        for rnd in range(5):
            serve = Serve(baton, config, run_dir)
            port = serve.port
            before_rows = db_rows(db, "SELECT count(*) FROM requests WHERE http_status = 200 AND expert = 'claude-v2'")[0][0]
            before_spent = db_rows(db, "SELECT spent_usd FROM client_budgets WHERE name = 'probe'")[0][0]
            answered, lock, stop = [], threading.Lock(), threading.Event()

            def client(t):
                i = t
                while not stop.is_set():
                    st, h, _ = request(port, "POST", "/v1/chat/completions", chat("claude-v2", prompts[i % len(prompts)]), timeout=10)
                    if st == 200:
                        with lock:
                            answered.append(float(h.get("x-baton-cost-usd", "0")))
                    i += 8
            threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
            for t in threads:
                t.start()
            while len(answered) < 150:
                time.sleep(0.01)
            serve.stop(signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join()
            rows_now = db_rows(db, "SELECT count(*) FROM requests WHERE http_status = 200 AND expert = 'claude-v2'")[0][0]
            spent_now = db_rows(db, "SELECT spent_usd FROM client_budgets WHERE name = 'probe'")[0][0]
            lost_rows += max(0, len(answered) - (rows_now - before_rows))
            lost_spend += max(0.0, sum(answered) - (spent_now - before_spent))
            answered_total += len(answered)
        integrity = db_rows(db, "PRAGMA integrity_check")[0][0]
        row("10. kill -9 under load, 5 times", "%d of %d answered rows lost, $%.6f spend lost, integrity %s"
            % (lost_rows, answered_total, lost_spend, integrity), lost_rows == 0 and lost_spend < 1e-9 and integrity == "ok")
    finally:
        upstream.shutdown()
        try:
            serve.stop(signal.SIGKILL)
        except Exception:
            pass
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["held"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
