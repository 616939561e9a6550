//! SIGINT/SIGTERM: a control thread turns the first signal into a byte on a pipe that every
//! shard polls; a second signal stops the process at once.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The shutdown trigger: readable once shutdown was asked for (never drained, so every shard
/// sees it).
#[derive(Debug)]
pub struct ShutdownPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl ShutdownPipe {
    pub fn new() -> io::Result<Arc<Self>> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are new and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Arc::new(Self { read, write }))
    }

    /// The descriptor shards poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Asks every shard to stop accepting and drain.
    pub fn trigger(&self) {
        // SAFETY: write one byte from a live buffer to our own pipe; a full pipe already
        // carries the request, so the result does not matter.
        unsafe { libc::write(self.write.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    }
}

/// Starts the thread that waits for SIGINT/SIGTERM (and SIGHUP: `on_hangup` runs, for
/// reloads). Registering happens before it returns,
/// so a signal arriving during start-up is not lost (nor fatal).
pub fn watch_signals(
    pipe: Arc<ShutdownPipe>,
    drain_secs: f64,
    on_hangup: impl Fn() + Send + 'static,
) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                if sig == SIGHUP {
                    on_hangup();
                    continue;
                }
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                seen += 1;
                if seen == 1 {
                    tracing::info!(
                        "{name}: no new sessions; draining open ones for up to {drain_secs} s"
                    );
                    pipe.trigger();
                } else {
                    tracing::warn!("{name} again: stopping now, open sessions are cut");
                    std::process::exit(1);
                }
            }
        })?;
    Ok(())
}
