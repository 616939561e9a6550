//! Process plumbing for the real-peer helpers: a scratch directory per guard, children in
//! their own process group with output in a log file, bounded waits, and a leak check.
//!
//! Every process a guard starts carries `DESKRELAY_XPRA_TAG=<tag>` in its environment, and so
//! do its descendants (xpra passes its environment to the Xvfb and the child it starts). The
//! tag is how [`tagged_processes`] finds leftovers, including an Xvfb that xpra put in its own
//! session and that the kernel reparented to init when xpra died.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The environment variable that marks processes started by these helpers.
pub const TAG_VAR: &str = "DESKRELAY_XPRA_TAG";

/// A private directory under the system temp dir, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
    pub tag: String,
}

impl Scratch {
    pub fn new(kind: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{kind}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(format!("deskrelay-xpra-{tag}"));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create scratch dir");
        Self { path, tag }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to `name` (mode 0600) and returns its path.
    pub fn write_secret(&self, name: &str, contents: &str) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.file(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .expect("write secret file");
        std::io::Write::write_all(&mut f, contents.as_bytes()).unwrap();
        path
    }

    /// Points `cmd` at this directory for everything xpra reads or writes on its own:
    /// no system or user xpra.conf (the Debian one starts `/etc/X11/Xsession`, which pops up
    /// an xmessage window), HOME, runtime dir and XAUTHORITY file inside the scratch dir.
    pub fn hermetic_env(&self, cmd: &mut Command) {
        let conf = self.file("conf");
        let run = self.file("run");
        fs::create_dir_all(&conf).unwrap();
        fs::create_dir_all(&run).unwrap();
        // xpra only uses $XAUTHORITY when the file exists; otherwise it writes ~root/.Xauthority.
        let xauth = self.file("Xauthority");
        File::create(&xauth).unwrap();
        cmd.env("HOME", &self.path)
            .env("XDG_RUNTIME_DIR", &run)
            .env("XAUTHORITY", &xauth)
            .env("XPRA_SYSTEM_CONF_DIRS", &conf)
            .env("XPRA_USER_CONF_DIRS", &conf)
            .env(TAG_VAR, &self.tag)
            .env_remove("DISPLAY")
            .env_remove("XPRA_PASSWORD")
            .env_remove("PYTHONPATH")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .current_dir(&self.path);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A child started as the leader of its own process group; see [`Leader::stop`].
pub struct Leader {
    child: Child,
    status: Option<ExitStatus>,
}

impl Leader {
    /// Starts `cmd` as the leader of a new process group, stdin from /dev/null, stdout and
    /// stderr appended to `log`.
    pub fn spawn_logged(cmd: &mut Command, log: &Path) -> std::io::Result<Self> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        Self::spawn(cmd.stdout(out).stderr(err))
    }

    /// Starts `cmd` as the leader of a new process group, stdin from /dev/null.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        let child = cmd.process_group(0).stdin(Stdio::null()).spawn()?;
        Ok(Self {
            child,
            status: None,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the leader has exited (it is not reaped until [`Leader::stop`]).
    pub fn has_exited(&self) -> bool {
        self.status.is_some() || has_exited(self.child.id())
    }

    /// Sends `sig` to the leader (not to the group: xpra cleans up after its children on
    /// SIGTERM), gives it up to `grace` to exit, SIGKILLs whatever is left of the group, and
    /// reaps the leader. The leader is reaped last, so the group id cannot have been reused
    /// when the group is killed. Idempotent: later calls return the first exit status.
    pub fn stop(&mut self, sig: i32, grace: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let pid = self.child.id();
        if !has_exited(pid) {
            signal(pid, sig);
            let deadline = Instant::now() + grace;
            while !has_exited(pid) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        signal_group(pid, libc::SIGKILL);
        let status = self.child.wait().expect("reap child");
        self.status = Some(status);
        status
    }
}

pub fn read_lossy(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Whether `pid` has exited, without reaping it (so its pid and group id stay reserved).
pub fn has_exited(pid: u32) -> bool {
    // SAFETY: waitid with WNOWAIT only inspects our own child; `info` is a valid out-buffer.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        rc != 0 || info.si_pid() != 0
    }
}

pub fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: kill(2) on a process group we created; an empty group only yields ESRCH.
    unsafe {
        libc::kill(-(pgid as i32), sig);
    }
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we checked belongs to one of our processes.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Exit code of a finished process, 128 + signal for one killed by a signal.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Runs `cmd` to completion with stdout and stderr captured (separately), killing its group
/// if it runs past `timeout`. Returns (exit code, stdout, stderr).
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<(i32, String, String), String> {
    let scratch = Scratch::new("run");
    let (out, err) = (scratch.file("stdout"), scratch.file("stderr"));
    cmd.stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap());
    let mut child = Leader::spawn(cmd).map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    while !child.has_exited() {
        if Instant::now() >= deadline {
            child.stop(libc::SIGKILL, Duration::ZERO);
            return Err(format!(
                "{cmd:?} still running after {timeout:?}; output:\n{}{}",
                read_lossy(&out),
                read_lossy(&err)
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    // Stragglers the command left in its group (none expected) go with it.
    let status = child.stop(libc::SIGKILL, Duration::ZERO);
    Ok((exit_code(status), read_lossy(&out), read_lossy(&err)))
}

/// Live processes whose environment carries `DESKRELAY_XPRA_TAG=<tag>`: (pid, command line).
pub fn tagged_processes(tag: &str) -> Vec<(u32, String)> {
    let needle = format!("{TAG_VAR}={tag}");
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(env) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
            continue;
        }
        // A zombie still shows its environment; it is gone for our purposes once reaped,
        // but one left unreaped is a leak too, so report it with its state.
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        found.push((pid, cmdline.trim().to_string()));
    }
    found
}

/// Waits up to `timeout` for no process to carry `tag`; returns those still there.
pub fn wait_untagged(tag: &str, timeout: Duration) -> Vec<(u32, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = tagged_processes(tag);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` every `every` until it returns `Some` or `timeout` passes.
pub fn poll<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(every);
    }
}

/// The last `n` lines of `text`, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
