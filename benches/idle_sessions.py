#!/usr/bin/env python3
"""benches/idle_sessions.py: memory one idle relayed session costs (Python 3.11 stdlib only).

What it guards
  deskrelay's promise that an idle session is cheap: a session that is connected and live but
  quiet holds no pooled buffer and no pipe, only its two sockets and its task state. Budget:
  <= 16 KiB of relay RSS per idle session (deskrelay --data-path auto). haproxy (mode tcp,
  splice-auto) is measured the same way for comparison; its figure is not checked.

How it measures (per relay, each with a fresh backend)
  1. A backend in a thread (selectors) listens on 127.0.0.1 and holds every connection it
     accepts: it greets each one with 8 bytes and echoes what it receives.
  2. The relay is started in front of it (its own process group): deskrelay
     `proxy --bind 127.0.0.1:0 --forward BACKEND --data-path auto`, or haproxy -db with a
     config in a temp dir.
  3. Warm-up: 16 sessions opened, used and closed, so one-time costs (per-shard pools,
     allocator arenas, lazily built state) are not charged to the sessions measured.
  4. RSS before = sum of VmRSS (/proc/PID/status) over the relay's processes.
  5. N client connections (default 2000) opened through the relay; the backend must count N
     new connections (the relay really connected every one). On every session the client
     must receive the backend's 8-byte greeting and the echo of its own 8 bytes (bytes went
     both ways). Then ~1 s of quiet, and RSS with N idle sessions is read.
  6. per session = (RSS with N - RSS before) / N, in KiB. The sessions are then closed and
     RSS is read once more (information only: does the relay give memory back?).
  Kernel memory (socket buffers, pipes) is not in RSS and not counted here.

How to run (from the repository root; the relay must be built: cargo build --release)
  benches/relay_peers.sh --memory                 # the documented way (installs haproxy)
  python3 benches/idle_sessions.py [--sessions 2000] [--relays deskrelay-auto,haproxy]
      [--deskrelay target/release/deskrelay] [--shards N] [--budget-kib 16]
      [--out target/bench]
  --relays also accepts deskrelay-copy and deskrelay-splice.

What it prints
  One line per step, then a table per relay: sessions live, RSS before / with N sessions /
  after closing them (KiB), KiB per session, and the verdict against the budget. Written as
  markdown and JSON to OUT/idle_sessions.md and OUT/idle_sessions.json. Exit status 1 if any
  relay could not carry all N live sessions or deskrelay exceeded the budget.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

GREETING = b"B>hello\n"  # backend -> client, sent on accept
PING = b"C>ping!\n"      # client -> backend, echoed back
WARMUP = 16


def log(msg):
    print(f"[idle_sessions] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- backend
class Backend:
    """Accepts and holds connections; greets each, echoes what it gets. One thread."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4096)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.accepted = 0      # connections ever accepted
        self.open = 0          # connections open now
        self.pinged = 0        # connections that delivered the client's full PING
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="backend", daemon=True)
        self.thread.start()

    def counts(self):
        with self.lock:
            return self.accepted, self.open, self.pinged

    def _run(self):
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.1):
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.fileobj, key.data)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()

    def _accept(self):
        for _ in range(256):
            try:
                conn, _ = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and friends: count nothing, say it
                log(f"backend accept failed: {e}")
                return
            conn.setblocking(False)
            try:
                conn.send(GREETING)
            except OSError:
                pass
            self.sel.register(conn, selectors.EVENT_READ, {"got": 0})
            with self.lock:
                self.accepted += 1
                self.open += 1

    def _read(self, conn, state):
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(conn)
            conn.close()
            with self.lock:
                self.open -= 1
            return
        before = state["got"]
        state["got"] += len(data)
        if before < len(PING) <= state["got"]:
            with self.lock:
                self.pinged += 1
        try:
            conn.send(data)
        except OSError:
            pass

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.lsock.close()


# ---------------------------------------------------------------------------- relays
def group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(rest[2]) == pgid:  # fields from 3 on: state ppid pgrp
            pids.append(int(d))
    return pids


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def relay_rss_kib(pgid):
    return sum(status_kib(p, "VmRSS") for p in group_pids(pgid))


def relay_fds(pgid):
    n = 0
    for p in group_pids(pgid):
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return n


def listening(port):
    want = f":{port:04X} 00000000:0000 0A "
    with open("/proc/net/tcp") as f:
        return any(want in line and ("0100007F:" in line or "00000000:" in line.split()[1])
                   for line in f)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Relay:
    def __init__(self, name, backend_port, args, tmp):
        self.name = name
        self.tmp = tmp
        self.out_path = os.path.join(tmp, f"{name}.out")
        self.err_path = os.path.join(tmp, f"{name}.err")
        if name.startswith("deskrelay-"):
            mode = name.split("-", 1)[1]
            cmd = [args.deskrelay, "proxy", "--bind", "127.0.0.1:0",
                   "--forward", f"127.0.0.1:{backend_port}", "--data-path", mode]
            if args.shards:
                cmd += ["--shards", str(args.shards)]
        elif name == "haproxy":
            self.port = free_port()
            maxconn = args.sessions + WARMUP + 100
            cfg = os.path.join(tmp, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(f"""global
    maxconn {maxconn}
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    option splice-auto
frontend f
    bind 127.0.0.1:{self.port}
    default_backend b
backend b
    server s1 127.0.0.1:{backend_port}
""")
            cmd = ["haproxy", "-db", "-f", cfg]
        else:
            raise SystemExit(f"unknown relay {name}")
        self.cmd = cmd
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.pgid = self.proc.pid
        try:
            self._wait_ready()
        except BaseException:  # a timeout, or Ctrl-C while waiting: leave nothing behind
            self.stop()
            raise

    def logs(self):
        tails = []
        for p in (self.out_path, self.err_path):
            try:
                with open(p, errors="replace") as f:
                    tails += f.read().splitlines()[-10:]
            except OSError:
                pass
        return "\n".join(tails)

    def _wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.name == "haproxy":
                if listening(self.port):
                    return
            else:
                with open(self.out_path) as f:
                    for line in f:
                        if line.startswith("listening on "):
                            self.port = int(line.split()[-1].rsplit(":", 1)[1])
                            return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start:\n{self.logs()}")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pgid, signal.SIGKILL)  # stragglers in the group, if any
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=5)


# ---------------------------------------------------------------------------- clients
def open_sessions(port, n, deadline):
    socks = []
    for i in range(n):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"ran out of time after {i} of {n} connects")
        s = socket.socket()
        s.settimeout(min(5.0, left))
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            s.close()
            raise RuntimeError(f"connect {i + 1} of {n} failed: {e}") from e
        socks.append(s)
    return socks


def exchange(socks, deadline):
    """Sends PING on every session, waits for GREETING + PING back on every one.
    Returns the number of sessions that got exactly the expected bytes."""
    expect = GREETING + PING
    for s in socks:
        s.sendall(PING)
        s.setblocking(False)
    got = {s.fileno(): b"" for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    pending = len(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(64)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            fd = s.fileno()
            got[fd] += data
            if not data or len(got[fd]) >= len(expect):
                sel.unregister(s)
                pending -= 1
    sel.close()
    for s in socks:
        s.setblocking(True)
    return sum(1 for v in got.values() if v == expect)


def wait_for(pred, deadline, step=0.05):
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---------------------------------------------------------------------------- one relay
def measure(name, args, tmp):
    r = {"relay": name, "sessions": args.sessions}
    backend = Backend()
    relay = None
    clients = []
    try:
        relay = Relay(name, backend.port, args, tmp)
        r["command"] = " ".join(relay.cmd)
        log(f"{name}: listening on 127.0.0.1:{relay.port}, backend 127.0.0.1:{backend.port}")
        deadline = time.monotonic() + args.timeout

        # Warm-up: a few sessions used and closed.
        warm = open_sessions(relay.port, WARMUP, deadline)
        if exchange(warm, deadline) != WARMUP:
            raise RuntimeError("warm-up sessions did not carry bytes both ways")
        for s in warm:
            s.close()
        if not wait_for(lambda: backend.counts()[1] == 0, deadline):
            raise RuntimeError("warm-up sessions were not closed at the backend")
        time.sleep(args.settle)
        base_accepted = backend.counts()[0]
        r["rss_before_kib"] = relay_rss_kib(relay.pgid)
        r["fds_before"] = relay_fds(relay.pgid)

        t0 = time.monotonic()
        clients = open_sessions(relay.port, args.sessions, deadline)
        r["connect_s"] = round(time.monotonic() - t0, 3)
        arrived = wait_for(lambda: backend.counts()[0] - base_accepted >= args.sessions, deadline)
        r["backend_connections"] = backend.counts()[0] - base_accepted
        if not arrived:
            raise RuntimeError(f"only {r['backend_connections']} of {args.sessions} "
                               f"connections reached the backend")
        r["live_sessions"] = exchange(clients, deadline)
        r["backend_pinged"] = backend.counts()[2] - WARMUP
        if r["live_sessions"] != args.sessions or r["backend_pinged"] != args.sessions:
            raise RuntimeError(f"{r['live_sessions']} sessions got their bytes back, backend saw "
                               f"{r['backend_pinged']} pings, of {args.sessions}")
        time.sleep(args.settle)
        if relay.proc.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{relay.logs()}")
        r["rss_sessions_kib"] = relay_rss_kib(relay.pgid)
        r["fds_sessions"] = relay_fds(relay.pgid)
        r["threads"] = sum(status_kib(p, "Threads") for p in group_pids(relay.pgid))
        r["kib_per_session"] = round((r["rss_sessions_kib"] - r["rss_before_kib"])
                                     / args.sessions, 2)

        for s in clients:
            s.close()
        clients = []
        wait_for(lambda: backend.counts()[1] == 0, deadline)
        time.sleep(args.settle)
        r["rss_closed_kib"] = relay_rss_kib(relay.pgid)
        r["ok"] = True
    except Exception as e:  # report and go on to the next relay
        r["ok"] = False
        r["error"] = str(e)
        log(f"{name}: FAILED: {e}")
    finally:
        for s in clients:
            s.close()
        if relay is not None:
            relay.stop()
        backend.close()
    if name.startswith("deskrelay"):
        r["budget_kib"] = args.budget_kib
        r["within_budget"] = bool(r["ok"] and r["kib_per_session"] <= args.budget_kib)
    return r


# ---------------------------------------------------------------------------- report
HEAD = ["relay", "live sessions", "RSS before KiB", "RSS with sessions KiB", "KiB / session",
        "RSS after close KiB", "budget", "verdict"]


def row(r):
    if not r["ok"]:
        return [r["relay"], "-", "-", "-", "-", "-", "-", "FAILED: " + r["error"].splitlines()[0]]
    if "budget_kib" in r:
        budget = f"<= {r['budget_kib']:g}"
        verdict = "ok" if r["within_budget"] else "OVER BUDGET"
    else:
        budget, verdict = "-", "(comparison)"
    return [r["relay"], f"{r['live_sessions']}/{r['sessions']}", str(r["rss_before_kib"]),
            str(r["rss_sessions_kib"]), f"{r['kib_per_session']:.2f}", str(r["rss_closed_kib"]),
            budget, verdict]


def text_table(rows):
    widths = [max(len(x[i]) for x in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in (0, 7) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(x, widths))).rstrip() for x in rows]
    lines.insert(1, "  ".join("-" * w for w in widths).rstrip())
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--relays", default="deskrelay-auto,haproxy")
    ap.add_argument("--deskrelay", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "deskrelay"))
    ap.add_argument("--shards", type=int)
    ap.add_argument("--budget-kib", type=float, default=16.0)
    ap.add_argument("--settle", type=float, default=1.0, help="quiet seconds before each RSS read")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per relay")
    ap.add_argument("--out", default="target/bench")
    args = ap.parse_args()
    if not 1 <= args.sessions <= 50000:
        ap.error("--sessions must be in 1..50000")

    # The client ends and the backend ends live in this process: 2 descriptors per session;
    # the relay (a child) inherits the limit and needs 2 per session as well (haproxy 2.5).
    want = 3 * (args.sessions + WARMUP) + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile < want:
        log(f"warning: RLIMIT_NOFILE is {nofile}, {want} wanted; connects may fail")

    # SIGTERM/SIGINT: unwind through the finally blocks, which stop the relay.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    results = []
    with tempfile.TemporaryDirectory(prefix="idle_sessions.") as tmp:
        for name in [x.strip() for x in args.relays.split(",") if x.strip()]:
            log(f"{name}: {args.sessions} idle sessions")
            results.append(measure(name, args, tmp))

    rows = [HEAD] + [row(r) for r in results]
    print()
    print(f"Idle sessions: {args.sessions} per relay (RLIMIT_NOFILE {nofile})")
    print(text_table(rows))
    print()

    meta = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kernel": platform.release(), "cpus": os.cpu_count(), "sessions": args.sessions,
        "warmup_sessions": WARMUP, "settle_s": args.settle, "shards": args.shards or "default",
    }
    try:
        meta["git_rev"] = subprocess.run(["git", "describe", "--always", "--dirty"],
                                         capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "idle_sessions.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    md = ["# Relay memory per idle session", "",
          f"`benches/relay_peers.sh --memory` at `{meta.get('git_rev', '?')}`, {meta['date_utc']}; "
          f"Linux {meta['kernel']}, {meta['cpus']} CPUs; deskrelay shards: {meta['shards']}. "
          f"{args.sessions} sessions opened through the relay to a backend that holds them, "
          f"each carried {len(GREETING)} bytes backend->client and {len(PING)} bytes each way "
          f"client->backend->client, then 1 s of quiet. RSS = sum of VmRSS over the relay's "
          f"processes, read after {WARMUP} warm-up sessions had been opened and closed. "
          f"KiB / session = (RSS with sessions - RSS before) / {args.sessions}. "
          f"Socket buffers and pipes are kernel memory, not in RSS.", "",
          "| " + " | ".join(HEAD) + " |",
          "|---|" + "---:|" * 5 + "---|---|"]
    md += ["| " + " | ".join(x) + " |" for x in rows[1:]]
    with open(os.path.join(args.out, "idle_sessions.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    log(f"wrote {args.out}/idle_sessions.md and idle_sessions.json")

    bad = [r for r in results if not r["ok"] or r.get("within_budget") is False]
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
