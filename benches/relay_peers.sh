#!/usr/bin/env bash
# benches/relay_peers.sh: the benchmark of the relay engine, side by side with its peers.
#
# What it guards
#   Throughput of one bulk TCP stream (iperf3) through deskrelay's three data paths
#   (copy, splice, auto) against the same stream sent direct, through haproxy (mode tcp,
#   splice-auto) and through socat, all on loopback, all in the same run, alternated round
#   by round so machine noise hits every target alike. With --memory: the memory an idle
#   session costs the relay (benches/idle_sessions.py; budget: <= 16 KiB per session).
#
# How to run (from the repository root; needs root or sudo only to install missing peers)
#   benches/relay_peers.sh                     # throughput: 5 s per run, 3 rounds, 1 stream
#   benches/relay_peers.sh -d 2 -r 1           # quick look while iterating
#   benches/relay_peers.sh --memory            # idle-session memory only (2000 sessions)
#   benches/relay_peers.sh --all               # throughput, then memory
#   Flags (environment variable in brackets):
#     -d, --duration SEC    seconds per iperf3 run                [DURATION, 5]
#     -r, --rounds N        rounds; each round runs every target  [ROUNDS, 3]
#     -P, --parallel N      iperf3 parallel streams (-P)          [PARALLEL, 1]
#     --reverse SET         reverse (-R) runs for: all | key | none
#                           (key = direct, deskrelay-auto, haproxy) [REVERSE, all]
#     --targets LIST        comma-separated subset of the targets [TARGETS, all six]
#     --shards N            deskrelay --shards (default: the relay's own default) [SHARDS]
#     --sessions N          idle sessions for --memory            [SESSIONS, 2000]
#     --memory / --all      memory mode only / throughput then memory
#     --no-build            skip `cargo build --release`          [NO_BUILD=1]
#     --out DIR             where results go                      [BENCH_OUT, target/bench]
#     --deskrelay-bin PATH  relay binary                          [DESKRELAY_BIN]
#
# What it prints / writes
#   Throughput: one line per iperf3 run as it goes, then a table per direction: target,
#   median / min / max Gbit/s (iperf3 receiver end, end.sum_received), ratio of the median to
#   direct and to haproxy, and the relay's median CPU use (% of one core, all its threads and
#   processes). Written to $BENCH_OUT/relay_peers.md (markdown, for the README),
#   relay_peers.json (summary + every sample) and relay_peers.csv (every sample); the raw
#   iperf3 JSON of each run is kept in $BENCH_OUT/relay_peers.raw/.
#   Memory: see benches/idle_sessions.py (writes $BENCH_OUT/idle_sessions.{md,json}).
#   Exit status: 0 when every run succeeded (and, with --memory, deskrelay met its budget).
#
# Targets (each its own free loopback port, all in front of one `iperf3 -s`):
#   direct            iperf3 itself
#   deskrelay-copy    deskrelay proxy --data-path copy
#   deskrelay-splice  deskrelay proxy --data-path splice
#   deskrelay-auto    deskrelay proxy --data-path auto
#   haproxy           haproxy, mode tcp, option splice-auto
#   socat             socat TCP-LISTEN:port,fork,reuseaddr TCP:127.0.0.1:iperfport
# Reverse runs (iperf3 -R: the server sends) cover all six by default: a reverse run costs
# the same as a forward one, and deskrelay's auto policy decides per direction, so both
# directions are worth seeing. --reverse key keeps the three that the ratios need.
#
# Everything it starts is killed on exit (EXIT/INT/TERM trap), each by its own process group.
# Only 127.0.0.1 is ever a traffic target. Every run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
PARALLEL=${PARALLEL:-1}
REVERSE=${REVERSE:-all}
TARGETS=${TARGETS:-direct,deskrelay-copy,deskrelay-splice,deskrelay-auto,haproxy,socat}
SHARDS=${SHARDS:-}
SESSIONS=${SESSIONS:-2000}
NO_BUILD=${NO_BUILD:-0}
BENCH_OUT=${BENCH_OUT:-target/bench}
DESKRELAY_BIN=${DESKRELAY_BIN:-${CARGO_TARGET_DIR:-target}/release/deskrelay}
MODE=throughput

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    -d|--duration) DURATION=$2; shift 2 ;;
    -r|--rounds) ROUNDS=$2; shift 2 ;;
    -P|--parallel) PARALLEL=$2; shift 2 ;;
    --reverse) REVERSE=$2; shift 2 ;;
    --targets) TARGETS=$2; shift 2 ;;
    --shards) SHARDS=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --memory) MODE=memory; shift ;;
    --all) MODE=all; shift ;;
    --no-build) NO_BUILD=1; shift ;;
    --out) BENCH_OUT=$2; shift 2 ;;
    --deskrelay-bin) DESKRELAY_BIN=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "relay_peers: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
for v in DURATION ROUNDS PARALLEL SESSIONS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "relay_peers: $v must be a positive integer" >&2; exit 2; }
done
[[ -z $SHARDS || $SHARDS =~ ^[1-9][0-9]*$ ]] || { echo "relay_peers: --shards must be a positive integer" >&2; exit 2; }
case $REVERSE in all|key|none) ;; *) echo "relay_peers: --reverse must be all, key or none" >&2; exit 2 ;; esac
ALL_TARGETS=(direct deskrelay-copy deskrelay-splice deskrelay-auto haproxy socat)
IFS=, read -r -a SELECTED <<<"$TARGETS"
for t in "${SELECTED[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "relay_peers: unknown target: $t" >&2; exit 2; }
done
selected() { [[ ",$TARGETS," == *",$1,"* ]]; }
log() { printf '[relay_peers] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- peers and the binary
# command -> Debian package. Installed only when missing (a fresh CI machine has none).
declare -A PEERS=([iperf3]=iperf3 [haproxy]=haproxy [socat]=socat [python3]=python3-minimal
                  [setsid]=util-linux [timeout]=coreutils)
missing=()
for cmd in "${!PEERS[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${PEERS[$cmd]}")
done
if ((${#missing[@]})); then
  log "installing missing peers: ${missing[*]}"
  SUDO=; ((EUID == 0)) || SUDO=sudo
  $SUDO apt-get update -qq
  # iperf3's postinst asks whether to start a system daemon; the default (no) is what we want.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ $NO_BUILD != 1 ]]; then
  log "building the release binary (the target dir may be locked by another build; waiting)"
  cargo build --release --bin deskrelay
fi
[[ -x $DESKRELAY_BIN ]] || { echo "relay_peers: no relay binary at $DESKRELAY_BIN" >&2; exit 1; }

# Sessions need descriptors: two per relayed session, plus the client's and the backend's.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 20000 2>/dev/null || true
NOFILE=$(ulimit -n)

mkdir -p "$BENCH_OUT"

if [[ $MODE == memory ]]; then
  exec python3 benches/idle_sessions.py --sessions "$SESSIONS" --deskrelay "$DESKRELAY_BIN" \
    ${SHARDS:+--shards "$SHARDS"} --out "$BENCH_OUT"
fi

# ---------------------------------------------------------------- process bookkeeping
WORK=$(mktemp -d "${TMPDIR:-/tmp}/relay_peers.XXXXXX")
declare -A PID=()      # name -> pid; each process leads its own process group (setsid)
cleanup() {
  local name pid
  for name in "${!PID[@]}"; do
    pid=${PID[$name]}
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for name in "${!PID[@]}"; do
    pid=${PID[$name]}
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PID=()
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# start NAME CMD...: runs CMD in its own session (so its process group is ours to kill).
# In a script without job control, setsid does not fork: $! is CMD's pid and its pgid.
start() {
  local name=$1; shift
  setsid "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
  PID[$name]=$!
}
stop() {
  local name=$1 pid=${PID[$1]:-}
  [[ -n $pid ]] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PID[$name]"
}
alive() { [[ -n ${PID[$1]:-} ]] && kill -0 "${PID[$1]}" 2>/dev/null; }
show_logs() {
  local f
  for f in "$WORK/$1.out" "$WORK/$1.err"; do
    [[ -s $f ]] && { echo "--- $f (tail)"; tail -n 15 "$f"; }
  done >&2
  return 0
}

# N distinct free loopback ports, held open together while the kernel picks them.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
# Is something listening on 127.0.0.1:PORT (or 0.0.0.0:PORT)? Read from /proc, no connect.
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  grep -qE "^ *[0-9]+: (0100007F|00000000):$hex 00000000:0000 0A " /proc/net/tcp
}
wait_listening() { # NAME PORT
  for _ in $(seq 100); do
    listening "$2" && return 0
    alive "$1" || break
    sleep 0.1
  done
  log "$1 did not start listening on 127.0.0.1:$2"; show_logs "$1"; return 1
}
wait_deskrelay() { # NAME: the contract is "listening on ADDR" on stdout once every shard accepts
  for _ in $(seq 200); do
    grep -q '^listening on ' "$WORK/$1.out" 2>/dev/null && return 0
    alive "$1" || break
    sleep 0.1
  done
  log "$1 did not report 'listening on'"; show_logs "$1"; return 1
}

# CPU time (clock ticks) of a process group: live members plus reaped children (socat forks).
CLK_TCK=$(getconf CLK_TCK)
group_ticks() {
  local pgid=$1 total=0 f rest
  local -a x
  for f in /proc/[0-9]*/stat; do
    { rest=$(<"$f"); } 2>/dev/null || continue
    rest=${rest##*) }           # fields from 3 (state) on; comm may hold spaces
    read -r -a x <<<"$rest"
    # x[2]=pgrp, x[11..14]=utime stime cutime cstime
    [[ ${x[2]} == "$pgid" ]] && total=$((total + x[11] + x[12] + x[13] + x[14]))
  done
  echo "$total"
}

# ---------------------------------------------------------------- start the peers
read -r IPERF_PORT P_COPY P_SPLICE P_AUTO P_HAPROXY P_SOCAT <<<"$(free_ports 6)"
declare -A PORT=([direct]=$IPERF_PORT [deskrelay-copy]=$P_COPY [deskrelay-splice]=$P_SPLICE
                 [deskrelay-auto]=$P_AUTO [haproxy]=$P_HAPROXY [socat]=$P_SOCAT)
declare -A READY=()
FAILED=0

start_iperf() {
  start iperf3-server iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" --rcv-timeout 10000
  wait_listening iperf3-server "$IPERF_PORT"
}
start_iperf || { log "iperf3 server failed to start"; exit 1; }
READY[direct]=1

for mode in copy splice auto; do
  name=deskrelay-$mode
  selected "$name" || continue
  start "$name" "$DESKRELAY_BIN" proxy --bind "127.0.0.1:${PORT[$name]}" \
    --forward "127.0.0.1:$IPERF_PORT" --data-path "$mode" ${SHARDS:+--shards "$SHARDS"}
  if wait_deskrelay "$name"; then READY[$name]=1; else FAILED=1; fi
done

# haproxy wants about 2.5 descriptors per maxconn (two sockets, plus a pipe pair for a quarter
# of them with splice) and refuses to start if that exceeds ulimit -n.
HAPROXY_MAXCONN=$(( (NOFILE - 200) * 2 / 5 ))
((HAPROXY_MAXCONN > 10000)) && HAPROXY_MAXCONN=10000
if selected haproxy; then
  cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn $HAPROXY_MAXCONN
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option splice-auto
frontend f
    bind 127.0.0.1:$P_HAPROXY
    default_backend b
backend b
    server s1 127.0.0.1:$IPERF_PORT
EOF
  haproxy -c -q -f "$WORK/haproxy.cfg" || { log "haproxy rejected its config"; exit 1; }
  start haproxy haproxy -db -f "$WORK/haproxy.cfg"
  if wait_listening haproxy "$P_HAPROXY"; then READY[haproxy]=1; else FAILED=1; fi
fi
if selected socat; then
  start socat socat "TCP-LISTEN:$P_SOCAT,bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$IPERF_PORT"
  if wait_listening socat "$P_SOCAT"; then READY[socat]=1; else FAILED=1; fi
fi

# ---------------------------------------------------------------- the runs
CASES=()                      # target:direction
for t in "${ALL_TARGETS[@]}"; do selected "$t" && CASES+=("$t:forward"); done
for t in "${ALL_TARGETS[@]}"; do
  selected "$t" || continue
  case $REVERSE in
    all) CASES+=("$t:reverse") ;;
    key) [[ $t == direct || $t == deskrelay-auto || $t == haproxy ]] && CASES+=("$t:reverse") ;;
  esac
done
RAW="$BENCH_OUT/relay_peers.raw"
rm -rf "$RAW"; mkdir -p "$RAW"
CSV="$WORK/samples.csv"
echo "round,seq,target,direction,port,status,recv_gbps,sent_gbps,retransmits,relay_cpu_pct,wall_s" >"$CSV"

ncases=${#CASES[@]}
log "iperf3 server on 127.0.0.1:$IPERF_PORT; ${ncases} cases x $ROUNDS rounds x ${DURATION}s, $PARALLEL stream(s)"
for t in "${SELECTED[@]}"; do
  log "  $(printf '%-16s' "$t") 127.0.0.1:${PORT[$t]}$([[ -n ${READY[$t]:-} ]] || echo '  NOT RUNNING')"
done

seq_no=0
for ((round = 1; round <= ROUNDS; round++)); do
  for ((i = 0; i < ncases; i++)); do
    # Rotate: round r starts (r-1) cases further on, so no target always runs first.
    c=${CASES[$(( (i + round - 1) % ncases ))]}
    target=${c%%:*} dir=${c##*:}
    seq_no=$((seq_no + 1))
    port=${PORT[$target]}
    raw="$RAW/r${round}_${target}_${dir}.json"
    status=ok recv= sent= retr= cpu=
    if [[ -z ${READY[$target]:-} ]]; then
      status=not-running
    else
      relay_pid=
      [[ $target != direct ]] && relay_pid=${PID[$target]}
      if [[ -n $relay_pid ]] && ! alive "$target"; then
        log "$target has exited"; show_logs "$target"; unset "READY[$target]"; status=relay-died
      fi
    fi
    if [[ $status == ok ]]; then
      args=(-c 127.0.0.1 -p "$port" -t "$DURATION" -P "$PARALLEL" -J --connect-timeout 3000)
      [[ $dir == reverse ]] && args+=(-R)
      t0=$(date +%s.%N)
      [[ -n $relay_pid ]] && c0=$(group_ticks "$relay_pid")
      rc=0
      # In the background and waited for: a trapped INT/TERM interrupts `wait` at once (a
      # foreground iperf3 would swallow Ctrl-C and the script would carry on). `timeout` leads
      # its own process group, so cleanup can kill the client with it.
      timeout -k 5 $((DURATION + 20)) iperf3 "${args[@]}" >"$raw" 2>"$raw.err" </dev/null &
      PID[iperf3-client]=$!
      wait "${PID[iperf3-client]}" || rc=$?
      unset "PID[iperf3-client]"
      [[ -n $relay_pid ]] && c1=$(group_ticks "$relay_pid")
      t1=$(date +%s.%N)
      wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
      [[ -n $relay_pid ]] && cpu=$(awk -v a="$c0" -v b="$c1" -v w="$wall" -v hz="$CLK_TCK" \
        'BEGIN { printf "%.0f", (b - a) / hz / w * 100 }')
      read -r status recv sent retr < <(python3 - "$raw" "$rc" <<'PY'
import json, sys
path, rc = sys.argv[1], int(sys.argv[2])
try:
    d = json.load(open(path))
except Exception:
    print("timeout" if rc in (124, 137) else f"no-json(rc={rc})", "", "", ""); sys.exit()
if rc in (124, 137):
    print("timeout", "", "", ""); sys.exit()
if "error" in d:
    print("iperf3-error", "", "", ""); sys.exit()
e = d["end"]
recv = e["sum_received"]["bits_per_second"] / 1e9
sent = e["sum_sent"]["bits_per_second"] / 1e9
print("ok", f"{recv:.3f}", f"{sent:.3f}", e["sum_sent"].get("retransmits", ""))
PY
)
      if [[ $status != ok ]]; then
        log "run failed: $target $dir: $status $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error",""))' "$raw" 2>/dev/null || true)"
        [[ -s $raw.err ]] && tail -n 5 "$raw.err" >&2
        # A client that died mid-test can leave the (one-test-at-a-time) server busy.
        stop iperf3-server; start_iperf || { log "iperf3 server failed to restart"; exit 1; }
      fi
    else
      wall=0
    fi
    [[ $status == ok ]] || FAILED=1
    printf '[relay_peers] round %d/%d  %-16s %-7s %8s Gbit/s  relay cpu %4s%%  %s\n' \
      "$round" "$ROUNDS" "$target" "$dir" "${recv:--}" "${cpu:--}" "$status" >&2
    echo "$round,$seq_no,$target,$dir,$port,$status,$recv,$sent,$retr,$cpu,$wall" >>"$CSV"
    sleep 0.5   # let the loopback and the CPUs settle between runs
  done
done

# ---------------------------------------------------------------- report
cp "$CSV" "$BENCH_OUT/relay_peers.csv"
META=$(python3 - <<PY
import json, os, platform, subprocess
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except Exception:
        return "?"
print(json.dumps({
    "date_utc": out("date", "-u", "+%Y-%m-%dT%H:%M:%SZ"),
    "kernel": platform.release(),
    "cpus": os.cpu_count(),
    "git_rev": out("git", "-C", "$REPO", "describe", "--always", "--dirty"),
    "iperf3": out("iperf3", "--version"),
    "haproxy": out("haproxy", "-v"),
    "socat": [l for l in subprocess.run(["socat", "-V"], capture_output=True, text=True).stdout.splitlines() if "version" in l][:1],
    "duration_s": $DURATION, "rounds": $ROUNDS, "parallel": $PARALLEL,
    "reverse": "$REVERSE", "shards": "${SHARDS:-default}",
    "haproxy_maxconn": $HAPROXY_MAXCONN,
}))
PY
)
python3 benches/relay_peers_report.py --csv "$BENCH_OUT/relay_peers.csv" --meta "$META" \
  --md "$BENCH_OUT/relay_peers.md" --json "$BENCH_OUT/relay_peers.json"
log "wrote $BENCH_OUT/relay_peers.md, relay_peers.json, relay_peers.csv (raw iperf3 JSON: $RAW/)"

if [[ $MODE == all ]]; then
  cleanup; trap - EXIT
  python3 benches/idle_sessions.py --sessions "$SESSIONS" --deskrelay "$DESKRELAY_BIN" \
    ${SHARDS:+--shards "$SHARDS"} --out "$BENCH_OUT" || FAILED=1
fi
exit "$FAILED"
