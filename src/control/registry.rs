//! The session registry: the live sessions of every shard, for `deskrelay info` and `list`,
//! and the session start and end log lines.
//!
//! A shard registers a connection once it is admitted and holds the [`Registration`] for the
//! connection's life; dropping it (every exit path, cancellation at the drain deadline
//! included) removes the entry and, for a session that got as far as its backend, writes the
//! `session end` line; [`Registry::cut`] does the same for sessions still open when a shard
//! stops at its drain deadline (their tasks are never dropped). Each shard has its own table behind its own mutex: the shard takes it
//! twice per session (register, remove), the control thread only while it copies the list.
//! Bytes are counted by [`ByteTally`]: relaxed atomics written only by the owning shard, so
//! the data path takes no lock and another thread reads them at any time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::stats::ShardStats;

/// The door a session went through, as far as it is known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    /// L4 forwarding to `--forward`.
    L4,
    /// Its first bytes are still being read.
    Sniffing,
    /// The xpra door (over TCP, TLS, WebSocket).
    Xpra,
    /// HTTP: pages from the web root.
    Http,
    /// A raw WebSocket target by `?token=`.
    Token,
    /// Relayed to `--fallback`.
    Fallback,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::L4 => "l4",
            Door::Sniffing => "sniffing",
            Door::Xpra => "xpra",
            Door::Http => "http",
            Door::Token => "token",
            Door::Fallback => "fallback",
        }
    }
}

/// What is learned about a session as it goes through its door.
#[derive(Debug, Clone)]
struct Labels {
    door: Door,
    tls: bool,
    websocket: bool,
    user: Option<String>,
    target: Option<String>,
    /// The backend was reached: the session has start and end log lines.
    established: bool,
    /// Its end line is written (once).
    ended: bool,
    reason: Option<String>,
}

/// One live session, shared with the control thread.
#[derive(Debug)]
pub struct SessionEntry {
    pub id: u64,
    pub shard: usize,
    /// The client: from a trusted PROXY header, else the socket's peer.
    pub client: Option<SocketAddr>,
    accepted: Instant,
    accepted_at: SystemTime,
    /// Written by the owning shard only (see [`ByteTally`]).
    to_backend: AtomicU64,
    to_client: AtomicU64,
    labels: Mutex<Labels>,
}

/// A copy of one session, as `deskrelay list` shows it (the JSON schema of its entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: u64,
    pub shard: usize,
    pub door: Door,
    pub tls: bool,
    pub websocket: bool,
    pub user: Option<String>,
    pub target: Option<String>,
    pub client: Option<String>,
    pub bytes_to_backend: u64,
    pub bytes_to_client: u64,
    /// Seconds since the connection was accepted.
    pub age_secs: f64,
    /// When it was accepted, seconds since the Unix epoch.
    pub started_unix: f64,
}

impl SessionView {
    /// The door and its layers, e.g. `xpra/ws/tls`.
    pub fn protocol(&self) -> String {
        protocol(self.door, self.websocket, self.tls)
    }
}

fn protocol(door: Door, websocket: bool, tls: bool) -> String {
    let mut s = door.as_str().to_string();
    if websocket && door != Door::Token {
        s.push_str("/ws");
    }
    if tls {
        s.push_str("/tls");
    }
    s
}

impl SessionEntry {
    fn labels(&self) -> MutexGuard<'_, Labels> {
        // A panic while holding it leaves plain data behind: still readable.
        self.labels.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn view(&self) -> SessionView {
        let l = self.labels().clone();
        SessionView {
            id: self.id,
            shard: self.shard,
            door: l.door,
            tls: l.tls,
            websocket: l.websocket,
            user: l.user,
            target: l.target,
            client: self.client.map(|a| a.to_string()),
            bytes_to_backend: self.to_backend.load(Relaxed),
            bytes_to_client: self.to_client.load(Relaxed),
            age_secs: self.accepted.elapsed().as_secs_f64(),
            started_unix: self
                .accepted_at
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// Bytes moved in one direction: the shard's counter and the session's.
#[derive(Debug, Clone, Copy)]
pub struct ByteTally<'a> {
    shard: &'a AtomicU64,
    session: &'a AtomicU64,
}

impl ByteTally<'_> {
    /// Counts `n` bytes. The session counter has one writer (its shard), so a load and a
    /// store do: no locked instruction for it on the data path.
    #[inline]
    pub fn add(&self, n: u64) {
        ShardStats::add(self.shard, n);
        self.session.store(self.session.load(Relaxed) + n, Relaxed);
    }

    /// The session's bytes in this direction so far.
    pub fn session_bytes(&self) -> u64 {
        self.session.load(Relaxed)
    }
}

/// A session as its shard's code sees it: where to count, what to record.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    pub entry: &'a SessionEntry,
    pub stats: &'a ShardStats,
}

impl<'a> Live<'a> {
    pub fn shard(&self) -> usize {
        self.entry.shard
    }

    /// Client -> backend bytes.
    pub fn to_backend(&self) -> ByteTally<'a> {
        ByteTally {
            shard: &self.stats.bytes_client_to_backend,
            session: &self.entry.to_backend,
        }
    }

    /// Backend -> client bytes.
    pub fn to_client(&self) -> ByteTally<'a> {
        ByteTally {
            shard: &self.stats.bytes_backend_to_client,
            session: &self.entry.to_client,
        }
    }

    pub fn set_door(&self, door: Door) {
        self.entry.labels().door = door;
    }

    pub fn set_tls(&self) {
        self.entry.labels().tls = true;
    }

    pub fn set_websocket(&self) {
        self.entry.labels().websocket = true;
    }

    pub fn set_user(&self, user: Option<&str>) {
        self.entry.labels().user = user.map(str::to_string);
    }

    pub fn set_target(&self, target: impl ToString) {
        self.entry.labels().target = Some(target.to_string());
    }

    /// The backend is reached: writes the `session start` line (once).
    pub fn established(&self) {
        let l = {
            let mut l = self.entry.labels();
            if l.established {
                return;
            }
            l.established = true;
            l.clone()
        };
        tracing::info!(
            session = self.entry.id,
            shard = self.entry.shard,
            door = %protocol(l.door, l.websocket, l.tls),
            client = %client_text(self.entry.client),
            user = l.user.as_deref().unwrap_or("-"),
            target = l.target.as_deref().unwrap_or("-"),
            "session start"
        );
    }

    /// Why the session ended, for its end line (the first reason given wins).
    pub fn set_reason(&self, reason: impl Into<String>) {
        let mut l = self.entry.labels();
        if l.reason.is_none() {
            l.reason = Some(reason.into());
        }
    }
}

fn client_text(client: Option<SocketAddr>) -> String {
    client.map_or_else(|| "-".into(), |a| a.to_string())
}

/// The live sessions of one shard.
#[derive(Debug, Default)]
struct Table {
    next: u64,
    live: HashMap<u64, Arc<SessionEntry>>,
}

/// The live sessions of every shard.
#[derive(Debug)]
pub struct Registry {
    shards: Vec<Mutex<Table>>,
}

impl Registry {
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
        }
    }

    fn table(&self, shard: usize) -> MutexGuard<'_, Table> {
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an admitted connection of `shard`; it stays listed until the returned
    /// registration is dropped.
    pub fn register(
        &self,
        shard: usize,
        client: Option<SocketAddr>,
        door: Door,
    ) -> Registration<'_> {
        let mut table = self.table(shard);
        // Unique over all shards without a shared counter.
        let id = table.next * self.shards.len() as u64 + shard as u64 + 1;
        table.next += 1;
        let entry = Arc::new(SessionEntry {
            id,
            shard,
            client,
            accepted: Instant::now(),
            accepted_at: SystemTime::now(),
            to_backend: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            labels: Mutex::new(Labels {
                door,
                tls: false,
                websocket: false,
                user: None,
                target: None,
                established: false,
                ended: false,
                reason: None,
            }),
        });
        table.live.insert(id, Arc::clone(&entry));
        Registration {
            registry: self,
            entry,
        }
    }

    /// Live sessions of each shard.
    pub fn counts(&self) -> Vec<usize> {
        (0..self.shards.len())
            .map(|s| self.table(s).live.len())
            .collect()
    }

    /// Unlists every session `shard` still has, writing their end lines with `reason`: for
    /// sessions whose tasks never finish (cut at the drain deadline).
    pub fn cut(&self, shard: usize, reason: &str) {
        let left: Vec<Arc<SessionEntry>> = self.table(shard).live.drain().map(|(_, e)| e).collect();
        for entry in left {
            entry
                .labels()
                .reason
                .get_or_insert_with(|| reason.to_string());
            log_end(&entry);
        }
    }

    /// Every live session, oldest first.
    pub fn sessions(&self) -> Vec<SessionView> {
        let mut entries: Vec<Arc<SessionEntry>> = Vec::new();
        for s in 0..self.shards.len() {
            entries.extend(self.table(s).live.values().cloned());
        }
        // Views are taken outside the shard locks.
        let mut views: Vec<SessionView> = entries.iter().map(|e| e.view()).collect();
        views.sort_by(|a, b| b.age_secs.total_cmp(&a.age_secs).then(a.id.cmp(&b.id)));
        views
    }
}

/// A registered session; dropping it unlists the session and logs its end.
#[derive(Debug)]
pub struct Registration<'r> {
    registry: &'r Registry,
    entry: Arc<SessionEntry>,
}

impl Registration<'_> {
    pub fn live<'a>(&'a self, stats: &'a ShardStats) -> Live<'a> {
        Live {
            entry: &self.entry,
            stats,
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry
            .table(self.entry.shard)
            .live
            .remove(&self.entry.id);
        log_end(&self.entry);
    }
}

/// The `session end` line of an established session, once.
fn log_end(e: &SessionEntry) {
    let l = {
        let mut l = e.labels();
        if !l.established || l.ended {
            return;
        }
        l.ended = true;
        l.clone()
    };
    tracing::info!(
        session = e.id,
        shard = e.shard,
        door = %protocol(l.door, l.websocket, l.tls),
        client = %client_text(e.client),
        user = l.user.as_deref().unwrap_or("-"),
        target = l.target.as_deref().unwrap_or("-"),
        to_backend = e.to_backend.load(Relaxed),
        to_client = e.to_client.load(Relaxed),
        secs = e.accepted.elapsed().as_secs_f64(),
        reason = l.reason.as_deref().unwrap_or("closed"),
        "session end"
    );
}

#[cfg(test)]
mod tests;
