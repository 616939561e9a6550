#!/usr/bin/env python3
"""Summarises the samples of benches/relay_peers.sh (Python 3.11 stdlib only).

Called by relay_peers.sh; can be re-run by hand on a kept CSV:
    python3 benches/relay_peers_report.py --csv target/bench/relay_peers.csv \
        [--md target/bench/relay_peers.md] [--json target/bench/relay_peers.json]

Reads one row per iperf3 run (round, target, direction, status, recv_gbps, ...), and prints,
per direction, a table: target, ok runs, median / min / max Gbit/s (iperf3 receiver side),
median relative to direct and to haproxy (same direction), and the relay's median CPU use in
% of one core. Writes the same tables as markdown and everything as JSON.
"""

import argparse
import csv
import json
import statistics
import sys

ORDER = ["direct", "deskrelay-copy", "deskrelay-splice", "deskrelay-auto", "haproxy", "socat"]
DIRECTIONS = ["forward", "reverse"]
HEAD = ["target", "runs ok", "median Gbit/s", "min", "max", "vs direct", "vs haproxy",
        "relay CPU % (median)"]


def fnum(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def summarise(rows):
    out = {}
    for direction in DIRECTIONS:
        per = {}
        for target in ORDER:
            mine = [r for r in rows if r["target"] == target and r["direction"] == direction]
            if not mine:
                continue
            ok = [r for r in mine if r["status"] == "ok" and r["recv_gbps"]]
            g = [float(r["recv_gbps"]) for r in ok]
            cpu = [float(r["relay_cpu_pct"]) for r in ok if r["relay_cpu_pct"]]
            per[target] = {
                "runs": len(mine),
                "ok": len(ok),
                "failures": sorted({r["status"] for r in mine if r["status"] != "ok"}),
                "median_gbps": statistics.median(g) if g else None,
                "min_gbps": min(g) if g else None,
                "max_gbps": max(g) if g else None,
                "samples_gbps": g,
                "relay_cpu_pct_median": statistics.median(cpu) if cpu else None,
            }
        for target, s in per.items():
            for base in ("direct", "haproxy"):
                b = per.get(base, {}).get("median_gbps")
                m = s["median_gbps"]
                s[f"vs_{base}"] = (m / b) if (m is not None and b) else None
        if per:
            out[direction] = per
    return out


def table_rows(per):
    for target, s in per.items():
        yield [target, f"{s['ok']}/{s['runs']}", fnum(s["median_gbps"]), fnum(s["min_gbps"]),
               fnum(s["max_gbps"]), fnum(s["vs_direct"]), fnum(s["vs_haproxy"]),
               fnum(s["relay_cpu_pct_median"], "{:.0f}")]


def text_table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(rows):
    lines = ["| " + " | ".join(rows[0]) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def title(direction):
    return ("Forward (client sends, iperf3 default)" if direction == "forward"
            else "Reverse (server sends, iperf3 -R)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--meta", default="{}", help="JSON object describing the run")
    ap.add_argument("--md")
    ap.add_argument("--json")
    a = ap.parse_args()
    with open(a.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    meta = json.loads(a.meta)
    summary = summarise(rows)

    for direction, per in summary.items():
        print(f"\n{title(direction)}")
        print(text_table([HEAD] + list(table_rows(per))))
    print()

    if a.md:
        m = meta
        md = ["# deskrelay vs peers: iperf3 throughput on loopback", ""]
        if m:
            md += [
                f"`benches/relay_peers.sh` at `{m.get('git_rev', '?')}`, {m.get('date_utc', '?')}; "
                f"Linux {m.get('kernel', '?')}, {m.get('cpus', '?')} CPUs; "
                f"{m.get('rounds')} rounds x {m.get('duration_s')} s per run, "
                f"{m.get('parallel')} stream(s), targets alternated and rotated each round; "
                f"deskrelay shards: {m.get('shards')}. "
                f"{m.get('iperf3', '')}; {m.get('haproxy', '')} (mode tcp, option splice-auto); "
                f"{(m.get('socat') or ['socat'])[0]}.",
                "",
            ]
        md += ["Gbit/s = iperf3 receiver side (`end.sum_received`); median/min/max over rounds. "
               "\"vs\" columns divide medians of the same direction. Relay CPU = the relay's "
               "CPU time (all threads and processes) over the run's wall time, in % of one core.",
               ""]
        for direction, per in summary.items():
            md += [f"## {title(direction)}", "", md_table([HEAD] + list(table_rows(per))), ""]
        bad = [(d, t, s["failures"]) for d, per in summary.items() for t, s in per.items()
               if s["failures"]]
        if bad:
            md += ["Failed runs: " + "; ".join(f"{t} {d}: {', '.join(f)}" for d, t, f in bad), ""]
        with open(a.md, "w") as f:
            f.write("\n".join(md))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "summary": summary, "samples": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
