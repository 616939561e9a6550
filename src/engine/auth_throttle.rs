//! Failed-authentication throttling, shared by every shard (a client's connections land on
//! any shard): after `max_failures` failed logins from one client address, or for one user
//! name, further attempts from that address or for that user are refused for a backoff that
//! doubles with each block (`backoff`, 2x, 4x ... up to `max_backoff`). A success forgets
//! the address and the user; so does `window` without a failure (after any block ended).
//!
//! Refusing outright while blocked, rather than delaying each answer: a delay holds a
//! connection (and a `--max-sessions` place) per attempt while an attacker opens as many in
//! parallel as it likes, so it slows honest clients more than guessers; a count per address
//! and per user bounds the guesses however many connections carry them, and a blocked
//! attempt costs no challenge, no digest and no password-file lookup.
//!
//! The table is one `Mutex`'d map, consulted only at authentication (before the challenge,
//! before checking an answer, after the verdict), never per read or per frame: it is off
//! the data path. Its size is bounded ([`DEFAULT_CAPACITY`] entries, oldest evicted first),
//! so a spray of addresses or user names cannot grow it; user names are kept to their
//! first [`USER_KEY_MAX`] bytes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::log_rate::LogRate;

/// Entries (addresses and user names together) the table holds at most.
pub const DEFAULT_CAPACITY: usize = 8192;
/// Bytes of a user name that identify it in the table.
pub const USER_KEY_MAX: usize = 64;
/// Doublings after which the backoff stops growing (it is capped anyway).
const MAX_LEVEL: u32 = 20;

/// When throttling starts and how long it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failed logins that start a block; 0 switches throttling off.
    pub max_failures: u32,
    /// Quiet time (no failure, no block) after which an address or user is forgotten.
    pub window: Duration,
    /// The first block; each further block doubles it.
    pub backoff: Duration,
    /// The longest block.
    pub max_backoff: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(60),
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(600),
        }
    }
}

impl ThrottleSettings {
    /// The block after `level` earlier ones.
    fn block(&self, level: u32) -> Duration {
        self.backoff
            .saturating_mul(1 << level.min(MAX_LEVEL))
            .min(self.max_backoff)
    }
}

/// What a block is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Address(IpAddr),
    User(Box<str>),
}

impl Subject {
    fn user(name: &str) -> Subject {
        let mut end = name.len().min(USER_KEY_MAX);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        Subject::User(name[..end].into())
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Address(ip) => write!(f, "address {ip}"),
            // Debug quoting: a user name is the client's text.
            Subject::User(u) => write!(f, "user {u:?}"),
        }
    }
}

/// An attempt refused because its address or user is blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub subject: Subject,
    /// Time until the block ends.
    pub retry_after: Duration,
}

impl Blocked {
    /// Whole seconds until the block ends, rounded up (what `Retry-After` says).
    pub fn retry_secs(&self) -> u64 {
        let d = self.retry_after;
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many failed logins for {}; retry in {} s",
            self.subject,
            self.retry_secs()
        )
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    /// Blocks so far (the next one lasts `backoff * 2^level`).
    level: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
    /// Position in `Table::order` (larger: touched more recently).
    seq: u64,
}

impl Entry {
    fn blocked_at(&self, now: Instant) -> Option<Duration> {
        self.blocked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
    }

    /// Quiet (no failure, no block) since when.
    fn quiet_since(&self) -> Instant {
        self.blocked_until
            .map_or(self.last_failure, |b| b.max(self.last_failure))
    }
}

#[derive(Debug)]
struct Table {
    settings: ThrottleSettings,
    entries: HashMap<Subject, Entry>,
    /// `seq` -> subject, oldest first: what is evicted when the table is full.
    order: BTreeMap<u64, Subject>,
    next_seq: u64,
}

impl Table {
    fn touch(&mut self, subject: &Subject) {
        let seq = self.next_seq;
        if let Some(e) = self.entries.get_mut(subject) {
            self.order.remove(&e.seq);
            e.seq = seq;
            self.order.insert(seq, subject.clone());
            self.next_seq += 1;
        }
    }

    fn remove(&mut self, subject: &Subject) {
        if let Some(e) = self.entries.remove(subject) {
            self.order.remove(&e.seq);
        }
    }

    fn entry(&mut self, subject: &Subject, now: Instant, capacity: usize) -> &mut Entry {
        if !self.entries.contains_key(subject) {
            while self.entries.len() >= capacity.max(1) {
                let Some((_, oldest)) = self.order.pop_first() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
            self.entries.insert(
                subject.clone(),
                Entry {
                    failures: 0,
                    level: 0,
                    last_failure: now,
                    blocked_until: None,
                    seq: 0,
                },
            );
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let e = self.entries.get_mut(subject).expect("present");
        if e.seq != 0 {
            self.order.remove(&e.seq);
        }
        e.seq = seq;
        self.order.insert(seq, subject.clone());
        e
    }
}

/// The shared throttle of the xpra door and the WebSocket token door.
#[derive(Debug)]
pub struct AuthThrottle {
    table: Mutex<Table>,
    capacity: usize,
    refused: AtomicU64,
    blocks: AtomicU64,
    refuse_log: LogRate,
    block_log: LogRate,
}

fn subjects(addr: Option<IpAddr>, user: Option<&str>) -> impl Iterator<Item = Subject> {
    addr.map(Subject::Address)
        .into_iter()
        .chain(user.map(Subject::user))
}

impl AuthThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self::with_capacity(settings, DEFAULT_CAPACITY)
    }

    pub fn with_capacity(settings: ThrottleSettings, capacity: usize) -> Self {
        Self {
            table: Mutex::new(Table {
                settings,
                entries: HashMap::new(),
                order: BTreeMap::new(),
                next_seq: 1,
            }),
            capacity,
            refused: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            refuse_log: LogRate::new(),
            block_log: LogRate::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding it leaves a table that is still consistent enough to use.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn settings(&self) -> ThrottleSettings {
        self.lock().settings
    }

    /// New settings (SIGHUP); the addresses and users already counted stay counted.
    pub fn set(&self, settings: ThrottleSettings) {
        self.lock().settings = settings;
    }

    /// Attempts refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Entries in the table now.
    pub fn tracked(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether an attempt from `addr` for `user` may go on; a refusal is counted and logged
    /// (at most a line a second).
    pub fn check(&self, addr: Option<IpAddr>, user: Option<&str>) -> Result<(), Blocked> {
        self.check_at(Instant::now(), addr, user)
    }

    pub fn check_at(
        &self,
        now: Instant,
        addr: Option<IpAddr>,
        user: Option<&str>,
    ) -> Result<(), Blocked> {
        let blocked = {
            let mut table = self.lock();
            if table.settings.max_failures == 0 || table.entries.is_empty() {
                return Ok(());
            }
            let mut found = None;
            for subject in subjects(addr, user) {
                let left = table.entries.get(&subject).and_then(|e| e.blocked_at(now));
                if let Some(left) = left {
                    // Kept fresh: an address still knocking is not the oldest entry.
                    table.touch(&subject);
                    if found
                        .as_ref()
                        .map_or(true, |b: &Blocked| left > b.retry_after)
                    {
                        found = Some(Blocked {
                            subject,
                            retry_after: left,
                        });
                    }
                }
            }
            found
        };
        match blocked {
            None => Ok(()),
            Some(b) => {
                let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                if self.refuse_log.allow() {
                    tracing::warn!("login refused: {b} ({total} refused so far)");
                }
                Err(b)
            }
        }
    }

    /// Records a failed login from `addr` for `user`; may start a block (logged at most a
    /// line a second).
    pub fn failed(&self, addr: Option<IpAddr>, user: Option<&str>) {
        self.failed_at(Instant::now(), addr, user)
    }

    pub fn failed_at(&self, now: Instant, addr: Option<IpAddr>, user: Option<&str>) {
        let mut started = Vec::new();
        {
            let mut table = self.lock();
            let s = table.settings;
            if s.max_failures == 0 {
                return;
            }
            for subject in subjects(addr, user) {
                let e = table.entry(&subject, now, self.capacity);
                if e.blocked_at(now).is_none() && now.duration_since(e.quiet_since()) >= s.window {
                    e.failures = 0;
                    e.level = 0;
                }
                e.failures = e.failures.saturating_add(1);
                e.last_failure = now;
                if e.failures >= s.max_failures && e.blocked_at(now).is_none() {
                    let block = s.block(e.level);
                    e.blocked_until = Some(now + block);
                    e.level = (e.level + 1).min(MAX_LEVEL);
                    started.push((subject, block, e.failures));
                }
            }
        }
        for (subject, block, failures) in started {
            let total = self.blocks.fetch_add(1, Ordering::Relaxed) + 1;
            if self.block_log.allow() {
                tracing::warn!(
                    "{subject} blocked for {} s after {failures} failed logins ({total} blocks so far)",
                    block.as_secs_f64()
                );
            }
        }
    }

    /// A successful login: the address and the user are forgotten.
    pub fn succeeded(&self, addr: Option<IpAddr>, user: Option<&str>) {
        let mut table = self.lock();
        if table.entries.is_empty() {
            return;
        }
        for subject in subjects(addr, user) {
            table.remove(&subject);
        }
    }
}

#[cfg(test)]
#[path = "auth_throttle_tests.rs"]
mod tests;
