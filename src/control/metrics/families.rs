//! What `/metrics` shows: every per-shard counter, the gauges, the histograms.
//!
//! A counter of [`ShardStats`] is one row of [`SHARD_COUNTERS`]; rows that share a name form
//! one family and differ by their extra labels. A test checks that every field of
//! `ShardStats` is shown, so a counter added there without a row here fails the build's
//! tests.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::exposition::{Exposition, Kind};
use super::process::Process;
use super::Metrics;
use crate::control::stats::ShardStats;

/// One per-shard counter or gauge, shown as `name{shard="N",labels...}`.
pub struct ShardRow {
    pub name: &'static str,
    pub help: &'static str,
    /// Labels besides `shard`, to tell rows of one family apart.
    pub labels: &'static [(&'static str, &'static str)],
    pub get: fn(&ShardStats) -> &AtomicU64,
}

/// Every per-shard counter. To show a new one: a row (`get` names its field).
pub const SHARD_COUNTERS: &[ShardRow] = &[
    ShardRow {
        name: "deskrelay_connections_accepted_total",
        help: "Connections accepted (before admission limits).",
        labels: &[],
        get: |s| &s.accepted,
    },
    ShardRow {
        name: "deskrelay_sessions_closed_total",
        help: "Admitted sessions that have ended.",
        labels: &[],
        get: |s| &s.closed,
    },
    ShardRow {
        name: "deskrelay_relayed_bytes_total",
        help: "Bytes relayed, by direction.",
        labels: &[("direction", "client_to_backend")],
        get: |s| &s.bytes_client_to_backend,
    },
    ShardRow {
        name: "deskrelay_relayed_bytes_total",
        help: "Bytes relayed, by direction.",
        labels: &[("direction", "backend_to_client")],
        get: |s| &s.bytes_backend_to_client,
    },
    ShardRow {
        name: "deskrelay_backend_connect_failures_total",
        help: "Backend connects that failed or timed out.",
        labels: &[],
        get: |s| &s.backend_connect_failures,
    },
    ShardRow {
        name: "deskrelay_accept_errors_total",
        help: "Errors from accept (descriptor exhaustion and the like).",
        labels: &[],
        get: |s| &s.accept_errors,
    },
    ShardRow {
        name: "deskrelay_session_errors_total",
        help: "Sessions ended by an error or refused at the door.",
        labels: &[],
        get: |s| &s.session_errors,
    },
    ShardRow {
        name: "deskrelay_splice_switches_total",
        help: "Directions that moved to the splice path.",
        labels: &[],
        get: |s| &s.splice_switches,
    },
    ShardRow {
        name: "deskrelay_pipe_shortages_total",
        help: "Directions that wanted a pipe and got none (they copied).",
        labels: &[],
        get: |s| &s.pipe_shortages,
    },
    ShardRow {
        name: "deskrelay_sniff_timeouts_total",
        help: "Connections closed for sending nothing recognisable in time.",
        labels: &[],
        get: |s| &s.sniff_timeouts,
    },
    ShardRow {
        name: "deskrelay_limit_refusals_total",
        help: "Connections turned away by --max-sessions or --max-sessions-per-client.",
        labels: &[],
        get: |s| &s.limit_refusals,
    },
    ShardRow {
        name: "deskrelay_login_timeouts_total",
        help: "xpra clients that did not finish their login within --pre-auth-timeout.",
        labels: &[],
        get: |s| &s.login_timeouts,
    },
    ShardRow {
        name: "deskrelay_auth_throttled_total",
        help: "Logins and token requests refused because their address or user failed too often.",
        labels: &[],
        get: |s| &s.auth_throttled,
    },
    ShardRow {
        name: "deskrelay_idle_timeouts_total",
        help: "Sessions closed by --idle-timeout.",
        labels: &[],
        get: |s| &s.idle_timeouts,
    },
    ShardRow {
        name: "deskrelay_ws_token_upgrades_total",
        help: "WebSocket upgrades asking for a ?token=, by outcome.",
        labels: &[("result", "accepted")],
        get: |s| &s.ws_token_successes,
    },
    ShardRow {
        name: "deskrelay_ws_token_upgrades_total",
        help: "WebSocket upgrades asking for a ?token=, by outcome.",
        labels: &[("result", "unknown_token")],
        get: |s| &s.ws_token_failures,
    },
];

/// Per-shard gauges of [`ShardStats`], shown like the counters.
pub const SHARD_GAUGES: &[ShardRow] = &[ShardRow {
    name: "deskrelay_sessions_active",
    help: "Sessions open now.",
    labels: &[],
    get: |s| &s.active,
}];

/// The whole page.
pub fn render(m: &Metrics) -> String {
    let mut e = Exposition::new();
    per_shard(&mut e, m, SHARD_COUNTERS, Kind::Counter);
    per_shard(&mut e, m, SHARD_GAUGES, Kind::Gauge);
    let t = &m.timings;
    e.histogram(
        "deskrelay_session_duration_seconds",
        "Sessions from admission to close.",
        &t.total(|s| &s.session),
    );
    e.histogram(
        "deskrelay_backend_connect_seconds",
        "Successful backend TCP connects.",
        &t.total(|s| &s.connect),
    );
    e.histogram(
        "deskrelay_xpra_handshake_seconds",
        "xpra clients from their hello to relaying (authentication, session choice, \
         backend connect and hello).",
        &t.total(|s| &s.xpra_handshake),
    );
    process(&mut e, m);
    e.finish()
}

fn per_shard(e: &mut Exposition, m: &Metrics, rows: &[ShardRow], kind: Kind) {
    let ids: Vec<String> = (0..m.shards).map(|i| i.to_string()).collect();
    let mut previous = None;
    for row in rows {
        if previous != Some(row.name) {
            e.family(row.name, kind, row.help);
            previous = Some(row.name);
        }
        for (id, shard) in ids.iter().enumerate() {
            let mut labels = vec![("shard", shard.as_str())];
            labels.extend_from_slice(row.labels);
            e.sample(
                row.name,
                &labels,
                (row.get)(m.stats.shard(id)).load(Relaxed),
            );
        }
    }
}

fn process(e: &mut Exposition, m: &Metrics) {
    e.family(
        "deskrelay_build_info",
        Kind::Gauge,
        "The running build; always 1.",
    );
    e.sample(
        "deskrelay_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1u64,
    );
    e.family(
        "deskrelay_uptime_seconds",
        Kind::Gauge,
        "Seconds since the relay started.",
    );
    e.sample(
        "deskrelay_uptime_seconds",
        &[],
        m.started.elapsed().as_secs_f64(),
    );
    // The names every Prometheus client library's process collector uses.
    e.family(
        "process_start_time_seconds",
        Kind::Gauge,
        "Start of the relay, seconds since the Unix epoch.",
    );
    e.sample("process_start_time_seconds", &[], m.started_unix);
    let p = Process::read();
    let gauges: [(&str, &str, Option<u64>); 3] = [
        ("process_open_fds", "Open file descriptors.", p.open_fds),
        (
            "process_max_fds",
            "Most open file descriptors allowed (soft limit).",
            p.max_fds,
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory.",
            p.resident_bytes,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(v) = value {
            e.family(name, Kind::Gauge, help);
            e.sample(name, &[], v);
        }
    }
    if let Some(secs) = p.cpu_seconds {
        e.family(
            "process_cpu_seconds_total",
            Kind::Counter,
            "User and system CPU time.",
        );
        e.sample("process_cpu_seconds_total", &[], secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ShardStats`' fields, by name, from its Debug output (`ShardStats { a: 0, b: 0 }`).
    fn fields(s: &ShardStats) -> Vec<(String, u64)> {
        let text = format!("{s:?}");
        let inner = text.split_once('{').unwrap().1.trim_end_matches('}');
        inner
            .split(',')
            .filter(|f| !f.trim().is_empty())
            .map(|f| {
                let (name, value) = f.split_once(':').unwrap();
                (name.trim().to_string(), value.trim().parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn every_shard_stats_field_is_shown_exactly_once() {
        let s = ShardStats::default();
        for row in SHARD_COUNTERS.iter().chain(SHARD_GAUGES) {
            ShardStats::add((row.get)(&s), 1);
        }
        let fields = fields(&s);
        assert!(fields.len() >= 12, "{fields:?}");
        for (name, value) in fields {
            assert_eq!(
                value, 1,
                "ShardStats::{name} has {value} rows in SHARD_COUNTERS/SHARD_GAUGES"
            );
        }
    }

    #[test]
    fn rows_of_one_family_are_adjacent_and_share_their_help() {
        let rows: Vec<_> = SHARD_COUNTERS.iter().chain(SHARD_GAUGES).collect();
        for (i, a) in rows.iter().enumerate() {
            for b in &rows[i + 1..] {
                if a.name == b.name {
                    assert_eq!(a.help, b.help, "{}", a.name);
                    assert_ne!(a.labels, b.labels, "{}", a.name);
                }
            }
            let later = rows[i + 1..].iter().position(|b| b.name == a.name);
            if let Some(j) = later {
                assert!(
                    rows[i + 1..i + 1 + j].iter().all(|b| b.name == a.name),
                    "{} rows are not adjacent",
                    a.name
                );
            }
        }
    }
}
