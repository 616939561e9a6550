#!/usr/bin/env python3
"""benches/loadgen_peers.py: loadgen's session benchmark, deskrelay side by side with its peers.

What it guards
  The same loadgen profile and session count (default: desktop, 1000 sessions) run against
  deskrelay, haproxy (mode tcp, option splice-auto), socat and direct (no relay), all on
  loopback, in one invocation, alternated round by round so machine noise hits every target
  alike. Target (issue 3): deskrelay's p99 added latency over direct <= haproxy's, and its RSS
  per session <= 16 KiB.

How to run (from the repository root; installs missing peers with apt when root or sudo)
  python3 benches/loadgen_peers.py                      # 1000 sessions, 10 s, 3 rounds
  python3 benches/loadgen_peers.py --sessions 200 --duration 3 --rounds 1   # quick look
  Extra arguments after `--` go to every loadgen run (e.g. -- --profile echo).

What it prints / writes (in --out, default target/bench)
  A table per direction: median over rounds of p50 / p99 / p99.9 / max latency, p99 added over
  direct (per round, then median), ratio of added p99 to haproxy's, relay CPU seconds and RSS
  per session; loadgen_peers.md (for the README), loadgen_peers.json (every run's summary),
  runs/TARGET-rN.json (loadgen's own reports) and loadgen_peers.svg (one line per target,
  downstream latency by percentile, from each target's median round).
  Exit status 0 when every run was clean (every session opened, every byte verified).
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
PEERS = {"haproxy": "haproxy", "socat": "socat"}
TARGETS = ["direct", "deskrelay", "haproxy", "socat"]


def log(msg):
    print(f"[loadgen_peers] {msg}", file=sys.stderr, flush=True)


def ensure_peers():
    missing = [pkg for cmd, pkg in PEERS.items() if shutil.which(cmd) is None]
    if not missing:
        return
    log(f"installing missing peers: {' '.join(missing)}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


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


def wait_listening(port, proc, what):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise SystemExit(f"loadgen_peers: {what} did not start listening on 127.0.0.1:{port}")


def raise_nofile():
    """Soft descriptor limit up to the hard one (peers and loadgen inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def start_peer(name, front, backend, workdir):
    """Starts haproxy or socat relaying 127.0.0.1:front to 127.0.0.1:backend."""
    if name == "haproxy":
        # Two descriptors a connection plus splice pipes (maxpipes = maxconn / 4, two each);
        # haproxy refuses to start if they cannot fit in the limit.
        maxconn = (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 300) // 3
        cfg = workdir / "haproxy.cfg"
        cfg.write_text(f"""global
    maxconn {maxconn}
defaults
    mode tcp
    option splice-auto
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend relay
    bind 127.0.0.1:{front}
    maxconn {maxconn}
    default_backend peers
backend peers
    server backend 127.0.0.1:{backend}
""")
        cmd = ["haproxy", "-db", "-f", str(cfg)]
    else:
        # -t: after one side ends, wait this long for the other (default 0.5 s loses late data)
        cmd = ["socat", "-t", "30", f"TCP-LISTEN:{front},bind=127.0.0.1,fork,reuseaddr,backlog=4096",
               f"TCP:127.0.0.1:{backend}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(workdir / f"{name}.err", "w"), start_new_session=True)
    wait_listening(front, proc, name)
    return proc


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def one_run(args, target, rnd, loadgen, runs_dir, workdir, extra):
    out = runs_dir / f"{target}-r{rnd}.json"
    cmd = [str(loadgen), "--sessions", str(args.sessions), "--duration", str(args.duration),
           "--label", target, "--json", str(out), *extra]
    peer = None
    if target == "direct":
        cmd.append("--direct")
    elif target in ("haproxy", "socat"):
        front, backend = free_ports(2)
        peer = start_peer(target, front, backend, workdir)
        cmd += ["--target", f"127.0.0.1:{front}", "--backend-listen", f"127.0.0.1:{backend}",
                "--relay-pid", str(peer.pid)]
    elif args.shards:
        cmd += ["--relay-shards", str(args.shards)]
    try:
        budget = args.duration + args.sessions / 1000 + 60
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=budget)
    finally:
        if peer:
            stop(peer)
    if r.returncode != 0 or not out.exists():
        log(f"{target} round {rnd}: loadgen exit {r.returncode}\n{r.stdout[-3000:]}")
        return None, r.returncode
    return json.loads(out.read_text()), 0


def summarize(report):
    d = {}
    for name in ("upstream", "downstream"):
        lat = report[name]["latency_us"]
        d[name] = {k: lat[k] for k in ("p50", "p99", "p99_9", "max")}
    relay = report["resources"]["relay"]
    d["relay_cpu_s"] = relay["cpu_s"] if relay else None
    d["rss_per_session_kib"] = relay["rss_per_session_bytes"] / 1024 if relay else None
    d["errors"] = report["errors"]["total"]
    d["opened"] = report["sessions"]["opened"]
    return d


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shards", type=int, help="deskrelay --shards (default: every CPU)")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--out", default="target/bench")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("extra", nargs="*", help="arguments for every loadgen run (after --)")
    args = ap.parse_args()
    targets = args.targets.split(",")
    for t in targets:
        if t not in TARGETS:
            raise SystemExit(f"loadgen_peers: unknown target {t}")
    if not (0 < args.sessions <= 20000 and 0 < args.duration <= 600 and 0 < args.rounds <= 20):
        raise SystemExit("loadgen_peers: sessions 1..20000, duration 1..600 s, rounds 1..20")
    os.chdir(REPO)
    if raise_nofile() < 2 * args.sessions + 500:
        raise SystemExit("loadgen_peers: the descriptor limit is too low for that many sessions")
    ensure_peers()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "loadgen"], check=True)
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    loadgen = (target_dir / "release" / "loadgen").resolve()
    out = Path(args.out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    workdir = out / "work"
    workdir.mkdir(exist_ok=True)

    results = {t: [] for t in targets}
    failed = 0
    for rnd in range(1, args.rounds + 1):
        order = targets[rnd - 1 :] + targets[: rnd - 1]  # rotate: no target always goes first
        for t in order:
            report, rc = one_run(args, t, rnd, loadgen, runs_dir, workdir, args.extra)
            if report is None:
                failed += 1
                continue
            s = summarize(report)
            s["round"] = rnd
            results[t].append(s)
            failed += s["errors"] > 0
            log(f"round {rnd}/{args.rounds} {t:<10} down p99 {s['downstream']['p99']:>9.1f} us"
                f"  up p99 {s['upstream']['p99']:>9.1f} us  errors {s['errors']}")

    direct_p99 = {(d, s["round"]): s[d]["p99"] for s in results.get("direct", [])
                  for d in ("upstream", "downstream")}
    lines = [f"loadgen, {args.sessions} sessions, {args.duration:g} s, "
             f"{' '.join(args.extra) or 'desktop profile'}, {args.rounds} round(s), "
             f"medians over rounds; latency in us", ""]
    summary = {"sessions": args.sessions, "duration_s": args.duration, "rounds": args.rounds,
               "extra_args": args.extra, "targets": {}}
    for d in ("upstream", "downstream"):
        added = {t: median([s[d]["p99"] - direct_p99[(d, s["round"])] for s in results[t]
                            if (d, s["round"]) in direct_p99]) for t in targets}
        lines += [f"**{d}**", "",
                  "| target | p50 | p99 | p99.9 | max | p99 added over direct | added vs haproxy "
                  "| relay CPU s | RSS KiB/session |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for t in targets:
            rs = results[t]
            m = {k: median([s[d][k] for s in rs]) for k in ("p50", "p99", "p99_9", "max")}
            hp = added.get("haproxy")
            ratio = (added[t] / hp) if (added[t] is not None and hp) else None
            cpu = median([s["relay_cpu_s"] for s in rs])
            rss = median([s["rss_per_session_kib"] for s in rs])
            lines.append(f"| {t} | {fmt(m['p50'])} | {fmt(m['p99'])} | {fmt(m['p99_9'])} | "
                         f"{fmt(m['max'])} | {fmt(added[t])} | {fmt(ratio, 2)} | {fmt(cpu, 2)} | "
                         f"{fmt(rss, 2)} |")
            summary["targets"].setdefault(t, {"runs": rs})[d] = {**m, "p99_added": added[t]}
        lines.append("")
    table = "\n".join(lines)
    print(table)
    (out / "loadgen_peers.md").write_text(table + "\n")
    (out / "loadgen_peers.json").write_text(json.dumps(summary, indent=2) + "\n")

    plot_inputs = []
    for t in targets:
        rs = sorted(results[t], key=lambda s: s["downstream"]["p99"])
        if rs:
            plot_inputs.append(str(runs_dir / f"{t}-r{rs[len(rs) // 2]['round']}.json"))
    if plot_inputs:
        subprocess.run([str(loadgen), "plot", "--out", str(out / "loadgen_peers.svg"),
                        *plot_inputs], check=False)
    log(f"wrote {out}/loadgen_peers.md, loadgen_peers.json, loadgen_peers.svg, runs/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
