//! [`LogRate`]: at most one log line a second from one source, however fast its events come
//! (a flood of refused connections must not become a flood of log lines). Shared by every
//! shard: one relaxed swap per event, no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The second of the last line a source logged.
#[derive(Debug, Default)]
pub struct LogRate {
    last_sec: AtomicU64,
}

impl LogRate {
    pub const fn new() -> Self {
        Self {
            last_sec: AtomicU64::new(0),
        }
    }

    /// Whether a line may be logged now: true for the first event of each second.
    pub fn allow(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_sec.swap(now, Ordering::Relaxed) != now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second() {
        let rate = LogRate::new();
        let allowed = (0..1000).filter(|_| rate.allow()).count();
        // A second boundary may fall inside the loop.
        assert!((1..=2).contains(&allowed), "{allowed}");
    }
}
