#!/usr/bin/env python3
"""benches/xpra_proxy_memory.py: memory per relayed xpra session with real xpra 3.1.3 clients,
deskrelay vs xpra's own proxy (Python 3 stdlib only).

What it guards
  The issue: xpra's proxy forks a ~39 MB Python process per session; deskrelay's target is
  <= 16 KiB of RSS per session beyond kernel socket buffers. Here with K real clients (the
  1000-session figure comes from the load generator, benches/loadgen_peers.py).

How it measures (one proxy at a time, each started fresh in front of the same server)
  1. One `xpra start` server running xclock, with --sharing=yes so that K clients can be
     attached to the one session at once; a 0600 multifile with one user whose session it is.
  2. The proxy: `deskrelay proxy --bind 127.0.0.1:0 --auth multifile:PATH`, or
     `xpra proxy :N --bind-tcp=127.0.0.1:PORT --tcp-auth=multifile:filename=PATH` (+ the
     hermetic server flags; run as root it setuid()s each instance to the multifile's uid,
     1000 by default, so its --socket-dir is mode 1777).
  3. Warm-up: one client attached through the proxy until its xclock window is mapped, then
     detached (and, for xpra's proxy, its instance process gone), so one-time costs are not
     charged to the sessions.
  4. RSS_0: the proxy's process tree (the process and all its descendants, from /proc) with no
     session, after --settle s of quiet: sum of VmRSS, sum of Pss (smaps_rollup), and the
     proxy process's own VmRSS; each the median of 5 readings 0.2 s apart.
  5. K clients (--sessions, default 5) attached one after the other, each on its own Xvfb,
     each waited for until its xclock window is mapped and viewable; then --settle s and
     RSS_K is read the same way. The proxy's tree must then hold K more open sockets than at
     RSS_0 (xpra: K instance processes), or the run fails.
  6. per session = (RSS_K - RSS_0) / K, for tree VmRSS, tree Pss and the proxy process's own
     VmRSS (for deskrelay, one process, the last two are its /proc/PID/status VmRSS delta).
     The clients are then detached and the tree read once more (is memory given back?).
     Kernel memory (socket buffers) is not in RSS.
  7. Steps 4-6 run --passes times (default 2). Pass 1 still pays what a process pays the
     first time K sessions are open at once (deskrelay: /proc/PID/smaps shows the growth in
     the 64 MiB-aligned anonymous regions of the shard threads' malloc arenas); pass 2 starts
     where pass 1 left off, so its figure is what K more sessions cost a relay that has
     carried K before. Both are printed; the budget is judged on the last pass.

How to run (from the repository root; build first: cargo build --release)
  python3 benches/xpra_proxy_memory.py [--sessions 5] [--passes 2]
      [--proxies deskrelay,xpra-proxy] [--settle 2.0] [--deskrelay target/release/deskrelay]
      [--deskrelay-arg ARG ...]
      [--proxy-uid 1000] [--proxy-gid 1000] [--budget-kib 16] [--json PATH] [--keep] [--strict]

What it prints
  One line per step on stderr, then a table per proxy and pass: RSS_0, RSS_K and RSS after
  detaching (tree VmRSS, tree Pss, own VmRSS, in KiB), and KiB per session; then deskrelay's
  figures, its own VmRSS after each attach, and its verdict against the budget. --json PATH
  writes the same plus every reading. Exit status 1 if a measurement failed, or with --strict
  if deskrelay's own VmRSS per session (last pass) exceeds the budget.

Everything runs on 127.0.0.1; every wait is bounded; everything started is stopped on exit,
Ctrl-C, SIGTERM or an error (see benches/xpra_peers.py).
"""

import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xpra_peers as xp  # noqa: E402

PROXIES = ("deskrelay", "xpra-proxy")


def tree_sockets(root):
    n = 0
    for pid in xp.tree_pids(root):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                        n += 1
                except OSError:
                    pass
        except OSError:
            pass
    return n


def wait_tree_size(root, size, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(xp.tree_pids(root)) <= size:
            return True
        time.sleep(0.05)
    return False


def reading(root):
    m = xp.sampled_tree_memory(root)
    m["sockets"] = tree_sockets(root)
    return m


def measure(peers, name, proxy, uri, password, k, passes, settle, timeout):
    base_pids = len(xp.tree_pids(proxy.pid))

    def detach(clients):
        for c in clients:
            peers.stop_client(c)
        if not wait_tree_size(proxy.pid, base_pids):
            xp.log(f"{name}: proxy instances still running 30 s after their clients left")

    xp.log(f"{name}: warm-up session")
    warm = peers.start_client(uri, password, peers.start_xvfb())
    try:
        peers.wait_window(warm, timeout=timeout, every=0.05)
    finally:
        detach([warm])
    out = []
    for n in range(1, passes + 1):
        time.sleep(settle)
        r0 = reading(proxy.pid)
        xp.log(f"{name}: pass {n}: 0 sessions: {r0}")
        clients, series = [], []
        try:
            for i in range(k):
                c = peers.start_client(uri, password, peers.start_xvfb())
                clients.append(c)
                took = peers.wait_window(c, timeout=timeout, every=0.05)
                series.append(xp.status_kib(proxy.pid, "VmRSS"))
                xp.log(f"{name}: pass {n}: session {i + 1}/{k} window mapped after {took:.2f} s; "
                       f"own VmRSS {series[-1]} KiB")
            time.sleep(settle)
            for c in clients:
                if c.exited():
                    raise xp.BenchError(f"{name}: a client left before the reading:\n"
                                        f"{xp.tail(c.output())}")
            rk = reading(proxy.pid)
            xp.log(f"{name}: pass {n}: {k} sessions: {rk}")
        finally:
            detach(clients)
        if rk["sockets"] - r0["sockets"] < k:
            raise xp.BenchError(f"{name}: {rk['sockets'] - r0['sockets']} more sockets with {k} "
                                f"sessions; expected at least {k}")
        if name == "xpra-proxy" and rk["pids"] - r0["pids"] != k:
            raise xp.BenchError(f"{name}: {rk['pids'] - r0['pids']} instance processes for {k} "
                                f"sessions")
        time.sleep(settle)
        after = reading(proxy.pid)
        xp.log(f"{name}: pass {n}: after detaching: {after}")
        per = {f: (rk[f] - r0[f]) / k for f in ("rss_kib", "pss_kib", "root_rss_kib")}
        out.append({"pass": n, "sessions": k, "rss_0": r0, "rss_k": rk, "after": after,
                    "own_vmrss_after_each_attach_kib": series, "per_session_kib": per})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", "-k", type=int, default=5)
    ap.add_argument("--passes", type=int, default=2,
                    help="times K sessions are attached and detached through each proxy")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds of quiet before each reading")
    ap.add_argument("--timeout", type=float, default=xp.STARTUP_S,
                    help="seconds one attach may take to show the window")
    ap.add_argument("--user", default="bench")
    ap.add_argument("--password", default="bench-pw")
    ap.add_argument("--proxy-uid", type=int, default=1000)
    ap.add_argument("--proxy-gid", type=int, default=1000)
    ap.add_argument("--deskrelay", default=xp.DEFAULT_DESKRELAY)
    ap.add_argument("--deskrelay-arg", action="append", default=[],
                    help="extra deskrelay proxy argument (repeat)")
    ap.add_argument("--budget-kib", type=float, default=16.0)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir and logs")
    args = ap.parse_args()
    proxies = [p for p in args.proxies.split(",") if p]
    for p in proxies:
        if p not in PROXIES:
            ap.error(f"unknown proxy {p!r}")
    if args.sessions < 1 or args.passes < 1:
        ap.error("--sessions and --passes must be at least 1")

    xp.install_signal_handlers()
    host = xp.host_info()
    peers = xp.Peers(keep=args.keep)
    results = {}
    failed = None
    try:
        server = peers.start_server(extra_args=["--sharing=yes"])
        xp.log(f"xpra server {server.display} on {server.uri} (pid {server.pid}), sharing on")
        multifile = peers.write_multifile(
            [(args.user, args.password, args.proxy_uid, args.proxy_gid, server.uri)])
        for name in proxies:
            if name == "deskrelay":
                proxy = peers.start_deskrelay(args.deskrelay, multifile, args.deskrelay_arg)
            else:
                proxy = peers.start_xpra_proxy(multifile)
            xp.log(f"{name} on 127.0.0.1:{proxy.port} (pid {proxy.pid})")
            uri = f"tcp://{args.user}@127.0.0.1:{proxy.port}/"
            try:
                results[name] = measure(peers, name, proxy, uri, args.password, args.sessions,
                                        args.passes, args.settle, args.timeout)
            finally:
                peers.stop(proxy)
    except (xp.BenchError, KeyboardInterrupt, xp.Terminated) as e:
        failed = f"{type(e).__name__}: {e}"
        xp.log(f"FAILED: {failed}")
    finally:
        peers.close()

    k = args.sessions
    print()
    print(f"xpra proxy memory per session: {k} real xpra clients attached at once through each "
          f"proxy (one shared xclock session), {args.passes} pass(es) of attach {k} / detach {k}")
    print(f"host: {host['uname']}, {host['cpus']} CPUs, load {host['loadavg']}; {host['xpra']}; "
          f"deskrelay at {host['git']}")
    print("tree = the proxy process and all its descendants (/proc); own = the proxy process "
          "alone (/proc/PID/status VmRSS); KiB. Pass 1 follows one warm-up session; pass 2 on "
          f"follows the previous pass ({k} sessions already seen)")
    print()
    print(f"| {'proxy':<10} | {'pass':>4} | {'reading':<16} | {'procs':>5} | {'sockets':>7} "
          f"| {'tree VmRSS':>10} | {'tree Pss':>9} | {'own VmRSS':>9} |")
    print(f"|{'-' * 12}|{'-' * 6}|{'-' * 18}|{'-' * 7}|{'-' * 9}|{'-' * 12}|{'-' * 11}|{'-' * 11}|")
    for name, passes in results.items():
        for r in passes:
            for label, m in (("0 sessions", r["rss_0"]), (f"{k} sessions", r["rss_k"]),
                             ("after detaching", r["after"])):
                print(f"| {name:<10} | {r['pass']:>4} | {label:<16} | {m['pids']:>5} "
                      f"| {m['sockets']:>7} | {m['rss_kib']:>10} | {m['pss_kib']:>9} "
                      f"| {m['root_rss_kib']:>9} |")
            per = r["per_session_kib"]
            print(f"| {name:<10} | {r['pass']:>4} | {'**per session**':<16} | {'':>5} | {'':>7} "
                  f"| {per['rss_kib']:>10.1f} | {per['pss_kib']:>9.1f} "
                  f"| {per['root_rss_kib']:>9.1f} |")
    print()
    verdict = None
    if results.get("deskrelay"):
        passes = results["deskrelay"]
        figures = ", ".join(f"pass {r['pass']}: {r['per_session_kib']['root_rss_kib']:.1f}"
                            for r in passes)
        last = passes[-1]["per_session_kib"]["root_rss_kib"]
        verdict = last <= args.budget_kib
        print(f"deskrelay, (VmRSS_{k} - VmRSS_0) / {k} per session, KiB: {figures}; "
              f"budget {args.budget_kib:g} KiB beyond kernel socket buffers, judged on the last "
              f"pass: {'within' if verdict else 'OVER'}")
        print(f"deskrelay own VmRSS after each attach, KiB: "
              + "; ".join(f"pass {r['pass']}: {r['own_vmrss_after_each_attach_kib']}"
                          for r in passes))
    if results.get("xpra-proxy"):
        figures = ", ".join(f"pass {r['pass']}: {r['per_session_kib']['rss_kib'] / 1024:.1f} MiB "
                            f"VmRSS / {r['per_session_kib']['pss_kib'] / 1024:.1f} MiB Pss"
                            for r in results["xpra-proxy"])
        print(f"xpra proxy, tree per session (one forked Python instance process each): {figures}")
    if failed:
        print(f"\nrun failed: {failed}")

    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"bench": "xpra_proxy_memory", "host": host,
                       "args": vars(args) | {"password": "***"}, "results": results,
                       "failed": failed, "deskrelay_within_budget": verdict}, f, indent=2)
        print(f"\nwrote {args.json}")
    if failed:
        return 1
    if args.strict and verdict is False:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
