#!/usr/bin/env bash
# The project's test command (README "Quick start", called by .ci/run).
# Installs what the tests need on a fresh Debian machine, then runs format, lint and tests.
# Idempotent, and quiet unless something fails.
# Tests run against release builds: they push 256 MiB streams through the relay.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages of the real peers the integration tests start. A package is installed only
# when what the tests use from it is missing, so a prepared machine runs no apt at all.
# Commands (command -> package):
declare -A peers=(
  [xpra]=xpra          # xpra 3.1.3 server and client (tests/common/xpra.rs)
  [Xvfb]=xvfb          # headless X servers for xpra sessions and clients
  [xclock]=x11-apps    # the application the xpra sessions run
  [xdpyinfo]=x11-utils # display readiness
  [xwininfo]=x11-utils # what the client shows
  [xauth]=xauth
  [chromium]=chromium  # headless browser for the web tests (tests/common/browser.rs)
  [chromedriver]=chromium-driver # drives it over WebDriver; same version as the browser
)
# Python modules of the system python3 (/usr/bin/python3: xpra and the test helpers) (module -> package):
declare -A py_modules=(
  [PIL]=python3-pil            # xpra's image codecs; screen grabs in the tests
  [lz4]=python3-lz4            # the lz4 packet compression real clients negotiate
  [gi_cairo]=python3-gi-cairo  # without it the client maps windows but never paints them
  [selenium]=python3-selenium  # drives chromedriver (tests/common/browser/driver.py)
  [websockets]=python3-websockets # an independent WebSocket client (browser/ws_client.py)
  [prometheus_client]=python3-prometheus-client # an independent parser of /metrics (tests/metrics.rs)
)
missing=()
for cmd in "${!peers[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${peers[$cmd]}")
done
for mod in "${!py_modules[@]}"; do
  case $mod in
    gi_cairo) check="import gi; gi.require_foreign('cairo')" ;;
    *) check="import $mod" ;;
  esac
  /usr/bin/python3 -c "$check" >/dev/null 2>&1 || missing+=("${py_modules[$mod]}")
done
if ((${#missing[@]})); then
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  apt_log=$(mktemp)
  install() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "$@" >>"$apt_log" 2>&1
  }
  # Try the cached package lists first; refresh them only when that fails.
  if ! install "${missing[@]}"; then
    "${sudo[@]}" apt-get update -qq >>"$apt_log" 2>&1 && install "${missing[@]}" || {
      cat "$apt_log" >&2
      echo "could not install: ${missing[*]}" >&2
      exit 1
    }
  fi
  rm -f "$apt_log"
fi

ulimit -n 20000 2>/dev/null || true
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
