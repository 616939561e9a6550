#!/usr/bin/env python3
"""benches/xpra_session_start.py: session start with a real xpra 3.1.3 client, attach -> window
mapped, direct vs through deskrelay vs through xpra's own proxy (Python 3 stdlib only).

What it guards
  The issue's figure: "Session start, attach -> window mapped, real client: measured here
  direct 0.52 s, via xpra's own proxy 0.77 s. Target: <= direct + 10 ms." for deskrelay.

How it measures
  1. One `xpra start` server running xclock (optionally --server-password), on its own Xvfb.
  2. A 0600 multifile with one user whose session is that server (uid/gid 1000 by default:
     xpra's proxy, run as root, refuses uid or gid 0), read by both proxies:
       deskrelay proxy --bind 127.0.0.1:0 --auth multifile:PATH
       xpra proxy :N --bind-tcp=127.0.0.1:PORT --tcp-auth=multifile:filename=PATH (+ the
         hermetic server flags, and a --socket-dir the instances' uid can write to)
  3. Warm-up (--warmup rounds, default 1, not counted): one attach per path.
  4. R rounds (--rounds, default 5); the order of the paths rotates each round. Per path: a
     fresh Xvfb display for the client (started before the clock), then the clock starts and
     `xpra attach URI` is spawned; `xwininfo -root -tree` is polled on the client display
     every ~10 ms until an xclock window is there and `xwininfo -id` says IsViewable. The time
     from the spawn to that check is the sample. The client is then stopped cleanly (SIGTERM:
     it disconnects), its Xvfb stopped, and the next attach waits until the xpra proxy's
     instance process is gone plus --settle seconds.
  Direct: tcp://127.0.0.1:SERVER/ (with the server password, if any). Through a proxy:
  tcp://USER@127.0.0.1:PROXY/ with the user's password (challenge-response at the proxy,
  then the proxy answers the server's own challenge with the password in the session URI).

How to run (from the repository root; build first: cargo build --release)
  python3 benches/xpra_session_start.py [--rounds 5] [--warmup 1] [--settle 1.0]
      [--server-password PW] [--paths direct,deskrelay,xpra-proxy]
      [--deskrelay target/release/deskrelay] [--deskrelay-arg ARG ...]
      [--proxy-uid 1000] [--proxy-gid 1000] [--json PATH] [--keep] [--strict]

What it prints
  One line per sample on stderr, then a table: per path, samples, median / min / max ms,
  median minus direct's median, and the median of the per-round paired differences
  (path - direct in the same round), which machine noise moves less. --json PATH writes the
  same plus every sample and the host's load. Exit status 1 if a measurement failed, or with
  --strict if deskrelay's median exceeds direct's by more than --target-ms (10).

Everything runs on 127.0.0.1; every wait is bounded; everything started is stopped on exit,
Ctrl-C, SIGTERM or an error (see benches/xpra_peers.py).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xpra_peers as xp  # noqa: E402

PATHS = ("direct", "deskrelay", "xpra-proxy")


def wait_proxy_idle(proxy, baseline_pids, timeout=20.0):
    """Until the xpra proxy's process tree is back to `baseline_pids` processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(xp.tree_pids(proxy.pid)) <= baseline_pids:
            return True
        time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="uncounted rounds first")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds of quiet between a client's exit and the next attach")
    ap.add_argument("--poll-ms", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=xp.STARTUP_S,
                    help="seconds one attach may take to show the window")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--server-password", default=None)
    ap.add_argument("--user", default="bench")
    ap.add_argument("--password", default="bench-pw")
    ap.add_argument("--proxy-uid", type=int, default=1000)
    ap.add_argument("--proxy-gid", type=int, default=1000)
    ap.add_argument("--deskrelay", default=xp.DEFAULT_DESKRELAY)
    ap.add_argument("--deskrelay-arg", action="append", default=[],
                    help="extra deskrelay proxy argument (repeat)")
    ap.add_argument("--target-ms", type=float, default=10.0)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir and logs")
    args = ap.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    for p in paths:
        if p not in PATHS:
            ap.error(f"unknown path {p!r}")
    if "direct" not in paths:
        paths.insert(0, "direct")

    xp.install_signal_handlers()
    host = xp.host_info()
    peers = xp.Peers(keep=args.keep)
    samples = {p: [] for p in paths}
    rounds_log = []
    failed = None
    try:
        server = peers.start_server(password=args.server_password)
        xp.log(f"xpra server {server.display} on {server.uri} (pid {server.pid})")
        session = server.uri
        if args.server_password:
            session = f"tcp://{args.user}:{args.server_password}@127.0.0.1:{server.port}/"
        multifile = peers.write_multifile(
            [(args.user, args.password, args.proxy_uid, args.proxy_gid, session)])
        targets = {"direct": (server.uri, args.server_password)}
        proxies = {}
        if "deskrelay" in paths:
            relay = peers.start_deskrelay(args.deskrelay, multifile, args.deskrelay_arg)
            proxies["deskrelay"] = relay
            targets["deskrelay"] = (f"tcp://{args.user}@127.0.0.1:{relay.port}/", args.password)
            xp.log(f"deskrelay on 127.0.0.1:{relay.port} (pid {relay.pid})")
        if "xpra-proxy" in paths:
            xproxy = peers.start_xpra_proxy(multifile)
            proxies["xpra-proxy"] = xproxy
            targets["xpra-proxy"] = (f"tcp://{args.user}@127.0.0.1:{xproxy.port}/", args.password)
            xp.log(f"xpra proxy on 127.0.0.1:{xproxy.port} (pid {xproxy.pid})")
        baseline = {name: len(xp.tree_pids(p.pid)) for name, p in proxies.items()}

        def one(path):
            uri, password = targets[path]
            xvfb = peers.start_xvfb()
            client = peers.start_client(uri, password, xvfb)
            try:
                took = peers.wait_window(client, timeout=args.timeout,
                                         every=args.poll_ms / 1000.0)
            finally:
                code = peers.stop_client(client)
            if code not in (0, -15, 143):
                xp.log(f"  {path}: client exit code {code}")
            if path in proxies and path == "xpra-proxy":
                if not wait_proxy_idle(proxies[path], baseline[path]):
                    xp.log("  xpra proxy instance still running 20 s after the client left")
            time.sleep(args.settle)
            return took

        total = args.warmup + args.rounds
        for r in range(total):
            k = r % len(paths)
            order = paths[k:] + paths[:k]
            counted = r >= args.warmup
            label = f"round {r - args.warmup + 1}/{args.rounds}" if counted else \
                f"warm-up {r + 1}/{args.warmup}"
            row = {"round": r - args.warmup + 1 if counted else None, "order": order,
                   "ms": {}, "loadavg1": round(os.getloadavg()[0], 2)}
            for path in order:
                took = one(path)
                row["ms"][path] = round(took * 1000, 1)
                xp.log(f"{label}: {path:<10} {took * 1000:8.1f} ms"
                       f"{'' if counted else ' (warm-up, not counted)'}")
                if counted:
                    samples[path].append(took * 1000)
            if counted:
                rounds_log.append(row)
    except (xp.BenchError, KeyboardInterrupt, xp.Terminated) as e:
        failed = f"{type(e).__name__}: {e}"
        xp.log(f"FAILED: {failed}")
    finally:
        peers.close()

    summary = {}
    direct = samples.get("direct") or []
    for path in paths:
        s = samples[path]
        if not s:
            continue
        row = {"n": len(s), "median_ms": statistics.median(s), "min_ms": min(s), "max_ms": max(s)}
        if direct and path != "direct":
            row["median_minus_direct_ms"] = row["median_ms"] - statistics.median(direct)
            paired = [rr["ms"][path] - rr["ms"]["direct"] for rr in rounds_log
                      if path in rr["ms"] and "direct" in rr["ms"]]
            if paired:
                row["paired_diff_median_ms"] = statistics.median(paired)
                row["paired_diff_ms"] = paired
        summary[path] = row

    print()
    print(f"xpra session start, attach -> xclock window mapped (real xpra client), "
          f"{len(rounds_log)} rounds, paths rotated each round")
    print(f"host: {host['uname']}, {host['cpus']} CPUs, load {host['loadavg']} at start, "
          f"{[round(x, 2) for x in os.getloadavg()]} at end; {host['xpra']}; "
          f"deskrelay at {host['git']}; server password: {'yes' if args.server_password else 'no'}")
    print()
    print(f"| {'path':<10} | {'n':>2} | {'median ms':>9} | {'min ms':>8} | {'max ms':>8} "
          f"| {'median - direct':>15} | {'paired diff (median)':>20} |")
    print(f"|{'-' * 12}|{'-' * 4}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 17}|{'-' * 22}|")
    for path, row in summary.items():
        d = row.get("median_minus_direct_ms")
        pd = row.get("paired_diff_median_ms")
        print(f"| {path:<10} | {row['n']:>2} | {row['median_ms']:>9.1f} | {row['min_ms']:>8.1f} "
              f"| {row['max_ms']:>8.1f} | {'' if d is None else f'{d:+.1f} ms':>15} "
              f"| {'' if pd is None else f'{pd:+.1f} ms':>20} |")
    verdict = None
    if "deskrelay" in summary and "median_minus_direct_ms" in summary["deskrelay"]:
        d = summary["deskrelay"]["median_minus_direct_ms"]
        verdict = d <= args.target_ms
        print()
        print(f"target: deskrelay <= direct + {args.target_ms:g} ms: "
              f"{'met' if verdict else 'NOT met'} (median {d:+.1f} ms, paired "
              f"{summary['deskrelay'].get('paired_diff_median_ms', float('nan')):+.1f} ms)")
    if failed:
        print(f"\nrun failed: {failed}")

    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"bench": "xpra_session_start", "host": host,
                       "end_loadavg": [round(x, 2) for x in os.getloadavg()],
                       "args": vars(args) | {"server_password": bool(args.server_password),
                                             "password": "***"},
                       "summary": summary, "rounds": rounds_log, "failed": failed,
                       "target_met": verdict}, f, indent=2)
        print(f"\nwrote {args.json}")
    if failed:
        return 1
    if args.strict and verdict is False:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
