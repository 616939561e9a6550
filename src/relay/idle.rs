//! The idle timeout (`--idle-timeout`): a session that moves no bytes either way for that
//! long is closed, counted and logged (at most a line a second).
//!
//! Every data path touches its session's [`Activity`] when a read brings bytes or a write
//! completes: copy and splice directions (`direction.rs`), the bridge of TLS and WebSocket
//! clients (`bridge.rs`), the xpra frame gate (`front/xpra/forward.rs`). The touch is a
//! counter bump in a `Cell`, no clock read; [`Activity::quiet_for`] samples the counter four
//! times per timeout, so a session is closed between one and one and a quarter timeouts
//! after its last byte, and a session with no timeout has no timer at all. The session that
//! owns the activity decides how to say goodbye (an xpra `disconnect`, a WebSocket close
//! 1001), because only it knows whether its client's stream is between two messages: a
//! [`Meter`] tells whether a write was cut short.
//!
//! The timeout a session gets is read when its data phase starts; a SIGHUP that changes
//! it applies to sessions that start afterwards, so a reload closes nothing by itself.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::stream::ByteStream;
use crate::control::stats::ShardStats;
use crate::engine::log_rate::LogRate;
use crate::engine::runtime::sleep;

/// Samples of the activity counter per timeout.
const SAMPLES: u32 = 4;
/// Longest wait for a goodbye (a `disconnect`, a close frame) to be written to a peer that
/// may have stopped reading: the session ends regardless.
pub const GOODBYE: Duration = Duration::from_secs(1);

/// The shared, reloadable timeout, and the rate of its log line.
#[derive(Debug, Default)]
pub struct IdleTimeout {
    /// Milliseconds; 0: no timeout.
    millis: AtomicU64,
    closed: AtomicU64,
    log: LogRate,
}

impl IdleTimeout {
    pub fn new(timeout: Option<Duration>) -> Self {
        let t = Self::default();
        t.set(timeout);
        t
    }

    /// The timeout for a session starting now.
    pub fn get(&self) -> Option<Duration> {
        match self.millis.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    pub fn set(&self, timeout: Option<Duration>) {
        let ms = timeout.map_or(0, |t| (t.as_millis() as u64).max(1));
        self.millis.store(ms, Ordering::Relaxed);
    }

    /// Counts one session closed for idleness, and logs it at most once a second.
    pub fn closed(&self, stats: &ShardStats, what: &str, timeout: Duration) {
        ShardStats::add(&stats.idle_timeouts, 1);
        let total = self.closed.fetch_add(1, Ordering::Relaxed) + 1;
        if self.log.allow() {
            tracing::info!(
                "idle timeout: closed a {what} session quiet for {} s ({total} so far)",
                timeout.as_secs_f64()
            );
        }
    }
}

/// One session's activity: bumped whenever bytes move, either way.
#[derive(Debug, Default)]
pub struct Activity {
    ticks: Cell<u64>,
}

impl Activity {
    pub fn touch(&self) {
        self.ticks.set(self.ticks.get().wrapping_add(1));
    }

    /// Resolves once nothing has moved for `timeout`; never without a timeout.
    pub async fn quiet_for(&self, timeout: Option<Duration>) {
        let Some(timeout) = timeout else {
            return std::future::pending().await;
        };
        let step = (timeout / SAMPLES).max(Duration::from_millis(1));
        let mut seen = self.ticks.get();
        let mut quiet = Duration::ZERO;
        while quiet < timeout {
            sleep(step).await;
            let now = self.ticks.get();
            if now == seen {
                quiet += step;
            } else {
                seen = now;
                quiet = Duration::ZERO;
            }
        }
    }
}

/// One direction's tally: bytes written, whether a write is under way, and the session's
/// activity, touched as bytes move.
#[derive(Debug)]
pub struct Meter<'a> {
    activity: &'a Activity,
    bytes: Cell<u64>,
    writing: Cell<bool>,
}

impl<'a> Meter<'a> {
    pub fn new(activity: &'a Activity) -> Self {
        Self {
            activity,
            bytes: Cell::new(0),
            writing: Cell::new(false),
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.get()
    }

    /// Whether a write started and never finished (its future was dropped): the stream may
    /// end inside a message, so nothing more may be written to it.
    pub fn mid_write(&self) -> bool {
        self.writing.get()
    }

    /// Bytes were read.
    pub fn read(&self) {
        self.activity.touch();
    }

    /// Writes all of `buf` to `dst`, counting it.
    pub async fn write(&self, dst: &impl ByteStream, buf: &[u8]) -> io::Result<()> {
        self.writing.set(true);
        dst.write_all(buf).await?;
        self.writing.set(false);
        self.bytes.set(self.bytes.get() + buf.len() as u64);
        self.activity.touch();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::runtime::block_on;
    use futures_lite::future::or;
    use std::rc::Rc;
    use std::time::Instant;

    #[test]
    fn quiet_means_no_touch_for_the_whole_timeout() {
        block_on(async {
            let activity = Rc::new(Activity::default());
            let timeout = Some(Duration::from_millis(200));
            // Touched every 50 ms for 600 ms: never quiet for 200 ms.
            let busy = {
                let a = Rc::clone(&activity);
                async move {
                    for _ in 0..12 {
                        sleep(Duration::from_millis(50)).await;
                        a.touch();
                    }
                    false
                }
            };
            assert!(
                !or(busy, async {
                    activity.quiet_for(timeout).await;
                    true
                })
                .await
            );
            let started = Instant::now();
            activity.quiet_for(timeout).await;
            let took = started.elapsed();
            assert!(took >= Duration::from_millis(200), "{took:?}");
            assert!(took < Duration::from_millis(400), "{took:?}");
        });
    }

    #[test]
    fn the_shared_timeout_reads_back_and_zero_is_off() {
        let t = IdleTimeout::new(Some(Duration::from_secs(30)));
        assert_eq!(t.get(), Some(Duration::from_secs(30)));
        t.set(None);
        assert_eq!(t.get(), None);
    }
}
