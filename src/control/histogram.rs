//! Fixed-bucket histograms of durations, written by one shard and read by the scraper.
//!
//! A [`Histogram`] is an array of relaxed atomic counters (one per bucket, plus the overflow
//! bucket) and an atomic sum; recording is one `fetch_add` on the bucket and one on the sum,
//! no lock and nothing shared with another shard. Each shard owns its own histograms; a
//! scrape adds them up into a [`Snapshot`] ([`Snapshot::add`]). Buckets are kept
//! non-cumulative here and made cumulative (Prometheus' `le`) only when written out, and the
//! count is the sum of the buckets, so `le="+Inf"` always equals `_count` in one snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds, strictly increasing (the `+Inf` bucket is
/// implicit).
pub type Bounds = &'static [f64];

/// One shard's histogram of durations.
#[derive(Debug)]
pub struct Histogram {
    bounds: Bounds,
    /// `counts[i]`: observations in (bounds[i-1], bounds[i]]; the last one is above every
    /// bound.
    counts: Box<[AtomicU64]>,
    /// Sum of the observations, in units of `sum_unit` (2^64 ns is only 584 years of summed
    /// durations: a thousand day-long sessions a day fill it in under two years).
    sum: AtomicU64,
    /// Nanoseconds per unit of `sum`.
    sum_unit: u64,
}

impl Histogram {
    /// A histogram with these bucket bounds whose sum counts in nanoseconds.
    pub fn new(bounds: Bounds) -> Self {
        Self::with_sum_unit(bounds, Duration::from_nanos(1))
    }

    /// A histogram whose sum counts in units of `unit` (at least 1 ns): microseconds for
    /// durations that add up to centuries (sessions of days, by the thousand).
    pub fn with_sum_unit(bounds: Bounds, unit: Duration) -> Self {
        debug_assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "bounds must increase"
        );
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            sum_unit: (unit.as_nanos() as u64).max(1),
        }
    }

    /// Counts one observation.
    pub fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // The first bucket whose bound is at least `secs` (Prometheus' `le`: less or equal).
        let i = self.bounds.partition_point(|&b| b < secs);
        self.counts[i].fetch_add(1, Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Rounded to the nearest unit, so many short observations do not all lose a bit.
        let units = nanos.saturating_add(self.sum_unit / 2) / self.sum_unit;
        self.sum.fetch_add(units, Relaxed);
    }

    /// The bucket bounds.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }
}

/// Histograms of several shards, added up.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub bounds: Bounds,
    /// Non-cumulative, one more than `bounds` (the last is above every bound).
    pub counts: Vec<u64>,
    /// Sum of the observations, in seconds.
    pub sum: f64,
}

impl Snapshot {
    /// An empty snapshot for histograms with these bounds.
    pub fn empty(bounds: Bounds) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Adds one shard's histogram (which must have the same bounds).
    pub fn add(&mut self, h: &Histogram) {
        debug_assert_eq!(self.bounds, h.bounds);
        for (total, c) in self.counts.iter_mut().zip(h.counts.iter()) {
            *total += c.load(Relaxed);
        }
        let units = h.sum.load(Relaxed) as f64;
        self.sum += units * h.sum_unit as f64 / 1e9;
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound, observations at or below it)` for each bound, then `+Inf` (as
    /// `f64::INFINITY`) with the count.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.counts.iter()).scan(0u64, |acc, (b, &c)| {
            *acc += c;
            Some((b, *acc))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = &[0.001, 0.01, 1.0];

    #[test]
    fn an_observation_on_a_bound_counts_in_that_bucket() {
        let h = Histogram::new(BOUNDS);
        h.record(Duration::from_millis(1));
        h.record(Duration::from_micros(1500));
        h.record(Duration::from_secs(1));
        h.record(Duration::from_secs(7));
        h.record(Duration::ZERO);
        let mut s = Snapshot::empty(BOUNDS);
        s.add(&h);
        assert_eq!(s.counts, vec![2, 1, 1, 1]);
        let cumulative: Vec<_> = s.cumulative().collect();
        assert_eq!(
            cumulative,
            vec![(0.001, 2), (0.01, 3), (1.0, 4), (f64::INFINITY, 5)]
        );
        assert_eq!(s.count(), 5);
        assert!((s.sum - 8.0025).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn shards_add_up_and_a_coarse_sum_unit_rounds() {
        let a = Histogram::with_sum_unit(BOUNDS, Duration::from_micros(1));
        let b = Histogram::with_sum_unit(BOUNDS, Duration::from_micros(1));
        a.record(Duration::from_nanos(1_600)); // 2 us
        b.record(Duration::from_nanos(1_400)); // 1 us
        b.record(Duration::from_secs(86_400 * 365 * 100)); // a century does not overflow
        let mut s = Snapshot::empty(BOUNDS);
        s.add(&a);
        s.add(&b);
        assert_eq!(s.counts, vec![2, 0, 0, 1]);
        let century = 86_400.0 * 365.0 * 100.0;
        assert!((s.sum - (century + 3e-6)).abs() < 1e-3, "{}", s.sum);
    }
}
