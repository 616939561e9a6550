//! A real `xpra start` server (Debian xpra 3.1.3) on a loopback TCP port, running xclock.

use super::proc::{self, Scratch};
use super::x11::free_display;
use super::{xpra_command, STARTUP};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to start. `Default` is an unauthenticated server running `xclock`.
#[derive(Debug, Clone)]
pub struct ServerOpts {
    /// Protects the TCP socket with `--tcp-auth=password:value=SECRET` (no `,` or `:` in it:
    /// xpra splits the option on those).
    pub password: Option<String>,
    /// The command started in the session (`--start-child`).
    pub start_child: String,
    /// More `xpra start` arguments, appended last so they override the defaults.
    pub extra_args: Vec<String>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        Self {
            password: None,
            start_child: "xclock".into(),
            extra_args: Vec::new(),
        }
    }
}

impl ServerOpts {
    pub fn with_password(password: &str) -> Self {
        Self {
            password: Some(password.into()),
            ..Self::default()
        }
    }
}

/// The `xpra start` flags that make a server quick to start and self-contained on a headless
/// machine: nothing outside the scratch dir, no mDNS, audio, D-Bus, systemd, HTML5, printing,
/// webcam, notifications, tray, SSL/SSH upgrades or mmap (so pixels really cross the socket).
pub fn server_flags(scratch: &Scratch) -> Vec<String> {
    let dir = scratch.path.display();
    let mut flags: Vec<String> = [
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
        "--xvfb=Xvfb +extension Composite -screen 0 1024x768x24+32 -dpi 96 -nolisten tcp \
         -noreset -auth $XAUTHORITY",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    flags.push(format!("--socket-dir={dir}/run"));
    flags.push(format!("--socket-dirs={dir}/run"));
    flags.push(format!("--log-dir={dir}"));
    flags
}

/// A running xpra server; stopped (SIGTERM, then SIGKILL to what is left) on drop.
pub struct XpraServer {
    pub display: u32,
    pub port: u16,
    password: Option<String>,
    password_file: Option<PathBuf>,
    child: proc::Leader,
    xvfb_pid: Option<u32>,
    log: PathBuf,
    scratch: Scratch,
}

impl XpraServer {
    /// Starts a server and returns once it answers `xpra version` on its TCP port.
    /// Retries on a fresh display and port if one was taken in the meantime; panics with the
    /// server's log if it cannot start.
    pub fn start(opts: ServerOpts) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&opts) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("xpra server did not start:\n{last}");
    }

    fn try_start(opts: &ServerOpts) -> Result<Self, String> {
        let scratch = Scratch::new("server");
        let display = free_display();
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = scratch.file("server.log");
        let mut cmd = xpra_command(&scratch);
        cmd.arg("start")
            .arg(format!(":{display}"))
            .arg(format!("--bind-tcp=127.0.0.1:{port}"))
            .arg(format!("--start-child={}", opts.start_child))
            .args(server_flags(&scratch));
        let password_file = opts.password.as_ref().map(|p| {
            cmd.arg(format!("--tcp-auth=password:value={p}"));
            scratch.write_secret("password", p)
        });
        cmd.args(&opts.extra_args);
        let child =
            proc::Leader::spawn_logged(&mut cmd, &log).map_err(|e| format!("spawn xpra: {e}"))?;
        let mut server = Self {
            display,
            port,
            password: opts.password.clone(),
            password_file,
            child,
            xvfb_pid: None,
            log,
            scratch,
        };
        server.wait_ready()?;
        server.xvfb_pid = xvfb_pid(display);
        Ok(server)
    }

    /// Ready = the log says "xpra is ready.", the port accepts, and a `xpra version` request
    /// (authenticated when the server has a password) gets an answer.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        let mut probe_error = String::new();
        while Instant::now() < deadline {
            if self.child.has_exited() {
                return Err(format!("exited early; log:\n{}", self.log()));
            }
            if self.log().contains("xpra is ready.") && TcpStream::connect(self.addr()).is_ok() {
                let mut cmd = xpra_command(&self.scratch);
                cmd.args(["version", &self.uri()]);
                if let Some(f) = &self.password_file {
                    cmd.arg(format!("--password-file={}", f.display()));
                }
                match proc::run_bounded(&mut cmd, Duration::from_secs(30)) {
                    Ok((0, out, _)) if out.contains('.') => return Ok(()),
                    Ok((code, out, err)) => probe_error = format!("version: {code} {out}{err}"),
                    Err(e) => probe_error = e,
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "not ready after {STARTUP:?} ({probe_error}); log:\n{}",
            self.log()
        ))
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `tcp://127.0.0.1:PORT/`
    pub fn uri(&self) -> String {
        super::tcp_uri(self.addr(), None)
    }

    /// The directory holding the server's unix socket (`HOSTNAME-DISPLAY`).
    pub fn socket_dir(&self) -> PathBuf {
        self.scratch.path.join("run")
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        proc::read_lossy(&self.log)
    }

    /// The environment tag its processes (xpra, its Xvfb, the session's child) carry.
    pub fn tag(&self) -> &str {
        &self.scratch.tag
    }

    /// Waits up to `timeout` for the log to contain `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        proc::poll(timeout, Duration::from_millis(50), || {
            self.log().contains(needle).then_some(())
        })
        .is_some()
    }

    /// Stops the server the way an operator would (SIGTERM: it tells clients "server
    /// shutdown" and kills its Xvfb) and returns its exit code (143 for 3.1.3).
    pub fn stop(mut self) -> i32 {
        proc::exit_code(self.shutdown())
    }

    fn shutdown(&mut self) -> std::process::ExitStatus {
        let status = self.child.stop(libc::SIGTERM, Duration::from_secs(15));
        // xpra runs its Xvfb in a session of its own: a server that died hard leaves it behind.
        if let Some(pid) = self.xvfb_pid.take() {
            let still_ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&format!(":{}", self.display)))
                .unwrap_or(false);
            if still_ours {
                proc::signal(pid, libc::SIGKILL);
            }
        }
        status
    }
}

/// The Xvfb serving `:display`, from its lock file.
fn xvfb_pid(display: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/tmp/.X{display}-lock"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Drop for XpraServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
        if std::thread::panicking() {
            eprintln!(
                "--- xpra server :{} (port {}) log ---\n{}\n--- end of server log ---",
                self.display,
                self.port,
                proc::tail(&self.log(), 80)
            );
        }
    }
}

/// Runs `xpra info URI` (with the password, if any) and returns its stdout lines
/// (`key=value`, about 1,700 of them for a 3.1.3 server).
pub fn xpra_info(uri: &str, password: Option<&str>) -> Result<Vec<String>, String> {
    let scratch = Scratch::new("info");
    let mut cmd = xpra_command(&scratch);
    cmd.args(["info", uri]);
    if let Some(p) = password {
        let f = scratch.write_secret("password", p);
        cmd.arg(format!("--password-file={}", f.display()));
    }
    let (code, out, err) = proc::run_bounded(&mut cmd, STARTUP)?;
    if code != 0 {
        return Err(format!("xpra info exited with {code}:\n{out}{err}"));
    }
    Ok(out.lines().map(str::to_string).collect())
}
