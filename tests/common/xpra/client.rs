//! A real `xpra attach` client (Debian xpra 3.1.3) on a headless display of its own.

use super::proc::{self, Leader, Scratch};
use super::x11::{self, Window, Xvfb};
use super::xpra_command;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// How to attach. `Default`: no password, lz4 available.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// Written to a 0600 file passed as `--password-file`.
    pub password: Option<String>,
    /// `false` hides python3-lz4 from the client (see [`hide_lz4`]), so it can only offer
    /// zlib, as on a machine without the package.
    pub lz4: bool,
    /// More `xpra attach` arguments, appended last so they override the defaults.
    pub extra_args: Vec<String>,
}

impl Default for ClientOpts {
    fn default() -> Self {
        Self {
            password: None,
            lz4: true,
            extra_args: Vec::new(),
        }
    }
}

/// The `xpra attach` flags that keep a client headless, quiet and non-interactive: no audio,
/// webcam, tray, notifications, OpenGL, mmap, printing or file transfers, and no password
/// dialog (challenge handlers without `prompt`: a missing password fails with exit code 3
/// instead of waiting for someone to type it).
pub fn client_flags(scratch: &Scratch) -> Vec<String> {
    let mut flags: Vec<String> = [
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
    .iter()
    .map(|s| s.to_string())
    .collect();
    flags.push(format!("--socket-dirs={}/run", scratch.path.display()));
    flags
}

/// Makes `import lz4` fail for the xpra run by `cmd` (a `lz4.py` that raises ImportError,
/// first on PYTHONPATH). xpra treats that exactly like a missing python3-lz4 package.
pub fn hide_lz4(scratch: &Scratch, cmd: &mut Command) {
    let dir = scratch.file("no-lz4");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("lz4.py"),
        "raise ImportError('python3-lz4 hidden by the deskrelay test harness')\n",
    )
    .unwrap();
    cmd.env("PYTHONPATH", &dir);
}

/// A running client with its own Xvfb; both stopped on drop.
pub struct XpraClient {
    child: Leader,
    started: Instant,
    log: PathBuf,
    scratch: Scratch,
    // Dropped after the client (fields drop in order, after `Drop::drop`).
    xvfb: Xvfb,
}

impl XpraClient {
    /// `xpra attach URI` with an optional password and extra flags.
    pub fn attach(uri: &str, password: Option<&str>, extra_args: &[&str]) -> Self {
        Self::attach_with(
            uri,
            ClientOpts {
                password: password.map(str::to_string),
                extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
                ..ClientOpts::default()
            },
        )
    }

    /// Like [`XpraClient::attach`], but the client cannot use lz4 (its python3-lz4 is hidden).
    pub fn attach_without_lz4(uri: &str, password: Option<&str>, extra_args: &[&str]) -> Self {
        Self::attach_with(
            uri,
            ClientOpts {
                password: password.map(str::to_string),
                lz4: false,
                extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    pub fn attach_with(uri: &str, opts: ClientOpts) -> Self {
        let xvfb = Xvfb::start();
        let scratch = Scratch::new("client");
        let log = scratch.file("client.log");
        let mut cmd = xpra_command(&scratch);
        cmd.args(["attach", uri])
            .args(client_flags(&scratch))
            .env("DISPLAY", xvfb.name());
        if let Some(p) = &opts.password {
            let f = scratch.write_secret("password", p);
            cmd.arg(format!("--password-file={}", f.display()));
        }
        if !opts.lz4 {
            hide_lz4(&scratch, &mut cmd);
        }
        cmd.args(&opts.extra_args);
        let started = Instant::now();
        let child = Leader::spawn_logged(&mut cmd, &log).expect("spawn xpra attach");
        Self {
            child,
            started,
            log,
            scratch,
            xvfb,
        }
    }

    /// The client's own X display number.
    pub fn display(&self) -> u32 {
        self.xvfb.display
    }

    /// Everything the client printed so far (stdout and stderr interleaved).
    pub fn output(&self) -> String {
        proc::read_lossy(&self.log)
    }

    /// The environment tags of the client's processes and of its Xvfb.
    pub fn tags(&self) -> [String; 2] {
        [self.scratch.tag.clone(), self.xvfb.tag().to_string()]
    }

    /// The first window on the client's display whose title contains `name` or whose
    /// WM_CLASS instance is `name`.
    pub fn find_window(&self, name: &str) -> Result<Option<Window>, String> {
        Ok(x11::windows(self.display())?.into_iter().find(|w| {
            w.width > 1 && (w.title.contains(name) || w.class.as_ref().is_some_and(|c| c.0 == name))
        }))
    }

    /// Waits until a window matching `name` (see [`XpraClient::find_window`]) is mapped on the
    /// client's display; returns the time since `attach` was called. Fails early, with the
    /// client's output, if the client exits first.
    pub fn wait_for_window(&self, name: &str, timeout: Duration) -> Result<Duration, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.child.has_exited() {
                return Err(format!(
                    "client exited before a {name:?} window appeared; output:\n{}",
                    self.output()
                ));
            }
            if let Some(w) = self.find_window(name)? {
                if x11::is_viewable(self.display(), &w.id) {
                    return Ok(self.started.elapsed());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no {name:?} window on :{} after {timeout:?}; output:\n{}",
                    self.display(),
                    self.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many distinct colours window `w` shows on screen: 1 for a window the client never
    /// painted (all black), dozens for an anti-aliased xclock face.
    pub fn window_colours(&self, w: &Window) -> Result<usize, String> {
        x11::distinct_colours(self.display(), &w.id)
    }

    /// Waits up to `timeout` for the output to contain `needle`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        proc::poll(timeout, Duration::from_millis(50), || {
            self.output().contains(needle).then_some(())
        })
        .is_some()
    }

    /// Waits up to `timeout` for the client to exit by itself; returns its exit code
    /// (128 + signal if killed) and its output. On timeout the client keeps running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<(i32, String), String> {
        let exited = proc::poll(timeout, Duration::from_millis(50), || {
            self.child.has_exited().then_some(())
        });
        if exited.is_none() {
            return Err(format!(
                "client still running after {timeout:?}; output:\n{}",
                self.output()
            ));
        }
        let status = self.child.stop(libc::SIGKILL, Duration::ZERO);
        Ok((proc::exit_code(status), self.output()))
    }
}

impl Drop for XpraClient {
    fn drop(&mut self) {
        self.child.stop(libc::SIGTERM, Duration::from_secs(10));
        if std::thread::panicking() {
            eprintln!(
                "--- xpra client on :{} output ---\n{}\n--- end of client output ---",
                self.display(),
                proc::tail(&self.output(), 80)
            );
        }
    }
}
