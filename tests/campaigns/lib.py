"""Shared pieces of the fault and crash campaigns (tests/campaigns/faults.py, crash.py): Python 3 standard library only.

Reuses scripts/hardening_probe.py (its HTTP helper `request`, `chat`, `usage` and the fake upstream's reply helper) and
adds what the campaigns need on top: a workspace that owns every child process (each in its own process group, killed
with it, and with the campaign by PR_SET_PDEATHSIG) and the temporary folder (removed at the end, failures included);
`baton serve` and llama-server processes; a stalling TCP proxy; a client that classifies every answer (a response, an
OpenAI-shaped error, a well-formed SSE error event, or a violation); /metrics parsing; the store (SQLite via sqlite3,
PostgreSQL via psql).
"""
import concurrent.futures
import ctypes
import http.client
import http.server
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import hardening_probe as probe  # noqa: E402  (request, chat, usage, Upstream.reply)

request, chat, usage = probe.request, probe.chat, probe.usage
UpstreamBase = probe.Upstream

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    os.setsid()  # own session and process group: killpg reaches its children too
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: killed when the campaign dies, even by SIGKILL


def log(*a):
    print(*a, flush=True, file=sys.stderr)


# ---------------------------------------------------------------------------------------------------------------------
# Workspace: temp folder + children, all removed/killed at the end.

class Workspace:
    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.children = []
        self.closers = []
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spawner")
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # ctest's timeout, ^C: still clean up
            self._old[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, sig, frame):
        raise SystemExit("campaign: stopped by signal %d" % sig)

    def spawn(self, argv, log_name, cwd=None, env=None):
        out = open(os.path.join(self.dir, log_name), "w+")
        # Started from one thread that lives as long as the workspace: PR_SET_PDEATHSIG fires when the *thread* that
        # forked the child ends, so a server restarted from a short-lived thread would die with that thread.
        p = self._spawner.submit(subprocess.Popen, argv, cwd=cwd or self.dir, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent, env=env).result()
        p.log_file = out
        self.children.append(p)
        return p

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def close(self):
        for c in reversed(self.closers):
            try:
                c()
            except Exception as e:  # cleanup must go on
                log("campaign: cleanup:", e)
        for p in self.children:
            kill_group(p)
            try:
                p.log_file.close()
            except Exception:
                pass
        self._spawner.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)
        for sig, h in self._old.items():
            signal.signal(sig, h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def kill_group(p, sig=signal.SIGKILL):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------------------------------
# baton serve

class Baton:
    """`baton serve --config CONFIG --listen 127.0.0.1:0`; the port is read from its "listening on" line."""

    def __init__(self, ws, baton, config, name="baton", startup_s=180):
        self.ws, self.log = ws, name + ".log"
        self.p = ws.spawn([baton, "serve", "--config", config, "--listen", "127.0.0.1:0"], self.log)
        self.port = 0
        deadline = time.time() + startup_s
        while time.time() < deadline and self.p.poll() is None:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", tail(ws.path(self.log), 1 << 20))
            if m:
                self.port = int(m.group(1))
                return
            time.sleep(0.05)
        raise RuntimeError("baton serve did not start:\n" + tail(ws.path(self.log)))

    def alive(self):
        return self.p.poll() is None

    def kill9(self):
        kill_group(self.p, signal.SIGKILL)

    def stop(self):
        kill_group(self.p, signal.SIGTERM)

    def output(self):
        return tail(self.ws.path(self.log), 1 << 16)


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric_sum(metrics, name, **labels):
    want = set(labels.items())
    return sum(v for (n, l), v in metrics.items() if n == name and want <= set(l))


def metric_by(metrics, name, label, **labels):
    want, out = set(labels.items()), {}
    for (n, l), v in metrics.items():
        if n == name and want <= set(l):
            key = dict(l).get(label)
            out[key] = out.get(key, 0) + v
    return out


# ---------------------------------------------------------------------------------------------------------------------
# The client: every answer classified.

def openai_error(obj):
    """Whether obj is {"error": {"message": str, "type": str, "code": str|null}}."""
    e = obj.get("error") if isinstance(obj, dict) else None
    return (isinstance(e, dict) and isinstance(e.get("message"), str) and e["message"] != ""
            and isinstance(e.get("type"), str) and "code" in e and (e["code"] is None or isinstance(e["code"], str)))


def classify(status, headers, body, stream):
    """-> (outcome, detail). outcome: "ok" (an answer), "error" (an OpenAI-shaped error, HTTP or in-band SSE) or
    "bad" (a violation: no response, a malformed error, a truncated stream)."""
    if status == 0:
        return "bad", "no response: " + body.decode(errors="replace")[:200]
    if status == 200 and stream:
        if not headers.get("content-type", "").startswith("text/event-stream"):
            return "bad", "stream answered with content-type %r" % headers.get("content-type")
        events = [l[5:].strip() for l in body.decode(errors="replace").split("\n") if l.startswith("data:")]
        if not events or events[-1] != "[DONE]":
            return "bad", "stream did not end with [DONE] (%d events)" % len(events)
        err = None
        for e in events[:-1]:
            try:
                j = json.loads(e)
            except ValueError:
                return "bad", "stream event is not JSON: %r" % e[:200]
            if "error" in j:
                if not openai_error(j) or err is not None:
                    return "bad", "malformed SSE error event: %r" % e[:200]
                err = j
            elif err is not None:
                return "bad", "chunk after the SSE error event"
            elif not isinstance(j.get("choices"), list):
                return "bad", "stream chunk without choices: %r" % e[:200]
        return ("error", "sse " + err["error"].get("code") or "") if err else ("ok", "")
    try:
        j = json.loads(body)
    except ValueError:
        return "bad", "HTTP %d with a body that is not JSON: %r" % (status, body[:200])
    if status == 200:
        ok = isinstance(j.get("choices"), list) and j["choices"] and "message" in j["choices"][0]
        return ("ok", "") if ok else ("bad", "200 without choices: %r" % body[:200])
    if status >= 400 and openai_error(j):
        return "error", "%d %s" % (status, j["error"]["code"])
    return "bad", "HTTP %d, not an OpenAI error: %r" % (status, body[:200])


class Ledger:
    """Every request a campaign sent and how it ended (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self.seq = 0

    def next_id(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def send(self, port, key, body, timeout=120, tag=None):
        stream = bool(body.get("stream"))
        t0 = time.time()
        st, h, b = request(port, "POST", "/v1/chat/completions", body, key=key, timeout=timeout)
        outcome, detail = classify(st, h, b, stream)
        cost = float(h.get("x-baton-cost-usd") or 0)
        if stream and outcome == "ok":  # the last chunk carries the charged cost
            m = re.findall(rb'"x_baton_cost_usd":\s*([0-9.eE+-]+)', b)
            cost = float(m[-1]) if m else 0.0
        item = {"tag": tag, "key": key, "model": body.get("model"), "stream": stream, "status": st, "outcome": outcome,
                "detail": detail, "request_id": h.get("x-request-id"), "cost": cost,
                "recorded_header": "false" if stream and b'"x_baton_recorded":false' in b else h.get("x-baton-recorded"), "expert": h.get("x-baton-expert"), "t0": t0, "t1": time.time()}
        with self.lock:
            self.items.append(item)
        return item

    def snapshot(self):
        with self.lock:
            return list(self.items)


# ---------------------------------------------------------------------------------------------------------------------
# The fake OpenAI upstream, with faults on demand.

FAKE_FAULTS = ["429", "429+retry-after", "500", "502", "503", "malformed-json", "closed-mid-answer"]


class Faults:
    """What the fake upstream is told to do, and what it did: per fault kind, the client ids (the "[cid N]" marker in
    the prompt) of the calls that got it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.current = None
        self.n = 0
        self.hit = {k: [] for k in FAKE_FAULTS}

    def take(self, cid):
        with self.lock:
            if self.current is None:
                return None
            self.n += 1
            if self.n % 2:  # every other call in a fault phase
                return None
            self.hit[self.current].append(cid)
            return self.current


class FakeUpstream(UpstreamBase):
    faults = None

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        text = " ".join(str(m.get("content")) for m in req.get("messages", []))
        m = re.search(r"\[cid (\d+)\]", text)
        fault = self.faults.take(int(m.group(1)) if m else -1)
        stream, max_tokens = bool(req.get("stream")), min(req.get("max_tokens") or 8, 8)
        err = {"error": {"message": "injected", "type": "server_error", "code": None}}
        if fault in ("429", "429+retry-after"):
            data = json.dumps(err).encode()
            self.send_response(429)
            if fault == "429+retry-after":
                self.send_header("Retry-After", "1")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if fault in ("500", "502", "503"):
            return self.reply(int(fault), err)
        if fault == "malformed-json":
            return self.reply(200, b'{"choices": [{"message": {"role": "assistant", "content": "x"', "application/json")
        words = ["word%d" % i for i in range(max_tokens)]
        if not stream:
            body = json.dumps({"id": "c", "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": " ".join(words)}, "finish_reason": "stop"}],
                "usage": usage(20, max_tokens)}).encode()
            if fault == "closed-mid-answer":  # promises the whole body, sends half, hangs up
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            return self.reply(200, body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for i, w in enumerate(words):
                if fault == "closed-mid-answer" and i == 3:  # three chunks, then the connection closes
                    return
                chunk = {"choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]}
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage(20, max_tokens)}
            self.wfile.write(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
        except OSError:
            pass


class QuietServer(http.server.ThreadingHTTPServer):
    """The fake upstream's server: a peer that hangs up (baton killed, a call cancelled) is expected, not printed."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def start_fake_upstream(ws, faults):
    FakeUpstream.faults = faults
    server = QuietServer(("127.0.0.1", 0), FakeUpstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ws.closers.append(server.server_close)
    ws.closers.append(server.shutdown)
    return server


# ---------------------------------------------------------------------------------------------------------------------
# The store.

class Db:
    """Reads the gateway's store: a SQLite file, or a postgresql:// URL through psql."""

    def __init__(self, url):
        self.url = url
        self.pg = url.startswith(("postgresql://", "postgres://"))

    def rows(self, sql):
        if self.pg:
            out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", self.url, "-c", sql],
                                 capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError("psql: " + out.stderr.strip())
            return [tuple(_num(v) for v in line.split("\t")) for line in out.stdout.splitlines() if line]
        con = sqlite3.connect(self.url, timeout=30)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def value(self, sql):
        r = self.rows(sql)
        return r[0][0] if r else None

    def integrity(self):
        """'ok' when the store is consistent: SQLite's integrity check; on PostgreSQL, the budget rows' constraints
        and the log's own invariants, checked by query (the engine's own consistency is its WAL's business)."""
        if not self.pg:
            return self.value("PRAGMA integrity_check")
        bad = self.value("SELECT count(*) FROM client_budgets WHERE spent_usd < 0 OR reserved_usd < 0 "
                         "OR spent_usd > budget_usd * (1 + 1e-9)")
        dup = self.value("SELECT count(*) FROM (SELECT request_id FROM requests WHERE request_id IS NOT NULL "
                         "GROUP BY request_id HAVING count(*) > 1) d")
        return "ok" if bad == 0 and dup == 0 else "%d bad budget rows, %d duplicated request ids" % (bad, dup)

    def budgets(self):
        return {r[0]: {"budget": r[1], "spent": r[2], "reserved": r[3]}
                for r in self.rows("SELECT name, budget_usd, spent_usd, reserved_usd FROM client_budgets")}


class SqliteLocker:
    """Another process's write lock on a SQLite store: lock() takes it (BEGIN EXCLUSIVE), unlock() lets it go."""

    def __init__(self, path):
        self.path, self.con = path, None

    def lock(self):
        self.con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.con.execute("BEGIN EXCLUSIVE")

    def unlock(self):
        self.con.execute("ROLLBACK")
        self.con.close()


def _num(v):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def pg_restart(pg_dir, timeout=120):
    """Restarts the PostgreSQL server of `scripts/pg_server.sh` (branch pg) whose data directory is pg_dir."""
    script = os.path.join(ROOT, "scripts", "pg_server.sh")
    out = subprocess.run(["bash", script, "restart", pg_dir], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("pg_server.sh restart %s: %s" % (pg_dir, (out.stdout + out.stderr)[-500:]))


# ---------------------------------------------------------------------------------------------------------------------
# llama-server and the stalling proxy.

class LlamaServer:
    """`llama-server -m GGUF -c 4096 -np 2 -t 1` on 127.0.0.1:port, like tests/serve_llama_test.cc starts it."""

    def __init__(self, ws, prefix, gguf, name):
        self.ws, self.prefix, self.gguf, self.name = ws, prefix, gguf, name
        self.port = free_port()
        self.p = None
        self.start()

    def start(self, timeout=90):
        argv = [os.path.join(self.prefix, "bin", "llama-server"), "-m", self.gguf, "--port", str(self.port), "--host",
                "127.0.0.1", "-c", "4096", "-np", "2", "-t", "1", "--no-webui"]
        self.p = self.ws.spawn(argv, self.name + ".log")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError("llama-server %s exited:\n%s" % (self.name, tail(self.ws.path(self.name + ".log"))))
            st, _, _ = request(self.port, "GET", "/health", key=None, timeout=2)
            if st == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("llama-server %s not healthy in %d s" % (self.name, timeout))

    def kill9(self):
        kill_group(self.p, signal.SIGKILL)


class StallingProxy:
    """A TCP proxy 127.0.0.1:port -> 127.0.0.1:target. stall() makes it stop forwarding (bytes are read and held,
    nothing reaches the other side), mid-request for calls under way; resume() closes the connections it held and
    forwards again."""

    def __init__(self, ws, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stalled = threading.Event()
        self.lock = threading.Lock()
        self.conns = set()
        self.held = 0  # connections that had bytes held back during stalls
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()
        ws.closers.append(self.close)

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.add((c, u))
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, c, u):
        held = False
        try:
            while not self.stop.is_set():
                r, _, _ = select.select([c, u], [], [], 0.2)
                if self.stalled.is_set():
                    if r and not held:
                        held = True
                        with self.lock:
                            self.held += 1
                    for s in r:  # read and drop: the other side never sees it
                        if not s.recv(65536):
                            return
                    continue
                if held:  # a connection caught by a stall is broken: close it
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (u if s is c else c).sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.discard((c, u))
            for s in (c, u):
                try:
                    s.close()
                except OSError:
                    pass

    def stall(self):
        self.stalled.set()

    def resume(self):
        self.stalled.clear()

    def close(self):
        self.stop.set()
        try:
            self.sock.close()
        except OSError:
            pass


def make_tiny_gguf(tool, prefix, out, seed=7):
    vocab = os.path.join(prefix, "share", "baton", "ggml-vocab-llama-spm.gguf")
    subprocess.run([tool, out, vocab, str(seed)], check=True, capture_output=True, timeout=120)
    return out


def print_table(rows, title):
    print("\n" + title, flush=True)
    w = max(len(r[0]) for r in rows)
    for r in rows:
        print("  %-*s  %s" % (w, r[0], "  ".join(str(x) for x in r[1:])), flush=True)
