//! Per-shard counters: each shard writes only its own cache line, readers sum on demand.
//!
//! No locks and no shared writes on the hot path: a shard bumps its own relaxed atomics;
//! `Stats::total` adds them up for reports (the shutdown summary, `deskrelay info`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one shard. Aligned to keep shards off each other's cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ShardStats {
    pub accepted: AtomicU64,
    pub active: AtomicU64,
    pub closed: AtomicU64,
    pub bytes_client_to_backend: AtomicU64,
    pub bytes_backend_to_client: AtomicU64,
    pub backend_connect_failures: AtomicU64,
    pub accept_errors: AtomicU64,
    pub session_errors: AtomicU64,
    /// Directions that moved to the splice path (auto or forced).
    pub splice_switches: AtomicU64,
    /// Directions that wanted a pipe and got none (pool exhausted or pipe creation failed).
    pub pipe_shortages: AtomicU64,
    /// Connections closed because they sent nothing recognisable in time.
    pub sniff_timeouts: AtomicU64,
    /// Connections turned away by --max-sessions or --max-sessions-per-client.
    pub limit_refusals: AtomicU64,
    /// xpra clients that did not finish their login within --pre-auth-timeout.
    pub login_timeouts: AtomicU64,
    /// Logins refused because their address or user is blocked after failed logins.
    pub auth_throttled: AtomicU64,
    /// Sessions closed by --idle-timeout.
    pub idle_timeouts: AtomicU64,
    /// WebSocket upgrades with a `?token=` the tokens file knows.
    pub ws_token_successes: AtomicU64,
    /// WebSocket upgrades refused for an unknown or empty token.
    pub ws_token_failures: AtomicU64,
}

impl ShardStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// A sum over shards, for reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub accepted: u64,
    pub active: u64,
    pub closed: u64,
    pub bytes_client_to_backend: u64,
    pub bytes_backend_to_client: u64,
    pub backend_connect_failures: u64,
    pub accept_errors: u64,
    pub session_errors: u64,
    pub splice_switches: u64,
    pub pipe_shortages: u64,
    pub sniff_timeouts: u64,
    pub limit_refusals: u64,
    pub login_timeouts: u64,
    pub ws_token_successes: u64,
    pub ws_token_failures: u64,
    pub auth_throttled: u64,
    pub idle_timeouts: u64,
}

/// The counters of every shard, indexed by shard id.
#[derive(Debug)]
pub struct Stats {
    shards: Vec<ShardStats>,
}

impl Stats {
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards).map(|_| ShardStats::default()).collect(),
        }
    }

    pub fn shard(&self, id: usize) -> &ShardStats {
        &self.shards[id]
    }

    pub fn total(&self) -> Totals {
        sum(&self.shards)
    }

    /// Shard `id`'s own counters.
    pub fn shard_totals(&self, id: usize) -> Totals {
        sum(std::slice::from_ref(&self.shards[id]))
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }
}

fn sum(shards: &[ShardStats]) -> Totals {
    let mut t = Totals::default();
    for s in shards {
        t.accepted += s.accepted.load(Relaxed);
        t.active += s.active.load(Relaxed);
        t.closed += s.closed.load(Relaxed);
        t.bytes_client_to_backend += s.bytes_client_to_backend.load(Relaxed);
        t.bytes_backend_to_client += s.bytes_backend_to_client.load(Relaxed);
        t.backend_connect_failures += s.backend_connect_failures.load(Relaxed);
        t.accept_errors += s.accept_errors.load(Relaxed);
        t.session_errors += s.session_errors.load(Relaxed);
        t.splice_switches += s.splice_switches.load(Relaxed);
        t.pipe_shortages += s.pipe_shortages.load(Relaxed);
        t.sniff_timeouts += s.sniff_timeouts.load(Relaxed);
        t.limit_refusals += s.limit_refusals.load(Relaxed);
        t.login_timeouts += s.login_timeouts.load(Relaxed);
        t.ws_token_successes += s.ws_token_successes.load(Relaxed);
        t.ws_token_failures += s.ws_token_failures.load(Relaxed);
        t.auth_throttled += s.auth_throttled.load(Relaxed);
        t.idle_timeouts += s.idle_timeouts.load(Relaxed);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_every_shard() {
        let stats = Stats::new(3);
        ShardStats::add(&stats.shard(0).accepted, 2);
        ShardStats::add(&stats.shard(2).accepted, 5);
        ShardStats::add(&stats.shard(1).bytes_client_to_backend, 7);
        ShardStats::add(&stats.shard(1).auth_throttled, 1);
        ShardStats::add(&stats.shard(2).idle_timeouts, 3);
        let t = stats.total();
        assert_eq!((t.auth_throttled, t.idle_timeouts), (1, 3));
        assert_eq!(t.accepted, 7);
        assert_eq!(t.bytes_client_to_backend, 7);
    }
}
