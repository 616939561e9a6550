//! The relay loadgen starts on its own: `deskrelay proxy` run by a child process of this very
//! build (`loadgen relay -- proxy ...`), so the relay's CPU time and memory are its own and
//! measurable, and a relay crash is reported instead of taking the measurement with it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How long the relay may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the relay may take to drain and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running relay child.
pub struct RelayChild {
    child: Option<Child>,
    /// Where clients connect.
    pub addr: SocketAddr,
}

impl RelayChild {
    /// Starts `deskrelay proxy` on a free loopback port, forwarding to `forward`, with
    /// `extra` arguments (`--auth multifile:PATH` for xpra).
    pub fn start(
        forward: SocketAddr,
        shards: Option<usize>,
        data_path: &str,
        extra: &[String],
    ) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find loadgen's own executable")?;
        let mut cmd = Command::new(exe);
        cmd.args(["relay", "--", "proxy", "--bind", "127.0.0.1:0", "--forward"])
            .arg(forward.to_string())
            .args(["--data-path", data_path]);
        if let Some(n) = shards {
            cmd.args(["--shards", &n.to_string()]);
        }
        cmd.args(extra);
        let log = std::env::var("DESKRELAY_LOG").unwrap_or_else(|_| "warn".into());
        cmd.env("DESKRELAY_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .context("cannot start the relay child process")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().parse::<SocketAddr>().ok());
                }
            }
        });
        let mut relay = Self {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(addr)) => relay.addr = addr,
            Ok(None) => bail!("the relay printed an address loadgen cannot read"),
            Err(_) => {
                let status = relay.child_mut().try_wait().ok().flatten();
                match status {
                    Some(s) => bail!("the relay did not start ({s}); its log is above"),
                    None => bail!("the relay did not start within {START_TIMEOUT:?}"),
                }
            }
        }
        Ok(relay)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until stopped")
    }

    /// SIGTERM, then waits for the drain; an error if it crashed earlier, failed, or hung.
    pub fn stop(mut self) -> Result<()> {
        let mut child = self.child.take().expect("child present until stopped");
        if let Some(status) = child.try_wait()? {
            bail!("the relay exited during the run ({status})");
        }
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(anyhow!("the relay exited with {status} after SIGTERM"))
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the relay did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RelayChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
