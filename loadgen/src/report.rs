//! The report: built from merged metrics, printed for people, written as JSON for tools.
//! The JSON schema (version 1) is documented in loadgen/README.md; keys are only added.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The whole report (`--json`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    pub config: RunConfig,
    pub sessions: Sessions,
    pub handshakes: Handshakes,
    pub upstream: Direction,
    pub downstream: Direction,
    pub errors: Errors,
    pub resources: Resources,
}

/// What was run.
#[derive(Debug, Serialize)]
pub struct RunConfig {
    /// `--label`, else the mode.
    pub label: String,
    pub profile: String,
    pub protocol: String,
    /// "child" (loadgen started deskrelay), "external" (`--target`) or "direct".
    pub mode: String,
    pub target: String,
    pub backend: String,
    /// The started relay's `--shards` and `--data-path` ("child" mode only).
    pub relay_shards: Option<usize>,
    pub relay_data_path: Option<String>,
    pub workers: usize,
    pub sessions: u32,
    pub ramp_per_sec: f64,
    pub duration_s: f64,
    /// Wall time from the first connect to the end of the last session.
    pub elapsed_s: f64,
    /// `--max-handshakes` (handshake profile), null when not given.
    pub max_handshakes: Option<u64>,
    /// `--saturate` (bulk): senders wrote back to back, not on a schedule.
    pub saturate: bool,
}

#[derive(Debug, Serialize)]
pub struct Sessions {
    pub opened: u64,
    pub failed: u64,
    pub failed_reasons: BTreeMap<String, u64>,
    /// TCP connect to the target.
    pub connect_us: Percentiles,
    /// The protocol's set-up after connect (raw: the hello write).
    pub handshake_us: Percentiles,
}

/// Protocol handshakes (connect excluded): the point of the handshake profile, where every
/// session opens and closes connections over and over; elsewhere one per session.
#[derive(Debug, Serialize)]
pub struct Handshakes {
    /// Set-ups completed (equal to `sessions.opened`).
    pub completed: u64,
    /// Set-ups that failed (equal to `sessions.failed`).
    pub failed: u64,
    /// completed / elapsed_s.
    pub per_sec: f64,
    /// completed / relay CPU seconds (all its threads), when the relay is measured.
    pub per_relay_cpu_s: Option<f64>,
}

/// One direction: what receivers verified (latency = arrival - due time).
#[derive(Debug, Serialize)]
pub struct Direction {
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages: u64,
    pub bytes: u64,
    pub throughput_mbit_s: f64,
    pub messages_per_s: f64,
    pub latency_us: Percentiles,
    /// Latency by percentile, for plots: HdrHistogram's percentile iteration (5 ticks per
    /// half distance).
    pub distribution: Vec<Point>,
    /// The merged histogram itself (ns), for `--hgrm`.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

/// One point of a latency distribution.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Point {
    /// 0 to 100.
    pub percentile: f64,
    pub latency_us: f64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Serialize)]
pub struct Errors {
    /// Verification and I/O errors plus sent/received mismatches.
    pub total: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub samples: Vec<String>,
}

/// What the run cost: loadgen itself, and the relay when loadgen started it or was given its
/// pid (the relay's whole process tree).
#[derive(Debug, Serialize)]
pub struct Resources {
    pub loadgen_cpu_s: Option<f64>,
    pub loadgen_peak_rss_bytes: Option<u64>,
    pub relay: Option<RelayUsage>,
}

/// The relay's CPU time and memory during the run.
#[derive(Debug, Serialize)]
pub struct RelayUsage {
    pub pid: u32,
    /// CPU seconds used from the first connect to the end of the last session.
    pub cpu_s: f64,
    /// Resident memory with the relay started and no session open.
    pub rss_before_bytes: u64,
    /// Highest resident memory seen during the run (sampled every 100 ms, and the kernel's
    /// high-water mark of the main process).
    pub peak_rss_bytes: u64,
    /// (peak - before) / sessions opened.
    pub rss_per_session_bytes: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
        if h.is_empty() {
            return Self {
                count: 0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                p99_99: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Self {
            count: h.len(),
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            p99_99: us(h.value_at_quantile(0.9999)),
            max: us(h.max()),
            mean: us(h.mean() as u64),
        }
    }

    fn line(&self) -> String {
        format!(
            "p50 {} | p90 {} | p99 {} | p99.9 {} | p99.99 {} | max {} (us)",
            self.p50, self.p90, self.p99, self.p99_9, self.p99_99, self.max
        )
    }
}

impl Point {
    /// Latency by percentile of `h` (values in ns), as HdrHistogram's plotter draws it.
    pub fn distribution(h: &Histogram<u64>) -> Vec<Point> {
        if h.is_empty() {
            return Vec::new();
        }
        h.iter_quantiles(5)
            .map(|v| Point {
                percentile: v.quantile_iterated_to() * 100.0,
                latency_us: h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0,
            })
            .collect()
    }
}

impl Report {
    /// True when the run is clean: every session opened, no errors.
    pub fn ok(&self) -> bool {
        self.sessions.failed == 0 && self.errors.total == 0
    }

    /// The human-readable form.
    pub fn text(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let _ = writeln!(s, "loadgen report");
        let _ = writeln!(
            s,
            "  run        profile {}, protocol {}, {} sessions, ramp {}/s, {} s of traffic, {:.2} s elapsed, {} workers",
            c.profile, c.protocol, c.sessions, c.ramp_per_sec, c.duration_s, c.elapsed_s, c.workers
        );
        if c.saturate {
            let _ = writeln!(
                s,
                "             saturating: back-to-back sends, latency measured from each write"
            );
        }
        let relay = match c.mode.as_str() {
            "child" => format!(
                "deskrelay (child process, {} shards, data path {}) at {}",
                c.relay_shards
                    .map_or("all CPUs".to_string(), |n| n.to_string()),
                c.relay_data_path.as_deref().unwrap_or("auto"),
                c.target
            ),
            "direct" => "none (--direct: clients connect straight to the backends)".into(),
            _ => format!("external relay at {}", c.target),
        };
        let _ = writeln!(s, "  relay      {relay}; backends listen on {}", c.backend);
        let ss = &self.sessions;
        let _ = writeln!(s, "  sessions   opened {}, failed {}", ss.opened, ss.failed);
        for (reason, n) in &ss.failed_reasons {
            let _ = writeln!(s, "             failed: {reason} x{n}");
        }
        let _ = writeln!(s, "  connect    {}", ss.connect_us.line());
        let _ = writeln!(s, "  handshake  {}", ss.handshake_us.line());
        if c.profile == "handshake" || c.protocol != "raw" {
            let h = &self.handshakes;
            let _ = writeln!(
                s,
                "  handshakes {} completed, {} failed, {:.0}/s, {} per relay CPU-second",
                h.completed,
                h.failed,
                h.per_sec,
                h.per_relay_cpu_s
                    .map_or("n/a".to_string(), |v| format!("{v:.0}"))
            );
        }
        for (name, d) in [
            ("upstream", &self.upstream),
            ("downstream", &self.downstream),
        ] {
            let _ = writeln!(
                s,
                "  {name:<10} {} msgs ({} sent), {:.1} MB, {:.1} Mbit/s, {:.0} msg/s",
                d.messages,
                d.messages_sent,
                d.bytes as f64 / 1e6,
                d.throughput_mbit_s,
                d.messages_per_s
            );
            let _ = writeln!(s, "             latency {}", d.latency_us.line());
        }
        let e = &self.errors;
        let _ = writeln!(s, "  errors     {}", e.total);
        for (k, n) in &e.by_kind {
            let _ = writeln!(s, "             {k} x{n}");
        }
        for sample in &e.samples {
            let _ = writeln!(s, "             e.g. {sample}");
        }
        let r = &self.resources;
        let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(
            s,
            "  loadgen    CPU {} s, peak RSS {} MiB",
            opt(r.loadgen_cpu_s),
            opt(r.loadgen_peak_rss_bytes.map(|b| b as f64 / 1048576.0))
        );
        match &r.relay {
            Some(u) => {
                let _ = writeln!(
                    s,
                    "  relay      pid {}: CPU {:.2} s, RSS {:.1} MiB idle, peak {:.1} MiB, {:.2} KiB per session",
                    u.pid,
                    u.cpu_s,
                    u.rss_before_bytes as f64 / 1048576.0,
                    u.peak_rss_bytes as f64 / 1048576.0,
                    u.rss_per_session_bytes / 1024.0
                );
            }
            None if c.mode == "direct" => {}
            None => {
                let _ = writeln!(
                    s,
                    "  relay      not measured (give --relay-pid with --target)"
                );
            }
        }
        let _ = writeln!(
            s,
            "  result     {}",
            if self.ok() { "OK" } else { "FAILED" }
        );
        s
    }
}
