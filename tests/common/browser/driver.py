#!/usr/bin/python3
"""Headless Chromium for the deskrelay tests, driven through Debian's chromedriver with
Debian's python3-selenium.

Started by tests/common/browser.rs, one process per Browser. It opens the browser with a
WIDTHxHEIGHT page, prints one `ok` line (hex of `{"browserVersion": .., "viewport": [W, H]}`),
then answers one request line at a time on stdin:

    VERB<TAB>HEXARG<TAB>HEXARG...      ->   ok<TAB>HEXRESULT   or   err<TAB>HEXMESSAGE

Arguments and results are the hex of their UTF-8 bytes, so nothing needs quoting and the Rust
side needs no JSON parser. Verbs:

    get URL                  navigate (bounded by the page load timeout)
    eval JS                  run `return (JS)`; a string result as is, anything else as JSON
    wait JS TIMEOUT_S        poll `!!(JS)` every 100 ms until true; err with the last value
    screenshot PATH          PNG of the viewport
    console                  every browser console line so far (kept, not drained)
    quit                     close the browser and chromedriver, then exit

End of input (the test process died) quits too. Everything the helper itself has to say goes
to stderr, which the Rust side keeps for failure messages.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback


def log(*args):
    print("driver.py:", *args, file=sys.stderr, flush=True)


def reply(ok, text):
    data = (text if isinstance(text, str) else str(text)).encode("utf-8", "replace").hex()
    sys.stdout.write(("ok\t" if ok else "err\t") + data + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--profile", required=True, help="fresh --user-data-dir")
    ap.add_argument("--driver-log", required=True)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--timeout", type=float, default=60.0, help="page load / script timeout")
    args = ap.parse_args()

    # A SIGTERM from the test harness closes the browser like `quit` does.
    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)

    # If the test process dies (a SIGKILL, an abort) while this helper is busy, nobody reads
    # its answers and end of input comes too late or never: take the whole process group
    # (chromedriver, Chromium) down as soon as the parent is gone. Only as the leader of a
    # group of its own, as the Rust side starts it.
    parent = os.getppid()
    if os.getpgid(0) == os.getpid():

        def watchdog():
            while True:
                time.sleep(0.5)
                if os.getppid() != parent:
                    log("the test process is gone; killing the browser")
                    os.killpg(0, signal.SIGKILL)

        threading.Thread(target=watchdog, daemon=True).start()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = args.chromium
    for flag in [
        # How Chromium runs on these machines (no sandbox as root, no GPU, closed network:
        # without the background-networking flags it keeps dialling Google's hosts).
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Not --disable-crashpad-for-testing: it would spare the crash handler process, but
        # Chromium's network service then crashes in a loop ("Crashing due to FD ownership
        # violation", "Network service crashed or was terminated, restarting service") and
        # pages never finish loading.
        "--disable-extensions",
        "--disable-default-apps",
        "--disable-features=Translate,MediaRouter,OptimizationHints",
        "--password-store=basic",
        "--use-mock-keychain",
        # Background tabs and timers must not be throttled: the page is never "visible".
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        "--mute-audio",
        # The wss:// tests serve a self-signed certificate made by the test (rcgen) on
        # 127.0.0.1; this browser only ever opens loopback pages.
        "--ignore-certificate-errors",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=%d,%d" % (args.width, args.height),
        "--user-data-dir=" + args.profile,
    ]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.set_capability("pageLoadStrategy", "normal")

    # --enable-chrome-logs: Chromium's own stderr lands in the chromedriver log too.
    service = Service(executable_path=args.chromedriver, log_path=args.driver_log,
                      service_args=["--enable-chrome-logs"])
    started = time.monotonic()
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(args.timeout)
    driver.set_script_timeout(args.timeout)
    # --window-size is the outer size: headless Chromium still reserves room for a tab strip
    # and toolbar (1280x800 gives a 1280x657 page). Grow the window by that much so the page,
    # and so every screenshot, is exactly WIDTHxHEIGHT.
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if inner != [args.width, args.height]:
        outer = driver.get_window_size()
        driver.set_window_size(outer["width"] + args.width - inner[0],
                               outer["height"] + args.height - inner[1])
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        if inner != [args.width, args.height]:
            log("viewport is %dx%d, not %dx%d" % (inner[0], inner[1], args.width, args.height))
    version = driver.capabilities.get("browserVersion", "?")
    log("chromium %s started in %.2fs" % (version, time.monotonic() - started))

    console = []

    def drain_console():
        try:
            for entry in driver.get_log("browser"):
                console.append("%s %s" % (entry.get("level", "?"), entry.get("message", "")))
        except Exception as e:  # the log is best effort; a dead page must not hide the cause
            console.append("(console unavailable: %s)" % e)

    def to_text(value):
        return value if isinstance(value, str) else json.dumps(value)

    reply(True, json.dumps({"browserVersion": version, "viewport": inner}))
    try:
        for line in sys.stdin:
            parts = line.rstrip("\n").split("\t")
            verb, argv = parts[0], [bytes.fromhex(p).decode("utf-8") for p in parts[1:]]
            try:
                if verb == "get":
                    driver.get(argv[0])
                    reply(True, driver.current_url)
                elif verb == "eval":
                    reply(True, to_text(driver.execute_script("return (%s);" % argv[0])))
                elif verb == "wait":
                    expr, deadline = argv[0], time.monotonic() + float(argv[1])
                    last = None
                    while True:
                        try:
                            last = driver.execute_script("return !!(%s);" % expr)
                        except Exception as e:
                            last = "exception: %s" % str(e).strip().splitlines()[0]
                        if last is True:
                            reply(True, "true")
                            break
                        if time.monotonic() >= deadline:
                            shown = expr if len(expr) <= 160 else expr[:150] + "..."
                            reply(False, "timed out after %ss waiting for %s (last: %s)"
                                  % (argv[1], shown, last))
                            break
                        time.sleep(0.1)
                elif verb == "screenshot":
                    if not driver.save_screenshot(argv[0]):
                        raise RuntimeError("screenshot failed")
                    reply(True, argv[0])
                elif verb == "console":
                    drain_console()
                    reply(True, "\n".join(console))
                elif verb == "quit":
                    break
                else:
                    reply(False, "unknown verb %r" % verb)
            except Exception as e:
                reply(False, "%s: %s" % (type(e).__name__, str(e).strip()))
    finally:
        try:
            driver.quit()
        except Exception:
            log("quit failed:", traceback.format_exc())
        log("browser closed")


if __name__ == "__main__":
    main()
