//! [`LogRate`]: at most one log line a second from one source, however fast its events come
//! (a flood of refused connections must not become a flood of log lines). Shared by every
//! shard: one relaxed swap per event (and one add per event it holds back), no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The second of the last line a source logged, and the events held back since.
#[derive(Debug, Default)]
pub struct LogRate {
    last_sec: AtomicU64,
    suppressed: AtomicU64,
}

impl LogRate {
    pub const fn new() -> Self {
        Self {
            last_sec: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a line may be logged now: true for the first event of each second.
    pub fn allow(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_sec.swap(now, Ordering::Relaxed) != now
    }

    /// [`LogRate::allow`] that remembers what it held back: `Some(n)` when a line may be
    /// logged now, `n` being the events held back since the last line; None (counted)
    /// otherwise.
    pub fn allow_counted(&self) -> Option<u64> {
        if self.allow() {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
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

    #[test]
    fn the_next_line_says_how_many_were_held_back() {
        let rate = LogRate::new();
        let lines: Vec<u64> = (0..1000).filter_map(|_| rate.allow_counted()).collect();
        let held = rate.suppressed.load(Ordering::Relaxed);
        assert_eq!(lines[0], 0);
        // Every event is either in a line's count, still held, or a line itself.
        assert_eq!(lines.iter().sum::<u64>() + held + lines.len() as u64, 1000);
        rate.last_sec.store(0, Ordering::Relaxed);
        assert_eq!(rate.allow_counted(), Some(held));
    }
}
