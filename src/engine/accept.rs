//! The accept loop of one listener on one shard, resilient to descriptor exhaustion.
//!
//! The loop takes connections off the queue until it is empty, then waits for the listener
//! to become readable on the shard ring (one poll per burst, not an accept operation per
//! connection).
//!
//! EMFILE/ENFILE leave the connection in the kernel's accept queue: the loop backs off
//! (10 ms doubling to 1 s), keeps serving existing sessions meanwhile, logs at most once a
//! second with a count of what it suppressed, and resumes by itself when descriptors free.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::runtime::{self, Conn, Listener};
use crate::uring::{PollEvents, ShardRing};

const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Connections accepted in a row before the loop lets the shard's sessions run.
const BURST: usize = 64;

/// Accepts forever, handing each connection to `serve`.
pub async fn accept_loop(
    listener: &Listener,
    ring: &Rc<ShardRing>,
    shard: usize,
    mut serve: impl FnMut(Conn),
    on_error: impl Fn(),
) {
    let log = RateLimitedLog::new(Duration::from_secs(1));
    let mut backoff = Backoff::default();
    let mut burst = 0;
    loop {
        let Some(accepted) = runtime::try_accept(listener) else {
            burst = 0;
            if let Err(err) = ring.ready(listener.fd(), PollEvents::Readable).await {
                on_error();
                log.warn(|suppressed| {
                    tracing::warn!(shard, suppressed, "cannot wait for connections: {err}")
                });
                backoff.pause().await;
            }
            continue;
        };
        burst += 1;
        if burst == BURST {
            burst = 0;
            runtime::yield_now().await;
        }
        match accepted {
            Ok(conn) => {
                backoff = Backoff::default();
                serve(conn);
            }
            Err(err) => {
                on_error();
                if is_descriptor_exhaustion(&err) {
                    log.warn(|suppressed| {
                        tracing::warn!(
                            shard,
                            suppressed,
                            "accept paused: {err}; existing sessions go on"
                        )
                    });
                    backoff.pause().await;
                } else if is_connection_error(&err) {
                    // A client that vanished between SYN and accept, and the like.
                    log.warn(|suppressed| {
                        tracing::debug!(shard, suppressed, "accept failed: {err}")
                    });
                } else {
                    // Not the connection's fault, nor one that waiting for readiness
                    // clears (EBADF, EINVAL...): back off rather than spin on it.
                    log.warn(|suppressed| {
                        tracing::warn!(shard, suppressed, "accept failed: {err}; retrying")
                    });
                    backoff.pause().await;
                }
            }
        }
    }
}

/// The pause before accepting again after an error that waiting for readiness does not
/// clear: MIN_BACKOFF, doubling up to MAX_BACKOFF, back to MIN_BACKOFF after a success.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(MIN_BACKOFF)
    }
}

impl Backoff {
    async fn pause(&mut self) {
        runtime::sleep(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }
}

/// Errors accept(2) reports for one pending connection (it is gone; the next one is fine):
/// the man page's "treat them like EAGAIN by retrying" list, with ECONNABORTED.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::EPERM
        )
    )
}

fn is_descriptor_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Lets one message through per `interval` and counts the ones it held back.
struct RateLimitedLog {
    interval: Duration,
    last: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

impl RateLimitedLog {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Cell::new(None),
            suppressed: Cell::new(0),
        }
    }

    fn warn(&self, emit: impl FnOnce(u64)) {
        let now = Instant::now();
        match self.last.get() {
            Some(t) if now.duration_since(t) < self.interval => {
                self.suppressed.set(self.suppressed.get() + 1)
            }
            _ => {
                emit(self.suppressed.replace(0));
                self.last.set(Some(now));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_logs_once_and_counts_the_rest() {
        let log = RateLimitedLog::new(Duration::from_secs(60));
        let mut emitted = Vec::new();
        for _ in 0..5 {
            log.warn(|s| emitted.push(s));
        }
        assert_eq!(emitted, vec![0]);
        assert_eq!(log.suppressed.get(), 4);
    }

    #[test]
    fn descriptor_exhaustion_is_recognised() {
        assert!(is_descriptor_exhaustion(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(is_descriptor_exhaustion(&io::Error::from_raw_os_error(
            libc::ENFILE
        )));
        assert!(!is_descriptor_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
        assert!(is_connection_error(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
        assert!(!is_connection_error(&io::Error::from_raw_os_error(
            libc::EBADF
        )));
    }
}
