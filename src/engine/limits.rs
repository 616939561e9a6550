//! Admission limits shared by every shard: `--max-sessions` in all, and
//! `--max-sessions-per-client` from one client address. A connection over a limit is
//! closed at once, counted, and logged at a bounded rate; a [`Slot`] frees its place when
//! the session ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The limits and the current counts.
#[derive(Debug, Default)]
pub struct Limits {
    max_sessions: Option<usize>,
    max_per_client: Option<usize>,
    active: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
    last_log_sec: AtomicU64,
}

/// Which limit turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Sessions(usize),
    PerClient(usize),
}

impl std::fmt::Display for Over {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Over::Sessions(n) => write!(f, "--max-sessions ({n}) reached"),
            Over::PerClient(n) => write!(f, "--max-sessions-per-client ({n}) reached"),
        }
    }
}

/// A session's place under the limits, given back on drop.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<Limits>,
    client: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.client {
            let mut map = self.limits.per_client.lock().expect("not poisoned");
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

impl Limits {
    pub fn new(max_sessions: Option<usize>, max_per_client: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            max_sessions,
            max_per_client,
            ..Self::default()
        })
    }

    /// Takes a place for a session from `client`, or says which limit is reached.
    pub fn admit(self: &Arc<Self>, client: Option<IpAddr>) -> Result<Slot, Over> {
        let n = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(max) = self.max_sessions {
            if n > max {
                self.active.fetch_sub(1, Ordering::Relaxed);
                return Err(self.refuse(Over::Sessions(max)));
            }
        }
        let tracked = match (self.max_per_client, client) {
            (Some(max), Some(ip)) => {
                let mut map = self.per_client.lock().expect("not poisoned");
                let count = map.entry(ip).or_insert(0);
                if *count >= max {
                    drop(map);
                    self.active.fetch_sub(1, Ordering::Relaxed);
                    return Err(self.refuse(Over::PerClient(max)));
                }
                *count += 1;
                Some(ip)
            }
            _ => None,
        };
        Ok(Slot {
            limits: Arc::clone(self),
            client: tracked,
        })
    }

    /// Connections turned away so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts a refusal; logs at most one line a second (a flood must not flood the log).
    fn refuse(&self, over: Over) -> Over {
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.last_log_sec.swap(now, Ordering::Relaxed) != now {
            tracing::warn!("connection refused: {over} ({total} refused so far)");
        }
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_taken_and_given_back() {
        let limits = Limits::new(Some(2), Some(1));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = limits.admit(Some(a)).unwrap();
        assert_eq!(limits.admit(Some(a)).unwrap_err(), Over::PerClient(1));
        let second = limits.admit(Some(b)).unwrap();
        assert_eq!(
            limits
                .admit(Some("127.0.0.3".parse().unwrap()))
                .unwrap_err(),
            Over::Sessions(2)
        );
        drop(first);
        let again = limits.admit(Some(a)).unwrap();
        assert_eq!(limits.refused(), 2);
        drop((second, again));
        assert!(limits.per_client.lock().unwrap().is_empty());
        assert_eq!(limits.active.load(Ordering::Relaxed), 0);
    }
}
