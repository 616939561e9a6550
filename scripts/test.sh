#!/usr/bin/env bash
# The project's test command (README "Quick start", called by .ci/run).
# Installs what the tests need on a fresh Debian machine, then runs format, lint and tests.
# Tests run against release builds: they push 256 MiB streams through the relay.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages of the real peers the integration tests start (command -> package).
# The engine tests use only the toolchain and loopback sockets; later capabilities add
# their peers here (xpra, haproxy, chromium, ...).
declare -A peers=()
missing=()
for cmd in "${!peers[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${peers[$cmd]}")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

ulimit -n 20000 2>/dev/null || true
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
