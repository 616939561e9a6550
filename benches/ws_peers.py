#!/usr/bin/env python3
"""benches/ws_peers.py: deskrelay's WebSocket-to-TCP bridge against websockify and against its own TCP path.

What it guards
  The browser gateway's targets: deskrelay bridging WebSocket to TCP by token carries
  >= 20x websockify's bulk throughput, and >= 0.5x its own raw TCP relay path; and how its
  desktop-session latency compares at 1000 sessions.

What it runs (loopback only, every process in a session of its own, all stopped at the end)
  Three targets, the same loadgen profile for each, rounds rotated so machine noise hits
  every target alike:
    deskrelay-ws   `deskrelay proxy --tokens FILE`, loadgen --protocol ws (token per session)
    websockify     `websockify --token-plugin TokenFile --token-source FILE 127.0.0.1:PORT`
                   (Debian's websockify 0.10, installed with apt when missing), same loadgen
    deskrelay-raw  `deskrelay proxy --forward BACKEND`, loadgen --protocol raw: the TCP path
  Each run starts a fresh relay; loadgen writes its token file first (--ws-tokens), then
  drives the relay with --relay-pid so the relay's CPU (websockify: its whole process tree,
  one forked process a connection) and memory are measured.

  (a) bulk: --profile bulk --saturate (64 KiB messages written back to back both ways for
      --bulk-seconds), --bulk-sessions sessions (default 8). Throughput = verified message
      bytes, both directions, per second; also per relay CPU-second.
  (b) desktop: the default desktop profile for --desktop-seconds, deskrelay-ws and
      deskrelay-raw with --desktop-sessions (default 1000). websockify forks a process per
      connection and falls over long before 1000 on a small machine (on the 2-core VM this
      was written on: 300 sessions took 5 s to open and p99 went to 0.7 s), so it runs
      --websockify-sessions (default 100) and deskrelay-ws runs that count as well, for a
      like-for-like pair.

How to run (from the repository root)
  python3 benches/ws_peers.py                          # 3 rounds, both parts (~6 min)
  python3 benches/ws_peers.py --rounds 1 --parts bulk  # quick look
  Options: --rounds, --parts bulk,desktop, --bulk-sessions, --bulk-seconds, --bulk-size,
  --desktop-sessions, --desktop-seconds, --websockify-sessions, --shards (deskrelay),
  --out DIR (default target/bench), --no-build.

What it prints / writes (in --out)
  Markdown tables with medians over rounds and the ratios; ws_peers.md, ws_peers.json (every
  run's summary), runs/PART-TARGET-SESSIONS-rN.json (loadgen's own reports).
  Exit status 0 when every run was clean (every session opened, every byte verified).

Bounds: every run has a wall-clock limit (its duration + 90 s); sessions <= 5000, durations
<= 120 s, rounds <= 10.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGETS = ["deskrelay-ws", "websockify", "deskrelay-raw"]


class Terminated(BaseException):
    """SIGTERM / SIGHUP, raised so that the `finally` blocks stop every relay."""


def log(msg):
    print(f"[ws_peers] {msg}", file=sys.stderr, flush=True)


def ensure_websockify():
    if shutil.which("websockify"):
        return
    log("installing websockify (apt)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, timeout=300)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "websockify"], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=600)


def package_version(name):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True,
                       text=True)
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def wait_listening(port, proc, what, log_path):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}:\n"
                       f"{Path(log_path).read_text(errors='replace')[-2000:]}")


class Relay:
    """One relay process (and whatever it forks), in a session of its own."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        # websockify's forked children share the group: take them too.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def start_relay(target, front, backend, tokens, args, log_path):
    bind = f"127.0.0.1:{front}"
    shards = ["--shards", str(args.shards)] if args.shards else []
    if target == "deskrelay-ws":
        argv = [str(args.deskrelay), "--log", "warn", "proxy", "--bind", bind, "--tokens",
                str(tokens), *shards]
    elif target == "deskrelay-raw":
        argv = [str(args.deskrelay), "--log", "warn", "proxy", "--bind", bind, "--forward",
                f"127.0.0.1:{backend}", *shards]
    else:
        argv = ["websockify", "--token-plugin", "TokenFile", "--token-source", str(tokens), bind]
    relay = Relay(argv, log_path)
    wait_listening(front, relay.proc, target, log_path)
    return relay


def one_run(args, part, target, sessions, duration, profile_args, rnd):
    """One loadgen run against a fresh relay: (report or None, loadgen's output tail)."""
    tag = f"{part}-{target}-{sessions}-r{rnd}"
    out = args.runs / f"{tag}.json"
    front, backend = free_ports(2)
    ws = target != "deskrelay-raw"
    common = [str(args.loadgen), "--protocol", "ws" if ws else "raw", "--sessions", str(sessions),
              "--target", f"127.0.0.1:{front}", "--backend-listen", f"127.0.0.1:{backend}"]
    tokens = None
    if ws:
        tokens = args.work / f"{tag}.tokens"
        tokens.unlink(missing_ok=True)
        subprocess.run(common + ["--ws-tokens", str(tokens)], check=True, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    relay = start_relay(target, front, backend, tokens, args, args.work / f"{tag}.log")
    try:
        cmd = common + ["--duration", str(duration), "--label", target, "--json", str(out),
                        "--relay-pid", str(relay.pid), *profile_args]
        if ws:
            cmd += ["--ws-tokens", str(tokens)]
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=duration + 90)
            text, code = r.stdout, r.returncode
        except subprocess.TimeoutExpired as e:
            text, code = (e.stdout or b"").decode(errors="replace"), "timeout"
    finally:
        relay.stop()
    if code != 0 or not out.exists():
        log(f"{tag}: loadgen exit {code}\n{text[-3000:]}")
        return (json.loads(out.read_text()) if out.exists() else None), False
    return json.loads(out.read_text()), True


def summarize(report):
    d = {"opened": report["sessions"]["opened"], "failed": report["sessions"]["failed"],
         "errors": report["errors"]["total"]}
    for name in ("upstream", "downstream"):
        lat = report[name]["latency_us"]
        d[name] = {k: lat[k] for k in ("p50", "p99", "p99_9", "max")}
        d[name]["mbit_s"] = report[name]["throughput_mbit_s"]
        d[name]["bytes"] = report[name]["bytes"]
        d[name]["messages"] = report[name]["messages"]
    d["mbit_s"] = d["upstream"]["mbit_s"] + d["downstream"]["mbit_s"]
    hs = report["sessions"]["handshake_us"]
    d["handshake"] = {"p50": hs["p50"], "p99": hs["p99"]}
    relay = report["resources"]["relay"]
    d["relay_cpu_s"] = relay["cpu_s"] if relay else None
    d["relay_peak_rss_mib"] = relay["peak_rss_bytes"] / 2**20 if relay else None
    d["loadgen_cpu_s"] = report["resources"]["loadgen_cpu_s"]
    moved = d["upstream"]["bytes"] + d["downstream"]["bytes"]
    d["mb_per_relay_cpu_s"] = (moved / 1e6 / d["relay_cpu_s"]) if d["relay_cpu_s"] else None
    return d


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return (a / b) if (a is not None and b) else None


def run_part(args, part, plan, results, failures):
    """plan: [(target, sessions)]; rotated each round."""
    duration = args.bulk_seconds if part == "bulk" else args.desktop_seconds
    profile = (["--profile", "bulk", "--saturate", "--size", str(args.bulk_size)]
               if part == "bulk" else [])
    for rnd in range(1, args.rounds + 1):
        k = (rnd - 1) % len(plan)
        for target, sessions in plan[k:] + plan[:k]:
            report, clean = one_run(args, part, target, sessions, duration, profile, rnd)
            key = f"{target}@{sessions}"
            if report is None:
                failures.append(f"{part} {key} r{rnd}: no report")
                continue
            s = summarize(report)
            s["round"], s["clean"] = rnd, clean
            if not clean:
                failures.append(f"{part} {key} r{rnd}: {report['errors']['by_kind']} "
                                f"{report['sessions']['failed_reasons']}")
            results.setdefault(part, {}).setdefault(key, []).append(s)
            log(f"{part} r{rnd}/{args.rounds} {key:<20} {s['mbit_s']:8.0f} Mbit/s  "
                f"down p99 {s['downstream']['p99'] / 1000:8.2f} ms  relay CPU "
                f"{fmt(s['relay_cpu_s'], 2)} s  {'clean' if clean else 'NOT CLEAN'}")


def bulk_table(args, runs):
    lines = [f"**(a) bulk**: {args.bulk_sessions} sessions, --profile bulk --saturate "
             f"--size {args.bulk_size}, {args.bulk_seconds:g} s a run, {args.rounds} round(s); "
             "medians over rounds", "",
             "| target | Mbit/s up | Mbit/s down | Mbit/s total (per round) | relay CPU s | "
             "MB per relay CPU-s | loadgen CPU s | relay peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    med = {}
    for t in TARGETS:
        rs = runs.get(f"{t}@{args.bulk_sessions}", [])
        if not rs:
            continue
        m = {"up": median([r["upstream"]["mbit_s"] for r in rs]),
             "down": median([r["downstream"]["mbit_s"] for r in rs]),
             "total": median([r["mbit_s"] for r in rs]),
             "cpu": median([r["relay_cpu_s"] for r in rs]),
             "per_cpu": median([r["mb_per_relay_cpu_s"] for r in rs]),
             "lg_cpu": median([r["loadgen_cpu_s"] for r in rs]),
             "rss": median([r["relay_peak_rss_mib"] for r in rs])}
        med[t] = m
        per_round = " / ".join(f"{r['mbit_s']:.0f}" for r in sorted(rs, key=lambda r: r["round"]))
        lines.append(f"| {t} | {fmt(m['up'], 0)} | {fmt(m['down'], 0)} | {fmt(m['total'], 0)} "
                     f"({per_round}) | {fmt(m['cpu'], 2)} | {fmt(m['per_cpu'], 0)} | "
                     f"{fmt(m['lg_cpu'], 2)} | {fmt(m['rss'], 1)} |")
    g = lambda t, k: med.get(t, {}).get(k)  # noqa: E731
    lines += ["",
              f"- deskrelay-ws / websockify throughput: "
              f"**{fmt(ratio(g('deskrelay-ws', 'total'), g('websockify', 'total')), 2)}x** "
              f"(target >= 20x); upstream (masked frames the relay unmasks): "
              f"{fmt(ratio(g('deskrelay-ws', 'up'), g('websockify', 'up')), 2)}x, downstream: "
              f"{fmt(ratio(g('deskrelay-ws', 'down'), g('websockify', 'down')), 2)}x; "
              f"per relay CPU-second: "
              f"{fmt(ratio(g('deskrelay-ws', 'per_cpu'), g('websockify', 'per_cpu')), 2)}x",
              f"- deskrelay-ws / deskrelay-raw throughput: "
              f"**{fmt(ratio(g('deskrelay-ws', 'total'), g('deskrelay-raw', 'total')), 2)}x** "
              f"(target >= 0.5x); per relay CPU-second: "
              f"{fmt(ratio(g('deskrelay-ws', 'per_cpu'), g('deskrelay-raw', 'per_cpu')), 2)}x",
              ""]
    return lines, med


def desktop_table(args, runs):
    lines = [f"**(b) desktop**: default desktop profile, {args.desktop_seconds:g} s a run, "
             f"{args.rounds} round(s); medians over rounds; latency in ms. websockify runs "
             f"{args.websockify_sessions} sessions (a process per connection: see the header), "
             f"deskrelay-ws runs that count too for a like-for-like pair.", "",
             "| target | sessions | handshake p50 / p99 | up p50 / p99 / p99.9 / max | "
             "down p50 / p99 / p99.9 / max | relay CPU s | relay peak RSS MiB | clean runs |",
             "|---|---|---|---|---|---|---|---|"]
    med = {}
    for key, rs in sorted(runs.items(), key=lambda kv: (int(kv[0].split("@")[1]), kv[0])):
        t, n = key.split("@")
        ms = lambda d, k: median([r[d][k] / 1000 for r in rs])  # noqa: E731
        m = {d: {k: ms(d, k) for k in ("p50", "p99", "p99_9", "max")}
             for d in ("upstream", "downstream")}
        m["handshake"] = {k: ms("handshake", k) for k in ("p50", "p99")}
        m["cpu"] = median([r["relay_cpu_s"] for r in rs])
        m["rss"] = median([r["relay_peak_rss_mib"] for r in rs])
        med[key] = m
        lat = lambda d: " / ".join(fmt(m[d][k], 2) for k in ("p50", "p99", "p99_9", "max"))  # noqa: E731
        clean = sum(r["clean"] for r in rs)
        lines.append(f"| {t} | {n} | {fmt(m['handshake']['p50'], 2)} / "
                     f"{fmt(m['handshake']['p99'], 2)} | {lat('upstream')} | {lat('downstream')} "
                     f"| {fmt(m['cpu'], 2)} | {fmt(m['rss'], 1)} | {clean}/{len(rs)} |")
    small = args.websockify_sessions
    p99 = lambda key: med.get(key, {}).get("downstream", {}).get("p99")  # noqa: E731
    cpu = lambda key: med.get(key, {}).get("cpu")  # noqa: E731
    lines += ["",
              f"- at {small} sessions, websockify / deskrelay-ws downstream p99: "
              f"{fmt(ratio(p99(f'websockify@{small}'), p99(f'deskrelay-ws@{small}')), 1)}x; "
              f"relay CPU: {fmt(ratio(cpu(f'websockify@{small}'), cpu(f'deskrelay-ws@{small}')), 1)}x",
              f"- at {args.desktop_sessions} sessions, deskrelay-ws / deskrelay-raw downstream p99: "
              f"{fmt(ratio(p99(f'deskrelay-ws@{args.desktop_sessions}'), p99(f'deskrelay-raw@{args.desktop_sessions}')), 2)}x; "
              f"relay CPU: {fmt(ratio(cpu(f'deskrelay-ws@{args.desktop_sessions}'), cpu(f'deskrelay-raw@{args.desktop_sessions}')), 2)}x",
              ""]
    return lines, med


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", default="bulk,desktop")
    ap.add_argument("--bulk-sessions", type=int, default=8)
    ap.add_argument("--bulk-seconds", type=float, default=5)
    ap.add_argument("--bulk-size", type=int, default=65536)
    ap.add_argument("--desktop-sessions", type=int, default=1000)
    ap.add_argument("--desktop-seconds", type=float, default=10)
    ap.add_argument("--websockify-sessions", type=int, default=100)
    ap.add_argument("--shards", type=int, help="deskrelay --shards (default: every CPU)")
    ap.add_argument("--out", default="target/bench")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    parts = args.parts.split(",")
    if not set(parts) <= {"bulk", "desktop"}:
        raise SystemExit("ws_peers: --parts takes bulk and/or desktop")
    counts = (args.bulk_sessions, args.desktop_sessions, args.websockify_sessions)
    if not (all(0 < n <= 5000 for n in counts) and 0 < args.rounds <= 10
            and 0 < args.bulk_seconds <= 120 and 0 < args.desktop_seconds <= 120):
        raise SystemExit("ws_peers: sessions 1..5000, seconds 1..120, rounds 1..10")
    os.chdir(REPO)
    if raise_nofile() < 2 * max(counts) + 500:
        raise SystemExit("ws_peers: the descriptor limit is too low for that many sessions")
    def terminated(signum, _frame):
        raise Terminated(signal.Signals(signum).name)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminated)
    ensure_websockify()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "deskrelay", "--bin", "loadgen"],
                       check=True)
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", "target")).resolve()
    args.loadgen = target_dir / "release" / "loadgen"
    args.deskrelay = target_dir / "release" / "deskrelay"
    out = Path(args.out)
    args.runs = out / "runs"
    args.work = out / "ws-work"
    args.runs.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)

    results, failures = {}, []
    if "bulk" in parts:
        run_part(args, "bulk", [(t, args.bulk_sessions) for t in TARGETS], results, failures)
    if "desktop" in parts:
        plan = [("deskrelay-ws", args.desktop_sessions), ("deskrelay-raw", args.desktop_sessions),
                ("websockify", args.websockify_sessions)]
        if args.websockify_sessions != args.desktop_sessions:
            plan.append(("deskrelay-ws", args.websockify_sessions))
        run_part(args, "desktop", plan, results, failures)

    host = {"cpus": os.cpu_count(), "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "websockify": package_version("websockify"), "python": sys.version.split()[0]}
    lines = [f"ws_peers: {host['cpus']} CPUs, websockify {host['websockify']}, "
             f"load average at the end {host['loadavg_end']}", ""]
    summary = {"host": host, "args": {k: str(v) for k, v in vars(args).items()},
               "runs": results, "failures": failures}
    if "bulk" in results:
        tbl, med = bulk_table(args, results["bulk"])
        lines += tbl
        summary["bulk_medians"] = med
    if "desktop" in results:
        tbl, med = desktop_table(args, results["desktop"])
        lines += tbl
        summary["desktop_medians"] = med
    if failures:
        lines += ["Runs that were not clean:", ""] + [f"- {f}" for f in failures] + [""]
    table = "\n".join(lines)
    print(table)
    (out / "ws_peers.md").write_text(table + "\n")
    (out / "ws_peers.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {out}/ws_peers.md, ws_peers.json, runs/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
