//! What each worker measures (histograms, counters, failures), merged across workers at the
//! end; plus the run-wide atomic counters of what was sent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Highest latency a histogram tracks (larger values are clamped): 10 minutes in ns.
const MAX_NS: u64 = 600_000_000_000;
/// Distinct error messages kept for the report.
const KEEP_ERRORS: usize = 10;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// One direction as seen by its receivers.
#[derive(Debug, Clone)]
pub struct DirMetrics {
    /// Latency (arrival - due) in ns, one sample per message.
    pub latency: Histogram<u64>,
    pub messages: u64,
    pub bytes: u64,
}

impl Default for DirMetrics {
    fn default() -> Self {
        Self {
            latency: histogram(),
            messages: 0,
            bytes: 0,
        }
    }
}

impl DirMetrics {
    pub fn record(&mut self, latency_ns: u64, bytes: u64) {
        self.latency.saturating_record(latency_ns.max(1));
        self.messages += 1;
        self.bytes += bytes;
    }

    fn merge(&mut self, o: &DirMetrics) {
        self.latency.add(&o.latency).expect("same histogram bounds");
        self.messages += o.messages;
        self.bytes += o.bytes;
    }
}

/// Everything one worker measured.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub up: DirMetrics,
    pub down: DirMetrics,
    /// Time to establish the client connection, ns.
    pub connect: Histogram<u64>,
    /// Time of the protocol's set-up after connect, ns.
    pub handshake: Histogram<u64>,
    pub opened: u64,
    /// Sessions that could not be opened, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Verification and I/O errors during the run, by kind.
    pub errors: BTreeMap<String, u64>,
    /// First few error messages, verbatim.
    pub error_samples: Vec<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            up: DirMetrics::default(),
            down: DirMetrics::default(),
            connect: histogram(),
            handshake: histogram(),
            opened: 0,
            failed: BTreeMap::new(),
            errors: BTreeMap::new(),
            error_samples: Vec::new(),
        }
    }
}

impl Metrics {
    pub fn fail(&mut self, reason: String) {
        *self.failed.entry(reason).or_default() += 1;
    }

    /// Counts an error under `kind`, keeping the first messages verbatim.
    pub fn error(&mut self, kind: &str, detail: String) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        if self.error_samples.len() < KEEP_ERRORS {
            self.error_samples.push(detail);
        }
    }

    pub fn merge(&mut self, o: &Metrics) {
        self.up.merge(&o.up);
        self.down.merge(&o.down);
        self.connect.add(&o.connect).expect("same histogram bounds");
        self.handshake
            .add(&o.handshake)
            .expect("same histogram bounds");
        self.opened += o.opened;
        for (k, v) in &o.failed {
            *self.failed.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for s in &o.error_samples {
            if self.error_samples.len() < KEEP_ERRORS {
                self.error_samples.push(s.clone());
            }
        }
    }
}

/// Run-wide counters shared by all workers.
#[derive(Debug, Default)]
pub struct Sent {
    pub up_messages: AtomicU64,
    pub up_bytes: AtomicU64,
    pub down_messages: AtomicU64,
    pub down_bytes: AtomicU64,
    /// Client sessions finished (opened or failed).
    pub clients_done: AtomicU64,
    /// Backend connections currently being served.
    pub backends_open: AtomicU64,
    /// handshake profile: handshakes started.
    pub handshakes: AtomicU64,
}

impl Sent {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
