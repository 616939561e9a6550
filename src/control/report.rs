//! What the control socket answers: the JSON schema of `info`, `list` and `stop` (serde
//! types, shared by the relay that writes them and the `deskrelay` commands that read them),
//! and how a running relay fills them in.
//!
//! The schema is stable: `schema` is 1; fields may be added, none renamed or removed without
//! a new `schema` number. Byte counts are integers, times are seconds as floats, an unknown
//! user, target or client address is `null`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::registry::{Registry, SessionView};
use super::stats::{Stats, Totals};
use crate::front::xpra::XpraDoor;

/// The schema version of every answer.
pub const SCHEMA: u32 = 1;

/// `info`: the relay as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    pub schema: u32,
    pub version: String,
    pub pid: u32,
    pub uptime_secs: f64,
    /// Live sessions (connections admitted and not yet closed), all shards.
    pub sessions: u64,
    pub bytes_to_backend: u64,
    pub bytes_to_client: u64,
    pub shards: Vec<ShardInfo>,
    pub data_path: DataPathInfo,
    pub auth: AuthInfo,
    pub errors: ErrorInfo,
}

/// One shard's share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub shard: usize,
    pub sessions: u64,
    pub accepted: u64,
    pub bytes_to_backend: u64,
    pub bytes_to_client: u64,
}

/// The data path's settings and what it chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPathInfo {
    /// `--data-path`: auto, copy or splice.
    pub mode: String,
    /// `--splice-via`: syscall or ring.
    pub splice_via: String,
    /// Directions that moved to the splice path.
    pub splice_switches: u64,
    /// Directions that wanted a pipe and got none.
    pub pipe_shortages: u64,
}

/// Authentication outcomes at each door that checks something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthInfo {
    pub xpra_successes: u64,
    pub xpra_failures: u64,
    pub ws_token_successes: u64,
    pub ws_token_failures: u64,
}

/// Errors by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub accept: u64,
    pub backend_connect: u64,
    pub session: u64,
    pub sniff_timeouts: u64,
    pub limit_refusals: u64,
    /// Added in schema 1's lifetime: absent from older relays' answers.
    #[serde(default)]
    pub login_timeouts: u64,
}

/// `list`: every live session, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List {
    pub schema: u32,
    pub sessions: Vec<SessionView>,
}

/// `stop`: the relay drains and exits, like on SIGTERM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stopping {
    pub schema: u32,
    pub stopping: bool,
    /// Sessions open when the stop was asked for (they get `--drain-timeout`).
    pub sessions: u64,
}

/// An answer to a request the relay could not serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub schema: u32,
    pub error: String,
}

/// What a running relay reports from.
#[derive(Debug)]
pub struct Sources {
    pub stats: Arc<Stats>,
    pub registry: Arc<Registry>,
    pub started: Instant,
    pub data_path: String,
    pub splice_via: String,
    pub xpra: Option<Arc<XpraDoor>>,
}

impl Sources {
    pub fn info(&self) -> Info {
        let t: Totals = self.stats.total();
        let live = self.registry.counts();
        let shards = (0..self.stats.shards())
            .map(|id| {
                let s = self.stats.shard_totals(id);
                ShardInfo {
                    shard: id,
                    sessions: live.get(id).copied().unwrap_or(0) as u64,
                    accepted: s.accepted,
                    bytes_to_backend: s.bytes_client_to_backend,
                    bytes_to_client: s.bytes_backend_to_client,
                }
            })
            .collect();
        let (xpra_successes, xpra_failures) = self.xpra.as_ref().map_or((0, 0), |door| {
            (
                door.auth_successes.load(Relaxed),
                door.auth_failures.load(Relaxed),
            )
        });
        Info {
            schema: SCHEMA,
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs_f64(),
            sessions: live.iter().sum::<usize>() as u64,
            bytes_to_backend: t.bytes_client_to_backend,
            bytes_to_client: t.bytes_backend_to_client,
            shards,
            data_path: DataPathInfo {
                mode: self.data_path.clone(),
                splice_via: self.splice_via.clone(),
                splice_switches: t.splice_switches,
                pipe_shortages: t.pipe_shortages,
            },
            auth: AuthInfo {
                xpra_successes,
                xpra_failures,
                ws_token_successes: t.ws_token_successes,
                ws_token_failures: t.ws_token_failures,
            },
            errors: ErrorInfo {
                accept: t.accept_errors,
                backend_connect: t.backend_connect_failures,
                session: t.session_errors,
                sniff_timeouts: t.sniff_timeouts,
                limit_refusals: t.limit_refusals,
                login_timeouts: t.login_timeouts,
            },
        }
    }

    pub fn list(&self) -> List {
        List {
            schema: SCHEMA,
            sessions: self.registry.sessions(),
        }
    }
}
