//! `--metrics ADDR`: Prometheus text exposition (format 0.0.4) of the shards' counters, a
//! few gauges and duration histograms, on a listener of its own.
//!
//! - [`timings`]: the per-shard histograms (session duration, backend connect, xpra
//!   handshake) and the calls that record into the current shard's.
//! - [`families`]: what the page shows; a new [`ShardStats`](crate::control::stats::ShardStats)
//!   counter is one row there.
//! - [`exposition`]: the text format. [`process`]: `/proc/self` figures.
//! - [`server`]: the listener, std threads outside the shards.
//!
//! Hand-written rather than a crate: the counters already exist as per-shard atomics
//! (`control/stats.rs`) and the histograms are the same thing (relaxed atomic buckets per
//! shard, added up at scrape time). `prometheus-client` and `prometheus` would wrap them
//! in their own registries (prometheus-client's histogram takes a lock per observation),
//! `metrics` adds a global recorder with string-keyed handles and its exporter an HTTP
//! server on tokio. What is left to write is the text format, about a hundred lines, which
//! the integration test checks against an independent parser (the Python client library's).

pub mod exposition;
pub mod families;
pub mod process;
pub mod server;
pub mod timings;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::control::stats::Stats;
pub use server::MetricsServer;
pub use timings::{backend_connected, session_ended, xpra_joined, Timings};

/// Everything a scrape reads.
#[derive(Debug)]
pub struct Metrics {
    pub stats: Arc<Stats>,
    /// Number of shards in `stats`.
    pub shards: usize,
    pub timings: Arc<Timings>,
    pub started: Instant,
    /// `started` as seconds since the Unix epoch.
    pub started_unix: f64,
}

impl Metrics {
    /// Metrics of a relay starting now.
    pub fn new(stats: Arc<Stats>, shards: usize, timings: Arc<Timings>) -> Self {
        Self {
            stats,
            shards,
            timings,
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }

    /// The page `GET /metrics` answers.
    pub fn render(&self) -> String {
        families::render(self)
    }
}
