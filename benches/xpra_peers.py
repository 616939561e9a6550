"""benches/xpra_peers.py: real xpra 3.1.3 peers for the xpra benchmarks (Python 3 stdlib only).

Imported by benches/xpra_session_start.py and benches/xpra_proxy_memory.py; not run by itself.

It starts, on loopback only and each in a process group of its own:
  - an `xpra start` server running xclock on its own Xvfb,
  - deskrelay as an xpra proxy (`deskrelay proxy --bind 127.0.0.1:0 --auth multifile:PATH`),
  - xpra's own proxy (`xpra proxy :N --bind-tcp=... --tcp-auth=multifile:filename=PATH`),
  - `xpra attach` clients, each on a fresh Xvfb display of its own,
with the same hermetic flags as the Rust test harness (tests/common/xpra/): no system or user
xpra.conf (XPRA_SYSTEM_CONF_DIRS / XPRA_USER_CONF_DIRS point at an empty dir), a private HOME,
XDG_RUNTIME_DIR and XAUTHORITY per program, private socket dirs, no mDNS, audio, D-Bus,
systemd, HTML5, printing, tray, mmap or SSL, and challenge handlers that never prompt.

Cleanup: every process started here carries DESKRELAY_BENCH_TAG=<run tag> in its environment
(xpra hands its environment to the Xvfb and the child it starts, and to the proxy instances
it forks). `Peers.close()` stops what it started (SIGTERM to the leader, then SIGKILL to its
group) and then SIGKILLs any process still carrying the run's tag, which catches the Xvfb
that xpra runs in a session of its own. The scripts call it from `finally`, and SIGTERM /
SIGHUP are turned into an exception so that path runs on those too (Ctrl-C already is one).
"""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TAG_VAR = "DESKRELAY_BENCH_TAG"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DESKRELAY = os.path.join(REPO, "target", "release", "deskrelay")

# How long anything xpra does once (start, attach) may take on a loaded two-core machine.
STARTUP_S = 90.0

# `xpra start` flags of tests/common/xpra/server.rs (server_flags).
SERVER_FLAGS = [
    "--daemon=no",
    "--exit-with-children=no",
    "--mdns=no",
    "--pulseaudio=no",
    "--speaker=no",
    "--microphone=no",
    "--webcam=no",
    "--notifications=no",
    "--dbus-proxy=no",
    "--dbus-control=no",
    "--dbus-launch=",
    "--systemd-run=no",
    "--html=off",
    "--printing=no",
    "--file-transfer=no",
    "--open-files=no",
    "--open-url=no",
    "--tray=no",
    "--system-tray=no",
    "--mmap=no",
    "--opengl=no",
    "--ssl=off",
    "--ssh-upgrade=no",
    "--rfb-upgrade=0",
    "--start-via-proxy=no",
]
SERVER_XVFB = ("--xvfb=Xvfb +extension Composite -screen 0 1024x768x24+32 -dpi 96 "
               "-nolisten tcp -noreset -auth $XAUTHORITY")

# `xpra attach` flags of tests/common/xpra/client.rs (client_flags).
CLIENT_FLAGS = [
    "--speaker=no",
    "--microphone=no",
    "--webcam=no",
    "--tray=no",
    "--system-tray=no",
    "--notifications=no",
    "--opengl=no",
    "--mmap=no",
    "--printing=no",
    "--file-transfer=no",
    "--open-files=no",
    "--open-url=no",
    "--bell=no",
    "--challenge-handlers=uri",
    "--challenge-handlers=file",
    "--challenge-handlers=env",
]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


class Terminated(BaseException):
    """Raised by the SIGTERM / SIGHUP handler so that `finally` blocks run."""


def install_signal_handlers():
    """SIGTERM / SIGHUP raise Terminated; SIGINT raises KeyboardInterrupt even when the script
    was started in the background by a shell that set it to be ignored."""
    def handler(signum, _frame):
        raise Terminated(signal.Signals(signum).name)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def read_text(path, default=""):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return default


def tail(text, n=40):
    return "\n".join(text.splitlines()[-n:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def display_in_use(n):
    return os.path.exists(f"/tmp/.X11-unix/X{n}") or os.path.exists(f"/tmp/.X{n}-lock")


_next_display = [0]


def free_display():
    """A display number no socket or lock file claims; away from the tests' range."""
    base = 3000 + (os.getpid() % 400) * 16
    while True:
        n = base + _next_display[0] % 6000
        _next_display[0] += 1
        if not display_in_use(n):
            return n


def has_exited(pid):
    """Whether our child `pid` has exited, without reaping it (its pid and group stay ours)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None and info.si_pid != 0


def run_bounded(argv, timeout, env=None):
    """(exit code, stdout, stderr) of `argv`, killed (whole group) after `timeout` seconds."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        return None, "", f"timed out after {timeout} s"
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        raise
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# /proc: process trees and their memory


def ppid_map():
    """pid -> ppid for every live process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        out[int(name)] = int(fields[1])
    return out


def tree_pids(root):
    """`root` and all its live descendants."""
    parents = ppid_map()
    if root not in parents:
        return []
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


def status_kib(pid, field):
    for line in read_text(f"/proc/{pid}/status").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def pss_kib(pid):
    for line in read_text(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def tree_memory(root):
    """{'pids', 'rss_kib' (sum of VmRSS), 'pss_kib' (sum of Pss), 'root_rss_kib' (root's VmRSS)}."""
    pids = tree_pids(root)
    return {
        "pids": len(pids),
        "rss_kib": sum(status_kib(p, "VmRSS") for p in pids),
        "pss_kib": sum(pss_kib(p) for p in pids),
        "root_rss_kib": status_kib(root, "VmRSS"),
    }


def sampled_tree_memory(root, samples=5, every=0.2):
    """The median of `samples` readings of tree_memory(root), field by field."""
    reads = []
    for i in range(samples):
        if i:
            time.sleep(every)
        reads.append(tree_memory(root))
    return {k: int(statistics.median(r[k] for r in reads)) for k in reads[0]}


def tagged_pids(tag):
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(name))
    return found


# ---------------------------------------------------------------------------------------------
# Processes


class Proc:
    """A child started as the leader of a session (and process group) of its own, stdin from
    /dev/null, stdout and stderr appended to `log_path`."""

    def __init__(self, name, argv, env, log_path, cwd=None):
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as out:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                          start_new_session=True)
        self.pid = self.popen.pid
        self.started = time.monotonic()
        self.returncode = None

    def exited(self):
        return self.returncode is not None or has_exited(self.pid)

    def output(self):
        return read_text(self.log_path)

    def stop(self, sig=signal.SIGTERM, grace=10.0):
        """Sends `sig` to the leader (xpra cleans up after its children on SIGTERM), waits up to
        `grace` s, SIGKILLs what is left of its group, then reaps the leader (last, so the
        group id cannot have been reused when it is killed). Idempotent; returns the exit code."""
        if self.returncode is not None:
            return self.returncode
        if not has_exited(self.pid):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace
            while not has_exited(self.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.returncode = self.popen.wait()
        return self.returncode


class Scratch:
    """A private directory for one program, and the hermetic environment that points xpra at it."""

    def __init__(self, root, name):
        self.path = os.path.join(root, name)
        os.makedirs(os.path.join(self.path, "conf"))
        os.makedirs(os.path.join(self.path, "run"))
        open(os.path.join(self.path, "Xauthority"), "wb").close()

    def file(self, name):
        return os.path.join(self.path, name)

    def write_secret(self, name, contents):
        path = self.file(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(contents)
        os.chmod(path, 0o600)
        return path

    def env(self, tag, display=None):
        env = dict(os.environ)
        for k in ("DISPLAY", "XPRA_PASSWORD", "PYTHONPATH", "PYTHONHOME",
                  "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
            env.pop(k, None)
        env.update({
            "HOME": self.path,
            "XDG_RUNTIME_DIR": self.file("run"),
            "XAUTHORITY": self.file("Xauthority"),
            "XPRA_SYSTEM_CONF_DIRS": self.file("conf"),
            "XPRA_USER_CONF_DIRS": self.file("conf"),
            TAG_VAR: tag,
        })
        if display is not None:
            env["DISPLAY"] = display
        return env


# ---------------------------------------------------------------------------------------------
# X displays


def window_lines(display):
    """(id, title, instance, width) for each window `xwininfo -root -tree` lists."""
    code, out, _ = run_bounded(["xwininfo", "-root", "-tree", "-display", display], 15)
    if code != 0:
        return []
    wins = []
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("0x"):
            continue
        wid, _, rest = line.partition(" ")
        title = ""
        if rest.startswith('"'):
            end = rest.find('": ')
            if end < 0:
                continue
            title, rest = rest[1:end], rest[end + 3:]
        else:
            rest = rest.partition(": ")[2]
        instance = ""
        if rest.startswith('("'):
            end = rest.find(")")
            instance = rest[2:end].split('" "')[0].strip('"')
            rest = rest[end + 1:]
        else:
            rest = rest.partition(")")[2]
        geometry = rest.split()[0] if rest.split() else ""
        try:
            width = int(geometry.split("x")[0])
        except ValueError:
            continue
        wins.append((wid, title, instance, width))
    return wins


def is_viewable(display, wid):
    code, out, _ = run_bounded(["xwininfo", "-id", wid, "-display", display], 15)
    return code == 0 and "Map State: IsViewable" in out


def display_answers(n):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(f"/tmp/.X11-unix/X{n}")
    except OSError:
        return False
    code, _, _ = run_bounded(["xdpyinfo", "-display", f":{n}"], 10)
    return code == 0


# ---------------------------------------------------------------------------------------------
# The peers


def git_describe():
    code, out, _ = run_bounded(["git", "-C", REPO, "describe", "--always", "--dirty"], 10)
    return out.strip() if code == 0 else "unknown"


def xpra_version():
    code, out, _ = run_bounded(["xpra", "--version"], 30)
    return out.strip() if code == 0 else "unknown"


class Peers:
    """Everything one benchmark run starts; `close()` stops all of it."""

    def __init__(self, keep=False):
        self.tag = f"xpra-bench-{os.getpid()}-{int(time.time())}"
        self.root = tempfile.mkdtemp(prefix="deskrelay-xpra-bench-")
        # The xpra proxy's instances run as the multifile's uid (not root): they must reach
        # their socket dir under here.
        os.chmod(self.root, 0o755)
        self.keep = keep
        self.procs = []
        self.xvfb_pids = []
        self.count = 0

    def _scratch(self, kind):
        self.count += 1
        return Scratch(self.root, f"{kind}-{self.count}")

    def _spawn(self, name, argv, scratch, display=None, log_name="out.log"):
        proc = Proc(name, argv, scratch.env(self.tag, display), scratch.file(log_name),
                    cwd=scratch.path)
        self.procs.append(proc)
        return proc

    def forget(self, proc):
        if proc in self.procs:
            self.procs.remove(proc)

    # -- Xvfb for a client ----------------------------------------------------------------

    def start_xvfb(self):
        last = ""
        for _ in range(3):
            n = free_display()
            scratch = self._scratch("xvfb")
            proc = self._spawn(f"Xvfb :{n}", ["Xvfb", f":{n}", "-screen", "0", "1024x768x24",
                                             "-nolisten", "tcp", "-noreset"], scratch)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if proc.exited():
                    break
                if display_answers(n):
                    proc.display = f":{n}"
                    return proc
                time.sleep(0.05)
            last = proc.output()
            self.stop(proc, grace=0, sig=signal.SIGKILL)
        raise BenchError(f"Xvfb did not start:\n{tail(last)}")

    # -- xpra server ----------------------------------------------------------------------

    def start_server(self, password=None, extra_args=()):
        last = ""
        for _ in range(3):
            n, port = free_display(), free_port()
            scratch = self._scratch("server")
            argv = ["xpra", "start", f":{n}", f"--bind-tcp=127.0.0.1:{port}",
                    "--start-child=xclock", *SERVER_FLAGS, SERVER_XVFB,
                    f"--socket-dir={scratch.file('run')}", f"--socket-dirs={scratch.file('run')}",
                    f"--log-dir={scratch.path}"]
            pwfile = None
            if password:
                argv.append(f"--tcp-auth=password:value={password}")
                pwfile = scratch.write_secret("password", password)
            argv += list(extra_args)
            proc = self._spawn(f"xpra server :{n}", argv, scratch)
            proc.display, proc.port, proc.password = f":{n}", port, password
            proc.uri = f"tcp://127.0.0.1:{port}/"
            try:
                self._wait_server_ready(proc, scratch, pwfile)
                try:
                    proc.xvfb_pid = int(read_text(f"/tmp/.X{n}-lock").strip())
                    self.xvfb_pids.append((proc.xvfb_pid, n))
                except ValueError:
                    proc.xvfb_pid = None
                return proc
            except BenchError as e:
                last = str(e)
                self.stop(proc)
        raise BenchError(f"xpra server did not start:\n{last}")

    def _wait_server_ready(self, proc, scratch, pwfile):
        deadline = time.monotonic() + STARTUP_S
        probe = ""
        while time.monotonic() < deadline:
            if proc.exited():
                raise BenchError(f"exited early:\n{tail(proc.output())}")
            if "xpra is ready." in proc.output() and port_accepts(proc.port):
                argv = ["xpra", "version", proc.uri]
                if pwfile:
                    argv.append(f"--password-file={pwfile}")
                code, out, err = run_bounded(argv, 30, env=scratch.env(self.tag))
                if code == 0 and "." in out:
                    return
                probe = f"version: {code} {out}{err}"
            time.sleep(0.1)
        raise BenchError(f"not ready after {STARTUP_S} s ({probe}):\n{tail(proc.output())}")

    # -- the multifile both proxies read ----------------------------------------------------

    def write_multifile(self, users):
        """users: [(name, password, uid, gid, session_uri)] -> path of a 0600 multifile."""
        scratch = self._scratch("auth")
        lines = "".join(f"{u}|{p}|{uid}|{gid}|{uri}||\n" for u, p, uid, gid, uri in users)
        return scratch.write_secret("users", lines)

    # -- deskrelay ------------------------------------------------------------------------

    def start_deskrelay(self, binary, multifile, extra_args=()):
        if not os.access(binary, os.X_OK):
            raise BenchError(f"{binary} is not built (cargo build --release)")
        scratch = self._scratch("deskrelay")
        argv = [binary, "proxy", "--bind", "127.0.0.1:0", "--auth", f"multifile:{multifile}",
                *extra_args]
        proc = self._spawn("deskrelay", argv, scratch)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in proc.output().splitlines():
                if line.startswith("listening on "):
                    _, _, port = line[len("listening on "):].strip().rpartition(":")
                    proc.port = int(port)
                    return proc
            if proc.exited():
                break
            time.sleep(0.05)
        raise BenchError(f"deskrelay did not print `listening on`:\n{tail(proc.output())}")

    # -- xpra's own proxy -----------------------------------------------------------------

    def start_xpra_proxy(self, multifile, extra_args=()):
        """`xpra proxy` on a free loopback port with the multifile as its TCP auth.

        Running as root, 3.1.3 refuses to proxy a session whose multifile uid or gid is 0 and
        instead forks each proxy instance and setuid()s it to the multifile's uid/gid; the
        instance then creates its control socket (`:proxy-PID`) in --socket-dir, so that dir
        must be writable by that uid (mode 1777 here) and reachable (parents 0755)."""
        last = ""
        for _ in range(3):
            n, port = free_display(), free_port()
            scratch = self._scratch("xpra-proxy")
            os.chmod(scratch.path, 0o755)
            sockdir = scratch.file("proxy-run")
            os.makedirs(sockdir)
            os.chmod(sockdir, 0o1777)
            argv = ["xpra", "proxy", f":{n}", f"--bind-tcp=127.0.0.1:{port}",
                    f"--tcp-auth=multifile:filename={multifile}", *SERVER_FLAGS,
                    f"--socket-dir={sockdir}", f"--socket-dirs={sockdir}",
                    f"--log-dir={scratch.path}", *extra_args]
            proc = self._spawn(f"xpra proxy :{n}", argv, scratch)
            proc.port = port
            deadline = time.monotonic() + STARTUP_S
            while time.monotonic() < deadline:
                if proc.exited():
                    break
                if "xpra is ready." in proc.output() and port_accepts(port):
                    return proc
                time.sleep(0.1)
            last = proc.output()
            self.stop(proc)
        raise BenchError(f"xpra proxy did not start:\n{tail(last)}")

    # -- clients --------------------------------------------------------------------------

    def start_client(self, uri, password, xvfb, extra_args=()):
        """`xpra attach URI` on `xvfb`'s display; the returned proc's `started` is taken just
        before the spawn."""
        scratch = self._scratch("client")
        argv = ["xpra", "attach", uri, *CLIENT_FLAGS,
                f"--socket-dirs={scratch.file('run')}"]
        if password:
            argv.append(f"--password-file={scratch.write_secret('password', password)}")
        argv += list(extra_args)
        proc = self._spawn(f"xpra attach {uri}", argv, scratch, display=xvfb.display)
        proc.xvfb = xvfb
        return proc

    def wait_window(self, client, name="xclock", timeout=STARTUP_S, every=0.010):
        """Polls `xwininfo -root -tree` on the client's display every ~`every` s until a window
        titled *name* (or of WM_CLASS instance `name`) is there and viewable; returns the seconds
        since the client process was started."""
        display = client.xvfb.display
        deadline = client.started + timeout
        next_poll = time.monotonic()
        while True:
            if client.exited():
                raise BenchError(f"client exited before a {name} window appeared:\n"
                                 f"{tail(client.output())}")
            for wid, title, instance, width in window_lines(display):
                if width > 1 and (name in title or instance == name) and is_viewable(display, wid):
                    return time.monotonic() - client.started
            now = time.monotonic()
            if now >= deadline:
                raise BenchError(f"no {name} window on {display} after {timeout} s:\n"
                                 f"{tail(client.output())}")
            next_poll += every
            if next_poll > now:
                time.sleep(next_poll - now)
            else:
                next_poll = now

    def stop_client(self, client, grace=10.0):
        """SIGTERM (the client disconnects and exits), then its Xvfb. Returns the exit code."""
        code = self.stop(client, grace=grace)
        self.stop(client.xvfb, grace=5.0)
        return code

    # -- stopping -------------------------------------------------------------------------

    def stop(self, proc, grace=15.0, sig=signal.SIGTERM):
        code = proc.stop(sig, grace)
        self.forget(proc)
        return code

    def close(self):
        """Stops everything this run started, whatever state it is in."""
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for proc in reversed(list(self.procs)):
                try:
                    self.stop(proc, grace=10.0)
                except Exception as e:  # keep going: the sweep below catches what is left
                    log(f"cleanup: {proc.name}: {e}")
            # An xpra server that died hard leaves its Xvfb (own session) behind.
            for pid, n in self.xvfb_pids:
                if f":{n}".encode() in read_text(f"/proc/{pid}/cmdline").encode():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            deadline = time.monotonic() + 10
            while True:
                left = tagged_pids(self.tag)
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                if time.monotonic() >= deadline:
                    log(f"cleanup: processes still tagged {self.tag}: {left}")
                    break
                time.sleep(0.1)
            if self.keep:
                log(f"logs kept in {self.root}")
            else:
                shutil.rmtree(self.root, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old)


def host_info():
    load = os.getloadavg()
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "uname": " ".join(os.uname()[i] for i in (0, 2)),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
        "git": git_describe(),
        "xpra": xpra_version(),
        "python": sys.version.split()[0],
    }
