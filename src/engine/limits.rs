//! Admission limits and protections shared by every shard, all reloadable on SIGHUP:
//! `--max-sessions` in all and `--max-sessions-per-client` from one client address (a
//! connection over a limit is counted, logged at a bounded rate and turned away, with
//! [`Over::client_reason`] where its door can say it; a [`Slot`] frees its place when the
//! session ends), the failed-login throttle
//! ([`AuthThrottle`]) and the idle timeout ([`IdleTimeout`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::auth_throttle::{AuthThrottle, ThrottleSettings};
use super::log_rate::LogRate;
use crate::relay::idle::IdleTimeout;

/// `usize::MAX` in a limit's atomic: no limit.
const NONE: usize = usize::MAX;

/// The values SIGHUP may change without touching an open session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitSettings {
    pub max_sessions: Option<usize>,
    pub max_sessions_per_client: Option<usize>,
    /// None: sessions may stay quiet for ever.
    pub idle_timeout: Option<Duration>,
    pub auth: ThrottleSettings,
}

impl LimitSettings {
    /// What differs from `old`, one `key: old -> new` each, named as the config file does.
    pub fn changes_from(&self, old: &LimitSettings) -> Vec<String> {
        let count = |n: Option<usize>| n.map_or("none".to_string(), |n| n.to_string());
        let secs = |d: Option<Duration>| d.map_or("off".to_string(), |d| format!("{d:?}"));
        let mut out = Vec::new();
        let mut diff = |key: &str, old: String, new: String| {
            if old != new {
                out.push(format!("{key}: {old} -> {new}"));
            }
        };
        diff(
            "max-sessions",
            count(old.max_sessions),
            count(self.max_sessions),
        );
        diff(
            "max-sessions-per-client",
            count(old.max_sessions_per_client),
            count(self.max_sessions_per_client),
        );
        diff(
            "idle-timeout",
            secs(old.idle_timeout),
            secs(self.idle_timeout),
        );
        let (a, b) = (old.auth, self.auth);
        diff(
            "auth-fail-limit",
            a.max_failures.to_string(),
            b.max_failures.to_string(),
        );
        diff(
            "auth-fail-window",
            secs(Some(a.window)),
            secs(Some(b.window)),
        );
        diff("auth-backoff", secs(Some(a.backoff)), secs(Some(b.backoff)));
        diff(
            "auth-backoff-max",
            secs(Some(a.max_backoff)),
            secs(Some(b.max_backoff)),
        );
        out
    }
}

/// The limits and the current counts.
#[derive(Debug)]
pub struct Limits {
    max_sessions: AtomicUsize,
    max_per_client: AtomicUsize,
    active: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
    log: LogRate,
    /// The settings last applied, for SIGHUP's report of what changed.
    current: Mutex<LimitSettings>,
    /// Failed-login throttling of the xpra door and the WebSocket token door.
    pub auth: AuthThrottle,
    /// `--idle-timeout`, shared with every shard's data path.
    pub idle: Arc<IdleTimeout>,
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

impl Over {
    /// What the refused client is told: the limit, not its value.
    pub fn client_reason(&self) -> &'static str {
        match self {
            Over::Sessions(_) => "too many sessions",
            Over::PerClient(_) => "too many sessions from your address",
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

fn limit(n: Option<usize>) -> usize {
    n.unwrap_or(NONE)
}

impl Limits {
    /// Session limits only (the throttle and the idle timeout at their defaults).
    pub fn new(max_sessions: Option<usize>, max_per_client: Option<usize>) -> Arc<Self> {
        Self::with(LimitSettings {
            max_sessions,
            max_sessions_per_client: max_per_client,
            ..LimitSettings::default()
        })
    }

    pub fn with(settings: LimitSettings) -> Arc<Self> {
        Arc::new(Self {
            max_sessions: AtomicUsize::new(limit(settings.max_sessions)),
            max_per_client: AtomicUsize::new(limit(settings.max_sessions_per_client)),
            active: AtomicUsize::new(0),
            per_client: Mutex::default(),
            refused: AtomicU64::new(0),
            log: LogRate::new(),
            current: Mutex::new(settings),
            auth: AuthThrottle::new(settings.auth),
            idle: Arc::new(IdleTimeout::new(settings.idle_timeout)),
        })
    }

    /// Applies new settings (SIGHUP) and returns what changed. Open sessions keep their
    /// places and their idle timeout: a lower limit only turns new connections away, and
    /// a per-client limit switched on counts the sessions opened after it.
    pub fn reload(&self, new: LimitSettings) -> Vec<String> {
        let mut current = self.current.lock().expect("not poisoned");
        let changes = new.changes_from(&current);
        self.max_sessions
            .store(limit(new.max_sessions), Ordering::Relaxed);
        self.max_per_client
            .store(limit(new.max_sessions_per_client), Ordering::Relaxed);
        self.idle.set(new.idle_timeout);
        self.auth.set(new.auth);
        *current = new;
        changes
    }

    /// The settings in force.
    pub fn settings(&self) -> LimitSettings {
        *self.current.lock().expect("not poisoned")
    }

    /// Takes a place for a session from `client`, or says which limit is reached.
    pub fn admit(self: &Arc<Self>, client: Option<IpAddr>) -> Result<Slot, Over> {
        let n = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        let max = self.max_sessions.load(Ordering::Relaxed);
        if n > max {
            self.active.fetch_sub(1, Ordering::Relaxed);
            return Err(self.refuse(Over::Sessions(max)));
        }
        let max = self.max_per_client.load(Ordering::Relaxed);
        let tracked = match client {
            Some(ip) if max != NONE => {
                let mut map = self.per_client.lock().expect("not poisoned");
                let count = map.entry(ip).or_insert(0);
                if *count >= max {
                    if *count == 0 {
                        map.remove(&ip);
                    }
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
        if let Some(suppressed) = self.log.allow_counted() {
            tracing::warn!(
                suppressed,
                "connection refused: {over} ({total} refused so far)"
            );
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

    #[test]
    fn a_reload_changes_limits_for_new_sessions_and_reports_what_changed() {
        let limits = Limits::new(Some(1), None);
        let open = limits.admit(None).unwrap();
        assert!(limits.admit(None).is_err());
        let mut new = limits.settings();
        new.max_sessions = Some(2);
        new.idle_timeout = Some(Duration::from_secs(30));
        let changes = limits.reload(new);
        assert_eq!(
            changes,
            vec!["max-sessions: 1 -> 2", "idle-timeout: off -> 30s"]
        );
        assert_eq!(limits.idle.get(), Some(Duration::from_secs(30)));
        let second = limits.admit(None).unwrap();
        // Lowered below the open sessions: they stay, new ones wait.
        new.max_sessions = Some(1);
        limits.reload(new);
        assert!(limits.admit(None).is_err());
        drop((open, second));
        assert!(limits.admit(None).is_ok());
        assert!(limits.reload(new).is_empty());
    }
}
