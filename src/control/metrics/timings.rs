//! The duration histograms each shard records, and how code on a shard reaches its own.
//!
//! A shard is one thread. When it starts, the engine hands it its [`ShardTimings`]
//! ([`install`]); from then on code running on that shard records with a plain function
//! call ([`session_ended`], [`backend_connected`], [`xpra_joined`]) that finds the shard's
//! histograms in a thread-local. So the doors deep inside a session (the xpra backend leg,
//! a WebSocket token target) record without a counters handle threaded through their
//! signatures, and each write lands in the shard's own atomics: no lock, no shared cache
//! line. On a thread that is not a shard (unit tests, tools) recording does nothing.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use crate::control::histogram::{Bounds, Histogram, Snapshot};

/// Session duration, admission to close: a probe or a refused login ends in well under a
/// second, a desktop session lasts minutes to a working day, some are left open for days.
pub const SESSION_SECONDS: Bounds = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
    14400.0, 28800.0, 86400.0, 172800.0, 604800.0,
];

/// Backend TCP connect: tens of microseconds on loopback, a millisecond on a LAN, a second
/// or more when a SYN is lost; `--connect-timeout` is 5 s by default.
pub const CONNECT_SECONDS: Bounds = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// xpra handshake, the client's hello to relaying: a challenge round trip, the backend's
/// connect and hello (milliseconds), up to a client that asks its user for the password
/// (`--pre-auth-timeout`, 10 s by default).
pub const XPRA_HANDSHAKE_SECONDS: Bounds = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// One shard's histograms. Aligned so two shards' histograms never share a cache line.
#[derive(Debug)]
#[repr(align(128))]
pub struct ShardTimings {
    pub session: Histogram,
    pub connect: Histogram,
    pub xpra_handshake: Histogram,
}

impl Default for ShardTimings {
    fn default() -> Self {
        Self {
            // Days-long sessions by the thousand: the sum counts microseconds.
            session: Histogram::with_sum_unit(SESSION_SECONDS, Duration::from_micros(1)),
            connect: Histogram::new(CONNECT_SECONDS),
            xpra_handshake: Histogram::new(XPRA_HANDSHAKE_SECONDS),
        }
    }
}

/// The histograms of every shard, indexed by shard id.
#[derive(Debug)]
pub struct Timings {
    shards: Vec<Arc<ShardTimings>>,
}

impl Timings {
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards).map(|_| Arc::default()).collect(),
        }
    }

    pub fn shard(&self, id: usize) -> &Arc<ShardTimings> {
        &self.shards[id]
    }

    /// One histogram (`pick`) summed over shards.
    pub fn total(&self, pick: fn(&ShardTimings) -> &Histogram) -> Snapshot {
        let bounds = self.shards.first().map_or(&[][..], |s| pick(s).bounds());
        let mut snap = Snapshot::empty(bounds);
        for s in &self.shards {
            snap.add(pick(s));
        }
        snap
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<ShardTimings>>> = const { RefCell::new(None) };
}

/// Makes `timings` the histograms that recording on this thread (a shard) goes to.
pub fn install(timings: Arc<ShardTimings>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(timings));
}

fn record(pick: fn(&ShardTimings) -> &Histogram, d: Duration) {
    CURRENT.with(|c| {
        if let Some(t) = &*c.borrow() {
            pick(t).record(d)
        }
    })
}

/// A session admitted `d` ago has closed.
pub fn session_ended(d: Duration) {
    record(|t| &t.session, d)
}

/// A backend TCP connect succeeded after `d`.
pub fn backend_connected(d: Duration) {
    record(|t| &t.connect, d)
}

/// An xpra client's handshake, from its hello to relaying, took `d`.
pub fn xpra_joined(d: Duration) {
    record(|t| &t.xpra_handshake, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_goes_to_the_installed_shard_and_nowhere_without_one() {
        let timings = Arc::new(Timings::new(2));
        backend_connected(Duration::from_millis(1)); // no shard here: dropped
        let t = Arc::clone(&timings);
        std::thread::spawn(move || {
            install(Arc::clone(t.shard(1)));
            backend_connected(Duration::from_micros(300));
            session_ended(Duration::from_secs(90));
        })
        .join()
        .unwrap();
        assert_eq!(timings.total(|t| &t.connect).count(), 1);
        assert_eq!(timings.total(|t| &t.session).count(), 1);
        assert_eq!(timings.total(|t| &t.xpra_handshake).count(), 0);
        let mut shard0 = Snapshot::empty(CONNECT_SECONDS);
        shard0.add(&timings.shard(0).connect);
        assert_eq!(
            shard0.count(),
            0,
            "shard 1's thread wrote shard 1's histogram"
        );
    }
}
