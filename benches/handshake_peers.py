#!/usr/bin/env python3
"""benches/handshake_peers.py: session set-up cost, deskrelay's xpra door beside plain L4 relays.

Usage: python3 benches/handshake_peers.py [--rounds 4] [--duration 10] [--sessions 100]

Runs loadgen's handshake profile (each session connects, sets up, closes, and starts over)
against, rotated each round:
  - deskrelay-xpra: deskrelay (one shard) as an xpra proxy: the client's hello, the
    challenge, its HMAC answer checked against a multifile, the backend connected and sent
    the rewritten hello, the backend's hello back to the client;
  - deskrelay-raw: the same deskrelay build forwarding L4: connect, one round trip, close;
  - haproxy-raw: haproxy (mode tcp) doing the same L4 round trip, the peer that shows what
    accept + connect + a round trip + two closes cost in this kernel.
Figures are handshakes per second of the relay's own CPU time (user + system, whole process
tree: `loadgen --relay-pid`), the measure of "handshakes per core". The load generator
shares the machine, so handshakes per second of wall time depend on it too.

Writes target/bench/handshake_peers.md (and .json, and each run's loadgen report under runs/).
Installs haproxy from Debian if missing. Python 3 stdlib only; loopback only.
"""

import argparse
import datetime
import json
import pathlib
import subprocess
import sys
import tempfile

from loadgen_peers import ensure_peers, free_ports, log, median, start_peer, stop

TARGETS = ["deskrelay-xpra", "deskrelay-raw", "haproxy-raw"]
REPO = pathlib.Path(__file__).resolve().parent.parent


def one_run(args, target, rnd, loadgen, runs_dir, workdir):
    out = runs_dir / f"{target}-r{rnd}.json"
    protocol = "xpra" if target == "deskrelay-xpra" else "raw"
    cmd = [str(loadgen), "--protocol", protocol, "--profile", "handshake",
           "--sessions", str(args.sessions), "--duration", str(args.duration),
           "--label", target, "--json", str(out)]
    peer = None
    if target == "haproxy-raw":
        front, backend = free_ports(2)
        peer = start_peer("haproxy", front, backend, workdir)
        cmd += ["--target", f"127.0.0.1:{front}", "--backend-listen", f"127.0.0.1:{backend}",
                "--relay-pid", str(peer.pid)]
    else:
        cmd += ["--relay-shards", "1"]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=args.duration + 60)
    finally:
        if peer:
            stop(peer)
    if r.returncode != 0 or not out.exists():
        log(f"{target} round {rnd}: loadgen exit {r.returncode}\n{r.stdout[-3000:]}")
        return None
    report = json.loads(out.read_text())
    hs = report["handshakes"]
    return {"completed": hs["completed"], "failed": hs["failed"] + report["sessions"]["failed"],
            "per_sec": hs["per_sec"], "per_relay_cpu_s": hs["per_relay_cpu_s"],
            "p50_us": report["sessions"]["handshake_us"]["p50"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--sessions", type=int, default=100, help="concurrent handshake loops")
    ap.add_argument("--out", default=str(REPO / "target" / "bench"))
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    ensure_peers()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "--bin", "loadgen"], cwd=REPO,
                       check=True)
    loadgen = REPO / "target" / "release" / "loadgen"
    out_dir = pathlib.Path(args.out)
    runs_dir = out_dir / "runs" / "handshake"
    runs_dir.mkdir(parents=True, exist_ok=True)
    rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                         capture_output=True, text=True).stdout.strip()
    results = {t: [] for t in TARGETS}
    with tempfile.TemporaryDirectory(prefix="handshake-peers-") as tmp:
        workdir = pathlib.Path(tmp)
        for rnd in range(args.rounds):
            order = TARGETS[rnd % len(TARGETS):] + TARGETS[:rnd % len(TARGETS)]
            for target in order:
                got = one_run(args, target, rnd, loadgen, runs_dir, workdir)
                if got:
                    results[target].append(got)
                    log(f"round {rnd} {target}: {got['per_relay_cpu_s']:.0f} per relay CPU-s, "
                        f"{got['per_sec']:.0f}/s, {got['failed']} failed")

    def med(t, key):
        xs = [r[key] for r in results[t] if r[key] is not None]
        return median(xs) if xs else None

    base = med("haproxy-raw", "per_relay_cpu_s")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"`benches/handshake_peers.py` at `{rev}`, {stamp}; {args.rounds} rounds x "
             f"{args.duration:g} s, {args.sessions} concurrent handshake loops, targets rotated "
             "each round; deskrelay with one shard.", "",
             "| target | runs ok | handshakes/s (median) | per relay CPU-second: median | min "
             "| max | vs haproxy-raw | handshake p50 us | failed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in TARGETS:
        runs = results[t]
        if not runs:
            lines.append(f"| {t} | 0/{args.rounds} | - | - | - | - | - | - | - |")
            continue
        per_cpu = [r["per_relay_cpu_s"] for r in runs]
        m = med(t, "per_relay_cpu_s")
        ratio = f"{m / base:.2f}" if base and m else "-"
        lines.append(f"| {t} | {len(runs)}/{args.rounds} | {med(t, 'per_sec'):,.0f} | {m:,.0f} "
                     f"| {min(per_cpu):,.0f} | {max(per_cpu):,.0f} | {ratio} "
                     f"| {med(t, 'p50_us'):,.0f} | {sum(r['failed'] for r in runs)} |")
    md = "\n".join(lines) + "\n"
    (out_dir / "handshake_peers.md").write_text(md)
    (out_dir / "handshake_peers.json").write_text(json.dumps(
        {"rev": rev, "when": stamp, "args": vars(args), "results": results}, indent=1))
    print(md)
    return 0 if all(results[t] for t in TARGETS) else 1


if __name__ == "__main__":
    sys.exit(main())
