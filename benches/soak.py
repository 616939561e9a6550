#!/usr/bin/env python3
"""Soak run: one deskrelay, hours of production in minutes.

    benches/soak.py [--secs 600] [--sessions 1000] [--churn-every 15]

Starts `deskrelay proxy` with an xpra multifile and a WebSocket token file on one port, then:

- `loadgen --protocol xpra --profile desktop` with --sessions clients authenticating and
  running the desktop profile for --secs through the relay (every byte checked);
- every --churn-every seconds meanwhile, a burst of WebSocket sessions that upgrade by
  token, exchange, close and start over for 2 s (`--profile handshake`): connection churn
  on the same relay, so a descriptor or memory leak per session shows;
- samples the relay's open descriptors and resident memory every 30 s.

Prints the samples, the start and end figures (descriptors with no session open before and
after; RSS under load at the first sample and at the last) and the main run's totals.
Exits 1 when a byte was lost, a session failed, or the idle descriptor count moved.
Traffic stays on 127.0.0.1.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def loadgen(*args, **kw):
    return subprocess.run([BIN / "loadgen", *map(str, args)], **kw)


def wait_listening(port, proc, secs=10):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"deskrelay exited with {proc.returncode} at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("deskrelay did not listen")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secs", type=int, default=600)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--churn-every", type=float, default=15.0)
    ap.add_argument("--churn-sessions", type=int, default=4)
    ap.add_argument("--json", help="write the main run's loadgen report here")
    a = ap.parse_args()
    if a.secs > 4 * 3600 or a.sessions > 10000:
        sys.exit("bounded: at most 4 h and 10,000 sessions")

    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "deskrelay",
                    "--bin", "loadgen"], cwd=ROOT, check=True)
    tmp = Path(tempfile.mkdtemp(prefix="deskrelay-soak-"))
    users, tokens = tmp / "users", tmp / "tokens"
    relay_port, xpra_backend, ws_backend = free_port(), free_port(), free_port()
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Missing files are written (fresh secrets) and loadgen exits: see loadgen/README.md.
    loadgen("--protocol", "xpra", "--sessions", a.sessions, "--target", "127.0.0.1:9",
            "--backend-listen", f"127.0.0.1:{xpra_backend}", "--xpra-users", users,
            check=True, **quiet)
    loadgen("--protocol", "ws", "--sessions", a.churn_sessions, "--target", "127.0.0.1:9",
            "--backend-listen", f"127.0.0.1:{ws_backend}", "--ws-tokens", tokens,
            check=True, **quiet)

    log = open(tmp / "relay.log", "wb")
    relay = subprocess.Popen(
        [BIN / "deskrelay", "proxy", "--bind", f"127.0.0.1:{relay_port}",
         "--auth", f"multifile:{users}", "--tokens", tokens],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DESKRELAY_LOG": "warn"})
    try:
        wait_listening(relay_port, relay)
        time.sleep(1)
        idle_fds_start, idle_rss_start = fds(relay.pid), rss_kib(relay.pid)
        report = Path(a.json) if a.json else tmp / "soak.json"
        main_run = subprocess.Popen(
            [BIN / "loadgen", "--protocol", "xpra", "--profile", "desktop",
             "--sessions", str(a.sessions), "--duration", str(a.secs),
             "--target", f"127.0.0.1:{relay_port}",
             "--backend-listen", f"127.0.0.1:{xpra_backend}", "--xpra-users", str(users),
             "--relay-pid", str(relay.pid), "--json", str(report)],
            stdout=open(tmp / "loadgen.out", "wb"), stderr=subprocess.STDOUT)

        print(f"relay pid {relay.pid}, idle: {idle_fds_start} fds, {idle_rss_start} KiB; "
              f"{a.sessions} xpra sessions for {a.secs} s; scratch {tmp}")
        print(f"{'t_s':>6} {'fds':>6} {'rss_kib':>8} {'churn_ok':>9} {'churn_failed':>12}")
        samples, churn_ok, churn_failed, churn_hung = [], 0, 0, 0
        t0 = time.monotonic()
        next_sample, next_churn = t0 + 30, t0 + a.churn_every
        deadline = t0 + a.secs + 120
        while main_run.poll() is None and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_churn:
                next_churn += a.churn_every
                out = tmp / "churn.json"
                try:
                    loadgen("--protocol", "ws", "--profile", "handshake", "--duration", 2,
                            "--sessions", a.churn_sessions,
                            "--target", f"127.0.0.1:{relay_port}",
                            "--backend-listen", f"127.0.0.1:{ws_backend}",
                            "--ws-tokens", tokens, "--json", out, timeout=90,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "churn.err", "ab"))
                except subprocess.TimeoutExpired:
                    # Counted, and the soak goes on: a stuck churn run is a finding.
                    churn_hung += 1
                if out.exists():
                    r = json.loads(out.read_text())
                    churn_ok += r["handshakes"]["completed"]
                    churn_failed += r["handshakes"]["failed"] + r["errors"]["total"]
                    out.unlink()
                else:
                    churn_failed += 1
            if now >= next_sample:
                next_sample += 30
                s = (round(now - t0), fds(relay.pid), rss_kib(relay.pid))
                samples.append(s)
                print(f"{s[0]:>6} {s[1]:>6} {s[2]:>8} {churn_ok:>9} {churn_failed:>12}",
                      flush=True)
            time.sleep(0.5)
        if main_run.poll() is None:
            main_run.kill()
            sys.exit("the main loadgen run did not finish in time")
        time.sleep(2)
        idle_fds_end, idle_rss_end = fds(relay.pid), rss_kib(relay.pid)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=30)

    r = json.loads(report.read_text())
    up, down = r["upstream"], r["downstream"]
    lost = r["errors"]["total"]
    print()
    print(f"{'':26} {'start':>10} {'end':>10}")
    print(f"{'relay fds, no session':26} {idle_fds_start:>10} {idle_fds_end:>10}")
    print(f"{'relay RSS KiB, no session':26} {idle_rss_start:>10} {idle_rss_end:>10}")
    if samples:
        first, last = samples[0], samples[-1]
        print(f"{'relay fds, under load':26} {first[1]:>10} {last[1]:>10}   (t={first[0]} s, t={last[0]} s)")
        print(f"{'relay RSS KiB, under load':26} {first[2]:>10} {last[2]:>10}")
    print(f"xpra sessions: {r['sessions']['opened']} opened, {r['sessions']['failed']} failed; "
          f"upstream {up['messages']}/{up['messages_sent']} messages, "
          f"{up['bytes'] / 2**30:.2f} GiB; downstream {down['messages']}/{down['messages_sent']} "
          f"messages, {down['bytes'] / 2**30:.2f} GiB; errors {lost}")
    print(f"latency p99 us: upstream {up['latency_us']['p99']}, downstream "
          f"{down['latency_us']['p99']}; ws churn: {churn_ok} sessions, {churn_failed} failed, "
          f"{churn_hung} runs stuck past 90 s")
    ok = (lost == 0 and r["sessions"]["failed"] == 0 and churn_failed == 0 and churn_hung == 0
          and idle_fds_end == idle_fds_start)
    print("soak: clean" if ok else "soak: FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
