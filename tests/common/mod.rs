//! Shared helpers of the integration tests: the real `deskrelay` binary on loopback, simple
//! threaded backends, and a deterministic byte pattern to check streams byte for byte.
//! Real xpra peers (server, client, `xpra info`, wire taps) live in [`xpra`]; headless
//! Chromium and an independent WebSocket client in [`browser`].
#![allow(dead_code)] // each test file uses a different subset

pub mod browser;
pub mod xpra;
pub mod xpra_login;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A socket operation that takes longer than this means the relay is broken, not slow.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `deskrelay proxy` child process; killed on drop.
pub struct RelayProcess {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl RelayProcess {
    /// Starts `deskrelay proxy --bind 127.0.0.1:0 ARGS...` and waits for `listening on`.
    pub fn start(args: &[&str]) -> Self {
        Self::start_logging(args, "info")
    }

    /// [`RelayProcess::start`] with `DESKRELAY_LOG` set to `filter`.
    pub fn start_logging(args: &[&str], filter: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_deskrelay"))
            .args(["proxy", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("DESKRELAY_LOG", filter)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start deskrelay");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "deskrelay did not print `listening on`; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Self {
            child,
            addr,
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for stderr to contain `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // A failing test shows what the relay said about it.
            eprintln!("--- deskrelay's log ---\n{}--- end ---", self.stderr());
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// A loopback address nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Resets the connection (RST instead of FIN) as it is dropped.
pub fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt with a live linger struct on a socket we own.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

/// A backend serving each connection with `handler` on its own thread.
pub struct Backend {
    pub addr: SocketAddr,
}

impl Backend {
    pub fn start<F>(handler: F) -> Self
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(handler);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                let h = Arc::clone(&handler);
                thread::spawn(move || h(conn));
            }
        });
        Self { addr }
    }

    /// Echoes every byte back until EOF, then closes.
    pub fn echo() -> Self {
        Self::start(|mut s| {
            let mut buf = [0u8; 16384];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        })
    }

    /// The two-way transfer peer of [`transfer`]: reads a header (seed, length), then sends
    /// `length` bytes of the pattern for `!seed` while checking that the client's `length`
    /// bytes follow the pattern for `seed`. A mismatch closes with a reset.
    pub fn transfer() -> Self {
        Self::start(|s| {
            let mut header = [0u8; 16];
            let mut r = s.try_clone().unwrap();
            if r.read_exact(&mut header).is_err() {
                return;
            }
            let seed = u64::from_le_bytes(header[..8].try_into().unwrap());
            let len = u64::from_le_bytes(header[8..].try_into().unwrap());
            let w = s.try_clone().unwrap();
            let writer = thread::spawn(move || send_pattern(w, !seed, len, 24 * 1024 + 5));
            let ok = expect_pattern(&mut r, seed, len).is_ok();
            let sent = writer.join().unwrap();
            if ok && sent.is_ok() {
                let _ = s.shutdown(Shutdown::Write);
            } else {
                reset(s);
            }
        })
    }
}

/// Bytes of a deterministic pseudo-random pattern: a 1 MiB (plus an odd tail) random block,
/// read cyclically from an offset derived from the seed.
fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        use rand::{RngCore, SeedableRng};
        let mut v = vec![0u8; (1 << 20) + 4093];
        rand::rngs::StdRng::seed_from_u64(0x5eed).fill_bytes(&mut v);
        v
    })
}

fn offset_of(seed: u64) -> usize {
    (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) % pattern().len() as u64) as usize
}

/// Writes `len` bytes of the pattern for `seed`, in writes of varying size up to `max_write`.
pub fn send_pattern(
    mut s: TcpStream,
    seed: u64,
    len: u64,
    max_write: usize,
) -> std::io::Result<()> {
    let p = pattern();
    let mut pos = offset_of(seed);
    let mut left = len;
    let mut size = 1usize;
    while left > 0 {
        size = (size * 7 + 13) % max_write + 1;
        let n = (size as u64).min(left).min((p.len() - pos) as u64) as usize;
        s.write_all(&p[pos..pos + n])?;
        pos = (pos + n) % p.len();
        left -= n as u64;
    }
    Ok(())
}

/// Reads exactly `len` bytes and checks them against the pattern for `seed`.
pub fn expect_pattern(s: &mut TcpStream, seed: u64, len: u64) -> Result<(), String> {
    let p = pattern();
    let mut pos = offset_of(seed);
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    while got < len {
        let want = ((len - got) as usize).min(buf.len());
        let n = match s.read(&mut buf[..want]) {
            Ok(0) => return Err(format!("EOF after {got} of {len} bytes")),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read error after {got} of {len} bytes: {e}")),
        };
        for (i, &b) in buf[..n].iter().enumerate() {
            if b != p[pos] {
                return Err(format!("byte {} of {len} differs", got + i as u64));
            }
            pos = (pos + 1) % p.len();
        }
        got += n as u64;
    }
    Ok(())
}

/// One session through `relay` against a [`Backend::transfer`]: `len` bytes each way at the
/// same time, both checked byte for byte, then EOF both ways.
pub fn transfer(relay: SocketAddr, seed: u64, len: u64) -> Result<(), String> {
    let mut s = connect(relay);
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(&seed.to_le_bytes());
    header[8..].copy_from_slice(&len.to_le_bytes());
    s.write_all(&header).map_err(|e| e.to_string())?;
    let w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let r = send_pattern(w.try_clone().unwrap(), seed, len, 40 * 1024 + 3);
        let _ = w.shutdown(Shutdown::Write);
        r
    });
    let read = expect_pattern(&mut s, !seed, len);
    writer.join().unwrap().map_err(|e| format!("send: {e}"))?;
    read?;
    let mut rest = [0u8; 1];
    match s.read(&mut rest) {
        Ok(0) => Ok(()),
        Ok(_) => Err("bytes after the expected end".into()),
        Err(e) => Err(format!(
            "no clean EOF at the end (backend saw a mismatch?): {e}"
        )),
    }
}

/// Runs `sessions` concurrent [`transfer`]s of `len` bytes; returns the failures.
pub fn transfers(relay: SocketAddr, sessions: u64, len: u64) -> Vec<String> {
    let handles: Vec<JoinHandle<Result<(), String>>> = (0..sessions)
        .map(|i| {
            thread::spawn(move || {
                transfer(relay, 1000 + i, len).map_err(|e| format!("session {i}: {e}"))
            })
        })
        .collect();
    handles
        .into_iter()
        .filter_map(|h| h.join().unwrap().err())
        .collect()
}

/// Connects to `addr` from the loopback address `source` (127.0.0.0/8 is all loopback, so
/// tests can be several clients at once).
pub fn connect_from(addr: SocketAddr, source: &str) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    sock.bind(&from.into()).unwrap();
    sock.connect(&addr.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// A private directory for one test's files, removed at the end.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    /// `$TMPDIR/deskrelay-TAG-PID`, empty.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("deskrelay-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name`, mode 0600 (multifiles and keys must not be readable).
    pub fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new connection to `addr` that has sent a WebSocket upgrade request for `GET TARGET`.
pub fn ws_upgrade_request(addr: SocketAddr, target: &str) -> TcpStream {
    let mut s = connect(addr);
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    s
}

/// A WebSocket upgrade of `GET TARGET` on a new connection to `addr`, its `101` head read
/// byte by byte (nothing after it consumed).
pub fn ws_upgrade(addr: SocketAddr, target: &str) -> TcpStream {
    let mut s = ws_upgrade_request(addr, target);
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

impl RelayProcess {
    /// SIGTERM, then the closing summary line (`stopped ...`).
    pub fn stop_summary(mut self) -> String {
        self.signal(libc::SIGTERM);
        self.wait_exit(Duration::from_secs(20)).expect("exits");
        let log = self.stderr();
        log.lines()
            .find(|l| l.contains("stopped"))
            .unwrap_or_else(|| panic!("no summary in\n{log}"))
            .to_string()
    }
}

/// `deskrelay info --json --control SOCKET` of a relay started with `--control SOCKET`.
pub fn info_json(socket: &std::path::Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_deskrelay"))
        .args(["info", "--json", "--control", socket.to_str().unwrap()])
        .output()
        .expect("run deskrelay info");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("info is JSON")
}

/// The files of a relay that serves xpra, WebSocket tokens and TLS on one port: user `zoe`
/// (password `zoe-pw`) and token `desk` both lead to `session`; a self-signed certificate
/// for `name`.
#[allow(dead_code)]
pub struct OnePortFiles {
    pub users: std::path::PathBuf,
    pub tokens: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

#[allow(dead_code)]
impl OnePortFiles {
    pub fn new(scratch: &Scratch, session: SocketAddr, name: &str) -> Self {
        let users = scratch.file(
            "users",
            &format!("zoe|zoe-pw|1000|1000|tcp://{session}/||\n"),
        );
        let tokens = scratch.file("tokens", &format!("desk: {session}\n"));
        let made = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
        let cert = scratch.file("cert.pem", &made.cert.pem());
        let key = scratch.file("key.pem", &made.key_pair.serialize_pem());
        Self {
            users,
            tokens,
            cert,
            key,
        }
    }

    /// `--auth`, `--tokens`, `--tls-cert` and `--tls-key` with these files.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--auth".into(),
            format!("multifile:{}", self.users.display()),
            "--tokens".into(),
            self.tokens.display().to_string(),
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}
