#!/usr/bin/env python3
"""TLS relay throughput: deskrelay terminating TLS vs haproxy terminating TLS (OpenSSL).

What it guards: issue 5's target, TLS relay throughput >= 0.8x haproxy's (>= 1x with kTLS,
which this kernel lacks: /proc/sys/net/ipv4/tcp_available_ulp has no "tls").

How it measures: one TLS client (Python's ssl, i.e. OpenSSL, TLS 1.3, AES-GCM) streams
256 KiB writes for --seconds through the relay, which decrypts and forwards plaintext to a
sink on loopback that counts bytes. Each round runs both relays, order rotated; the table
shows Gbit/s per round, the median, and deskrelay / haproxy. Client, relay and sink share
the machine's cores, so absolute numbers are the VM's; the ratio is the point.

Run from the repository root: python3 benches/tls_peers.py [--rounds 3] [--seconds 5]
(builds nothing: run `cargo build --release` first; installs haproxy with apt if missing).
"""
import argparse, os, shutil, socket, ssl, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESKRELAY = os.path.join(ROOT, "target", "release", "deskrelay")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Sink:
    """Accepts connections and counts what arrives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self.drain, args=(conn,), daemon=True).start()

    def drain(self, conn):
        buf = bytearray(1 << 20)
        try:
            while conn.recv_into(buf):
                pass
        except OSError:
            pass  # a relay that resets at shutdown
        conn.close()


def stream(port, seconds):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
    chunk = os.urandom(256 * 1024)
    sent, start = 0, time.time()
    while time.time() - start < seconds:
        s.sendall(chunk)
        sent += len(chunk)
    elapsed = time.time() - start
    s.close()
    return sent * 8 / elapsed / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    if not shutil.which("haproxy"):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "haproxy"], check=True)
    tmp = tempfile.mkdtemp(prefix="deskrelay-tls-bench-")
    cert, key, pem = (os.path.join(tmp, n) for n in ("cert.pem", "key.pem", "both.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    with open(pem, "w") as out:
        out.write(open(cert).read() + open(key).read())
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("bench|bench-pw|1000|1000|tcp://127.0.0.1:9/||\n")
    os.chmod(users, 0o600)
    sink = Sink()
    procs = []
    try:
        dr_port, ha_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            [DESKRELAY, "--log", "warn", "proxy", "--bind", f"127.0.0.1:{dr_port}",
             "--auth", f"multifile:{users}", "--tls-cert", cert, "--tls-key", key,
             "--fallback", f"127.0.0.1:{sink.port}"], stdout=subprocess.DEVNULL))
        cfg = os.path.join(tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend tls
    bind 127.0.0.1:{ha_port} ssl crt {pem}
    default_backend sink
backend sink
    server sink 127.0.0.1:{sink.port}
""")
        procs.append(subprocess.Popen(["haproxy", "-f", cfg], stdout=subprocess.DEVNULL))
        wait_port(dr_port)
        wait_port(ha_port)
        targets = [("deskrelay", dr_port), ("haproxy", ha_port)]
        results = {name: [] for name, _ in targets}
        for r in range(args.rounds):
            order = targets[r % 2:] + targets[:r % 2]
            for name, port in order:
                gbps = stream(port, args.seconds)
                results[name].append(gbps)
                print(f"round {r + 1}: {name:9s} {gbps:6.2f} Gbit/s", flush=True)
        med = {n: statistics.median(v) for n, v in results.items()}
        print("\n| relay | Gbit/s per round | median |")
        print("|---|---|---|")
        for n, v in results.items():
            print(f"| {n} | {' / '.join(f'{x:.2f}' for x in v)} | {med[n]:.2f} |")
        print(f"\ndeskrelay / haproxy = {med['deskrelay'] / med['haproxy']:.2f} "
              "(target >= 0.8)")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
