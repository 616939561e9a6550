#!/usr/bin/env bash
# Fuzzes the network-facing parsers (fuzz/, see fuzz/README.md) with cargo fuzz and libFuzzer.
#
#   scripts/fuzz.sh [run|smoke|replay] [TARGET...]
#
#   run     each target for FUZZ_SECS seconds (default 30), corpus kept in fuzz/corpus/
#   smoke   each target for 5 seconds: a quick check for CI
#   replay  every committed input (fuzz/seeds/, fuzz/regressions/) once, no fuzzing
#
# Environment: FUZZ_SECS (run), FUZZ_SANITIZER (address, the default, or none),
# FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2" or "-seed=1").
#
# The machine has the stable toolchain only. cargo fuzz asks rustc for nightly flags
# (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets stable accept them. When a sanitizer build
# still fails, the targets are built with `-s none` (no -Z flag at all) instead.
#
# Prints executions, exec/s, coverage and findings per target; exits non-zero when a target
# crashed, timed out or ran out of memory (its input is in fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
case $mode in
  run | smoke | replay) shift || true ;;
  -h | --help)
    sed -n '2,18p' "$0"
    exit 0
    ;;
  *) mode=run ;;
esac
case $mode in
  smoke) secs=5 ;;
  *) secs=${FUZZ_SECS:-30} ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --quiet
fi

export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
if ! cargo fuzz build -s "$sanitizer" >"$build_log" 2>&1; then
  if [[ $sanitizer == none ]]; then
    cat "$build_log" >&2
    exit 1
  fi
  echo "build with -s $sanitizer failed; building without a sanitizer" >&2
  tail -5 "$build_log" >&2
  sanitizer=none
  cargo fuzz build -s none >"$build_log" 2>&1 || {
    cat "$build_log" >&2
    exit 1
  }
fi

host=$(rustc -vV | sed -n 's/^host: //p')
targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(cargo fuzz list)

# Inputs longer than libFuzzer's default 4096 bytes: the captured xpra hellos are 22-40 KiB.
max_len() {
  case $1 in
    xpra_frame | xpra_gate) echo 65536 ;;
    *) echo 4096 ;;
  esac
}

logs=fuzz/artifacts/logs
mkdir -p "$logs"
failed=()
printf '%-14s %12s %9s %7s %8s %8s  %s\n' target execs exec/s cov ft corpus findings
for t in "${targets[@]}"; do
  artifacts=fuzz/artifacts/$t
  mkdir -p "$artifacts" "fuzz/corpus/$t"
  before=$(ls "$artifacts")
  log=$logs/$t.log
  common=(-s "$sanitizer" "$t")
  flags=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
  # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
  flags+=(${FUZZ_ARGS:-})
  status=0
  if [[ $mode == replay ]]; then
    inputs=()
    for d in "fuzz/seeds/$t" "fuzz/regressions/$t"; do
      [[ -d $d ]] && inputs+=("$d"/*)
    done
    ((${#inputs[@]})) || continue
    # The binary itself: given files, libFuzzer runs each once (cargo fuzz would add a
    # corpus directory, and libFuzzer would then take every argument for one).
    "fuzz/target/$host/release/$t" "${flags[@]}" -artifact_prefix="$artifacts/" \
      "${inputs[@]}" >"$log" 2>&1 || status=$?
  else
    cargo fuzz run "${common[@]}" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
      "${flags[@]}" -max_len="$(max_len "$t")" -max_total_time="$secs" >"$log" 2>&1 || status=$?
  fi
  final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  last=$(grep -E '^#[0-9]+\s+(DONE|INITED|pulse|NEW|REDUCE)' "$log" | tail -1 || true)
  field() { sed -n "s/.* $1: \([^ ]*\).*/\1/p" <<<"$last"; }
  new=$(comm -13 <(echo "$before") <(ls "$artifacts") | grep -E '^(crash|timeout|oom|leak)-' || true)
  findings=${new:+$(tr '\n' ' ' <<<"$new")}
  if ((status != 0)) && [[ -z $findings ]]; then
    findings="exit $status, see $log"
  fi
  printf '%-14s %12s %9s %7s %8s %8s  %s\n' "$t" "$(final_stat number_of_executed_units)" \
    "$(final_stat average_exec_per_sec)" "$(field cov)" "$(field ft)" "$(field corp)" "${findings:-none}"
  if ((status != 0)) || [[ -n $new ]]; then
    failed+=("$t")
    grep -m1 -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer' "$log" | sed 's/^/    /' || true
  fi
done
echo "logs: $logs/; sanitizer: $sanitizer"
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; reproduce with" \
    "RUSTC_BOOTSTRAP=1 cargo fuzz run -s $sanitizer <target> <input>)" >&2
  exit 1
fi
